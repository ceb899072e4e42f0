import Foundation
import TetherCore

/// The control plane's config operations — apply, delete, diff, get,
/// history, rollback — on top of a store: parse and validate operator input,
/// seal credentials, and commit the result as one revision.
///
/// ```swift
/// let manager = ConfigManager(store: store, secrets: secrets)
/// let result = try manager.apply(AdminProtocol.ApplyRequest(sources: sources, dryRun: false), author: "uid:0(root)")
/// ```
public struct ConfigManager: Sendable {
    public let store: any ConfigStore
    public let secrets: SecretBox
    /// Called with each new revision, after its commit (e.g. to push it to proxies).
    let onCommit: @Sendable (Int64) -> Void

    public init(store: any ConfigStore, secrets: SecretBox, onCommit: @escaping @Sendable (Int64) -> Void = { _ in }) {
        self.store = store
        self.secrets = secrets
        self.onCommit = onCommit
    }

    @discardableResult
    public func apply(_ request: AdminProtocol.ApplyRequest, author: String) async throws(ControlPlaneError) -> AdminProtocol.ChangeResponse {
        let parsed = try parse(request.sources)
        guard !parsed.isEmpty else {
            throw ControlPlaneError(.badRequest, "the input defines no resources; nothing was changed")
        }
        let manager = self
        return try await change(author: author, operation: .apply, dryRun: request.dryRun) { current throws(ControlPlaneError) in
            try manager.plan(applying: parsed, over: current)
        }
    }

    @discardableResult
    public func delete(_ request: AdminProtocol.DeleteRequest, author: String) async throws(ControlPlaneError) -> AdminProtocol.ChangeResponse {
        let ids = try request.ids + parse(request.sources).map(\.resource.id)
        guard !ids.isEmpty else {
            throw ControlPlaneError(.badRequest, "name the resources to delete (KIND NAME, or -f FILE)")
        }
        return try await change(author: author, operation: .delete, dryRun: request.dryRun) { current throws(ControlPlaneError) in
            let missing = ids.filter { current.resources[$0] == nil }
            guard missing.isEmpty else {
                throw ControlPlaneError(.notFound, "\(missing.map(\.description).joined(separator: ", ")) not found; nothing was deleted")
            }
            let problems = ConfigSetValidator.validate(applying: [], deleting: Set(ids), over: current.resources)
            guard problems.isEmpty else { throw ControlPlaneError(ConfigValidationError(problems)) }
            return Dictionary(ids.map { ($0, nil) }, uniquingKeysWith: { first, _ in first })
        }
    }

    @discardableResult
    public func rollback(_ request: AdminProtocol.RollbackRequest, author: String) async throws(ControlPlaneError) -> AdminProtocol.ChangeResponse {
        let target = try await store.state(at: request.revision)
        return try await change(author: author, operation: .rollback, rollbackTo: request.revision, dryRun: request.dryRun) { current in
            var desired: [ResourceID: Resource?] = [:]
            for id in Set(current.resources.keys).union(target.resources.keys) {
                desired[id] = target.resources[id]
            }
            return desired
        }
    }

    public func get(kind: ResourceKind?, name: String?) async throws(ControlPlaneError) -> AdminProtocol.GetResponse {
        let state = try await store.currentState()
        var selected = state.resources.values.filter { kind == nil || $0.kind == kind }
        if let name {
            selected = selected.filter { $0.metadata.name == name }
            if selected.isEmpty, let kind {
                throw ControlPlaneError(.notFound, "\(kind.rawValue)/\(name) not found")
            }
        }
        let resources = selected.sorted { $0.id < $1.id }.map { $0.redactingSecrets() }
        let revisions = Dictionary(uniqueKeysWithValues: resources.compactMap { resource in
            state.lastChanged[resource.id].map { (resource.id.description, $0) }
        })
        return AdminProtocol.GetResponse(revision: state.revision, resources: resources, resourceRevisions: revisions)
    }

    /// The decision the proxies would make for a call, on the stored
    /// config, by the same `AuthorizationEngine`.
    public func explain(_ request: AdminProtocol.ExplainRequest) async throws(ControlPlaneError) -> AdminProtocol.ExplainResponse {
        func id(_ text: String, _ field: String) throws(ControlPlaneError) -> SPIFFEID {
            do { return try SPIFFEID(text) } catch {
                throw ControlPlaneError(.badRequest, "\(field) \(text) is not a SPIFFE ID: it \(error.reason)")
            }
        }
        let agent = try id(request.agent, "--agent")
        var actors: [SPIFFEID] = []
        for actor in request.actors { actors.append(try id(actor, "--actor")) }
        let targets: [MCPCall.Target] = [request.tool.map(MCPCall.Target.tool), request.resource.map(MCPCall.Target.resource), request.prompt.map(MCPCall.Target.prompt)].compactMap { $0 }
        guard targets.count <= 1 else {
            throw ControlPlaneError(.badRequest, "name at most one of --tool, --resource, --prompt")
        }
        guard AuthorizationPolicySpec.knownMethods.contains(request.method) else {
            throw ControlPlaneError(.badRequest, "--method \(request.method) is not an MCP method; e.g. tools/call, tools/list, resources/read, prompts/get")
        }
        let state = try await store.currentState()
        let call = MCPCall(agent: agent, claims: request.claims, actors: actors, method: request.method, target: targets.first)
        let decision = AuthorizationEngine(resources: state.resources.values).decide(call, in: .route(request.route))
        return AdminProtocol.ExplainResponse(revision: state.revision, decision: decision)
    }

