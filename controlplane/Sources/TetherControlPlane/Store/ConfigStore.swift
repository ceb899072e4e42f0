import Crypto
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
/// SQLite is the embedded default; PostgreSQL is the store several
/// control-plane replicas share, where "serialized with every other commit"
/// holds across replicas.
public protocol ConfigStore: Sendable {
    /// The current state: every resource, as stored (credentials sealed).
    func currentState() async throws(ControlPlaneError) -> StoreState
    /// The state as it was right after `revision`.
    func state(at revision: Int64) async throws(ControlPlaneError) -> StoreState
    /// Revisions, newest first.
    func revisions(limit: Int) async throws(ControlPlaneError) -> [Revision]
    /// Runs `plan` on the current state and commits the desired resources it
    /// returns (`nil` deletes) as one revision; unchanged resources are not
    /// written and an empty change creates no revision. `plan` runs inside
    /// the write transaction: it must be quick and must not block on I/O.
    func commit(
        author: String,
        operation: Revision.Operation,
        rollbackTo: Int64?,
        _ plan: @escaping CommitPlan
    ) async throws(ControlPlaneError) -> CommitResult
}

/// What a commit writes, decided from the state it commits over.
public typealias CommitPlan = @Sendable (StoreState) throws(ControlPlaneError) -> [ResourceID: Resource?]

extension CommitResult {
    /// The changes `desired` makes to `current`, and the documents to write
    /// (canonical JSON; nil deletes) — the one definition of "changed" every
    /// store uses, so SQLite and PostgreSQL produce identical histories.
    static func changes(from current: StoreState, to desired: [ResourceID: Resource?]) -> (changes: [Change], writes: [(id: ResourceID, action: Change.Action, document: String?)]) {
        var changes: [Change] = []
        var writes: [(id: ResourceID, action: Change.Action, document: String?)] = []
        for (id, resource) in desired.sorted(by: { $0.key < $1.key }) {
            let before = current.resources[id].map(ConfigEncoding.canonicalJSON)
            let after = resource.map(ConfigEncoding.canonicalJSON)
            let action: Change.Action = switch (before, after) {
            case (nil, nil): .unchanged
            case (nil, .some): .created
            case (.some, nil): .deleted
            case (let before?, let after?): before == after ? .unchanged : .configured
            }
            if before == nil && after == nil { continue }
            changes.append(Change(id: id, action: action))
            if action != .unchanged {
                writes.append((id, action, after.map { String(decoding: $0, as: UTF8.self) }))
            }
        }
        return (changes, writes)
    }
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

extension StoreState {
    /// One stored document as a store reads it back.
    struct Document {
        var kind: String
        var name: String
        var document: String
        /// The revision that last changed it.
        var revision: Int64
    }

    /// The state made of stored canonical-JSON documents.
    init(revision: Int64, documents: [Document]) throws(ControlPlaneError) {
        var resources: [ResourceID: Resource] = [:]
        var lastChanged: [ResourceID: Int64] = [:]
        for row in documents {
            let id = try Self.id(kind: row.kind, name: row.name)
            lastChanged[id] = row.revision
            do {
                resources[id] = try ConfigEncoding.decode(canonicalJSON: Data(row.document.utf8))
            } catch {
                throw ControlPlaneError(.storage, "stored document of \(id) cannot be read (\(error)); the database may be from a newer Tether")
            }
        }
        self.init(revision: revision, resources: resources, lastChanged: lastChanged)
    }

    static func id(kind: String, name: String) throws(ControlPlaneError) -> ResourceID {
        guard let parsed = ResourceKind(rawValue: kind) else {
            throw ControlPlaneError(.storage, "stored resource has unknown kind \(kind); the database may be from a newer Tether")
        }
        return ResourceID(parsed, name)
    }

    static func hash(_ document: String) -> String {
        SHA256.hash(data: Data(document.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

/// How stores write timestamps: ISO 8601 with milliseconds, UTC.
enum StoreDates {
    static func format(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    static func parse(_ text: String) -> Date {
        (try? Date(text, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))) ?? Date(timeIntervalSince1970: 0)
    }
}

extension ControlPlaneError {
    static func unknownRevision(_ revision: Int64) -> ControlPlaneError {
        ControlPlaneError(.notFound, "revision \(revision) does not exist; run tether-control history to list revisions")
    }
}
