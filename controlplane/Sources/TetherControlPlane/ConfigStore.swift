import Foundation
import TetherCore

/// One numbered, immutable step in the config's history.
public struct Revision: Hashable, Sendable, Codable {
    public enum Operation: String, Hashable, Sendable, Codable {
        case apply, delete, rollback
    }

    public var number: Int64
    public var createdAt: Date
    /// Who made it: the admin identity that called the API.
    public var author: String
    public var operation: Operation
    /// For a rollback, the revision whose state it restored.
    public var rollbackTo: Int64?
    public var changes: [Change]

    public init(number: Int64, createdAt: Date, author: String, operation: Operation, rollbackTo: Int64? = nil, changes: [Change]) {
        self.number = number
        self.createdAt = createdAt
        self.author = author
        self.operation = operation
        self.rollbackTo = rollbackTo
        self.changes = changes
    }
}

/// What happened to one resource in a revision (or would, in a dry run).
public struct Change: Hashable, Sendable, Codable {
    public enum Action: String, Hashable, Sendable, Codable {
        case created, configured, unchanged, deleted
    }

    public var id: ResourceID
    public var action: Action

    public init(id: ResourceID, action: Action) {
        self.id = id
        self.action = action
    }
}

/// The outcome of a commit: the new revision, or nil when nothing changed.
public struct CommitResult: Hashable, Sendable {
    public var revision: Int64?
    public var changes: [Change]
}

/// Durable config state with history. Every write goes through `commit`,
/// which runs the caller's plan against the current state and stores its
/// result as one new revision in one transaction, serialized with every
/// other commit — so validation and write see the same state, and nothing is
/// ever half-applied.
///
/// The SQLite implementation is the default; the protocol keeps room for a
/// PostgreSQL store shared by several control-plane replicas.
public protocol ConfigStore: Sendable {
    /// The current state: every resource, as stored (credentials sealed).
    func currentState() throws(ControlPlaneError) -> StoreState
    /// The state as it was right after `revision`.
    func state(at revision: Int64) throws(ControlPlaneError) -> StoreState
    /// Revisions, newest first.
    func revisions(limit: Int) throws(ControlPlaneError) -> [Revision]
    /// Runs `plan` on the current state and commits the desired resources it
    /// returns (`nil` deletes) as one revision; unchanged resources are not
    /// written and an empty change creates no revision. `plan` runs inside
    /// the write transaction: it must be quick and must not block on I/O.
    func commit(
        author: String,
        operation: Revision.Operation,
        rollbackTo: Int64?,
        _ plan: (StoreState) throws(ControlPlaneError) -> [ResourceID: Resource?]
    ) throws(ControlPlaneError) -> CommitResult
}

/// A consistent view of all resources at one revision.
public struct StoreState: Hashable, Sendable {
    public var revision: Int64
    public var resources: [ResourceID: Resource]
    /// The revision that last changed each resource.
    public var lastChanged: [ResourceID: Int64]

    public init(revision: Int64, resources: [ResourceID: Resource], lastChanged: [ResourceID: Int64]) {
        self.revision = revision
        self.resources = resources
        self.lastChanged = lastChanged
    }
}