    public func diff(_ request: AdminProtocol.ApplyRequest) async throws(ControlPlaneError) -> AdminProtocol.DiffResponse {
        let parsed = try parse(request.sources)
        let current = try await store.currentState()
        let desired = try plan(applying: parsed, over: current)
        var entries: [AdminProtocol.DiffEntry] = []
        for (id, proposed) in desired.sorted(by: { $0.key < $1.key }) {
            let stored = current.resources[id]
            let action: Change.Action = switch (stored, proposed) {
            case (nil, _): .created
            case (_, nil): .deleted
            case (let stored?, let proposed?): stored == proposed ? .unchanged : .configured
            }
            entries.append(AdminProtocol.DiffEntry(
                id: id,
                action: action,
                stored: stored.map { Self.displayYAML($0, secretChanged: false) },
                proposed: proposed.map { Self.displayYAML($0, secretChanged: Self.secretDigest($0) != stored.flatMap(Self.secretDigest)) }
            ))
        }
        return AdminProtocol.DiffResponse(revision: current.revision, entries: entries)
    }

    public func history(limit: Int) async throws(ControlPlaneError) -> AdminProtocol.HistoryResponse {
        AdminProtocol.HistoryResponse(revisions: try await store.revisions(limit: limit))
    }

    public func status(dataDirectory: String) async throws(ControlPlaneError) -> AdminProtocol.StatusResponse {
        let state = try await store.currentState()
        return AdminProtocol.StatusResponse(revision: state.revision, resources: state.resources.count, dataDirectory: dataDirectory)
    }

    // MARK: - Internals

    private func parse(_ sources: [ConfigSource]) throws(ControlPlaneError) -> [ParsedResource] {
        do {
            return try ConfigParser.parse(sources)
        } catch {
            throw ControlPlaneError(error)
        }
    }

    private func change(
        author: String,
        operation: Revision.Operation,
        rollbackTo: Int64? = nil,
        dryRun: Bool,
        _ plan: @escaping CommitPlan
    ) async throws(ControlPlaneError) -> AdminProtocol.ChangeResponse {
        if dryRun {
            let current = try await store.currentState()
            let desired = try plan(current)
            let changes = desired.sorted(by: { $0.key < $1.key }).compactMap { id, resource -> Change? in
                switch (current.resources[id], resource) {
                case (nil, nil): nil
                case (nil, .some): Change(id: id, action: .created)
                case (.some, nil): Change(id: id, action: .deleted)
                case (let before?, let after?): Change(id: id, action: before == after ? .unchanged : .configured)
                }
            }
            return AdminProtocol.ChangeResponse(revision: nil, dryRun: true, changes: changes)
        }
        let result = try await store.commit(author: author, operation: operation, rollbackTo: rollbackTo, plan)
        if let revision = result.revision { onCommit(revision) }
        return AdminProtocol.ChangeResponse(revision: result.revision, dryRun: false, changes: result.changes)
    }

    /// The desired resources for an apply: validated against the current
    /// state, with credential values sealed (reusing the stored box when the
    /// value is unchanged, so an unchanged credential stays unchanged).
    func plan(applying parsed: [ParsedResource], over current: StoreState) throws(ControlPlaneError) -> [ResourceID: Resource?] {
        let problems = ConfigSetValidator.validate(applying: parsed, over: current.resources)
        guard problems.isEmpty else { throw ControlPlaneError(ConfigValidationError(problems)) }
        var desired: [ResourceID: Resource?] = [:]
        for item in parsed {
            var resource = item.resource
            if case .credential(var credential) = resource.spec {
                let stored: SealedSecret? = if case .credential(let old)? = current.resources[resource.id]?.spec, case .sealed(let box)? = old.value { box } else { nil }
                switch credential.value {
                case .plaintext(let value)?:
                    if let stored, stored.digest == secrets.digest(value) {
                        credential.value = .sealed(stored)
                    } else {
                        credential.value = .sealed(try secrets.seal(value, for: resource.id))
                    }
                case .sealed?:
                    throw ControlPlaneError(.badRequest, "\(resource.id): spec.value must be the plaintext secret")
                case nil:
                    // Validation guarantees a stored value exists.
                    credential.value = stored.map(CredentialValue.sealed)
                }
                resource.spec = .credential(credential)
            }
            desired[resource.id] = resource
        }
        return desired
    }

    /// YAML for a diff: secrets removed, and a marker line for a credential
    /// value, so the diff shows whether it changes but never what to.
    static func displayYAML(_ resource: Resource, secretChanged: Bool) -> String {
        let yaml = ConfigEncoding.yaml([resource.redactingSecrets()])
        guard secretDigest(resource) != nil else { return yaml }
        return yaml + "# spec.value: <secret\(secretChanged ? ", changed" : "")>\n"
    }

    static func secretDigest(_ resource: Resource) -> String? {
        guard case .credential(let credential) = resource.spec, case .sealed(let box)? = credential.value else { return nil }
        return box.digest
    }
}
