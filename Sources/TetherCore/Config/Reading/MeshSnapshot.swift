/// A resource and its content version: equal content, equal version, so a
/// resource that did not change is never sent again.
public struct VersionedResource: Hashable, Sendable {
    public var resource: Resource
    public var version: String

    public init(resource: Resource, version: String) {
        self.resource = resource
        self.version = version
    }
}

/// The mesh's internal representation at one revision: immutable, built once
/// per revision, shared by every proxy stream. Credential values in it are
/// plaintext (proxies need them); it never leaves the process except as a
/// proxy's own view.
///
/// ```swift
/// let view = snapshot.view(for: try SPIFFEID("spiffe://example.org/agent/triage"))
/// view.resources(of: .route)  // the routes that proxy serves, by name
/// ```
public struct MeshSnapshot: Sendable {
    public let revision: Int64
    public let resources: [ResourceID: VersionedResource]

    public init(revision: Int64, resources: [ResourceID: VersionedResource]) {
        self.revision = revision
        self.resources = resources
    }

    public static let empty = MeshSnapshot(revision: 0, resources: [:])

    /// What one proxy needs, and nothing else: the routes whose agent
    /// patterns match it; the backends, identity providers and token
    /// exchanges they name; the backends it serves inbound and the routes
    /// leading to them; the policies on any of those routes or backends; the
    /// credentials its token exchanges use; and the trust bundles, which
    /// everyone needs.
    public func view(for node: SPIFFEID) -> MeshView {
        var selected: [ResourceID: VersionedResource] = [:]
        func add(_ id: ResourceID) {
            if let resource = resources[id] { selected[id] = resource }
        }
        var routeNames = Set<String>(), backendNames = Set<String>()
        for (id, item) in resources {
            switch item.resource.spec {
            case .route(let route) where route.serves(node):
                add(id)
                routeNames.insert(id.name)
                backendNames.insert(route.backend)
                route.identityProvider.map { add(ResourceID(.identityProvider, $0)) }
                if let exchangeName = route.tokenExchange {
                    let exchangeID = ResourceID(.tokenExchange, exchangeName)
                    add(exchangeID)
                    if case .tokenExchange(let exchange)? = resources[exchangeID]?.resource.spec {
                        for credential in [exchange.credential, exchange.clientSecret].compactMap({ $0 }) {
                            add(ResourceID(.credential, credential))
                        }
                    }
                }
            case .mcpBackend(.inMesh(let backend)) where backend.spiffeID == node:
                backendNames.insert(id.name)
            case .trustBundle:
                add(id)
            default:
                break
            }
        }
        // A serving proxy enforces the policies of the routes that lead to
        // its backends too (`AuthorizationEngine.decide(_:in: .backend(…))`), so an
        // agent cannot skip its route's policy by calling the server directly.
        let served = Set(resources.compactMap { id, item -> String? in
            if case .mcpBackend(.inMesh(let backend)) = item.resource.spec, backend.spiffeID == node { return id.name }
            return nil
        })
        for (id, item) in resources {
            if case .route(let route) = item.resource.spec, served.contains(route.backend) {
                add(id)
                routeNames.insert(id.name)
            }
        }
        for name in backendNames { add(ResourceID(.mcpBackend, name)) }
        for (id, item) in resources {
            guard case .authorizationPolicy(let policy) = item.resource.spec else { continue }
            let onRoute = policy.targets.routes?.contains(where: routeNames.contains) ?? false
            let onBackend = policy.targets.backends?.contains(where: backendNames.contains) ?? false
            if onRoute || onBackend { selected[id] = item }
        }
        return MeshView(revision: revision, resources: selected)
    }
}

/// One proxy's part of a snapshot.
public struct MeshView: Hashable, Sendable {
    public let revision: Int64
    public let resources: [ResourceID: VersionedResource]
    /// Each kind's resource versions by name, computed once: an xDS stream
    /// compares them with what its proxy holds after every message, and at
    /// thousands of streams rebuilding them each time dominated the control
    /// plane's CPU.
    public let versions: [ResourceKind: [String: String]]

    public init(revision: Int64, resources: [ResourceID: VersionedResource]) {
        self.revision = revision
        self.resources = resources
        var versions: [ResourceKind: [String: String]] = [:]
        for (id, item) in resources { versions[id.kind, default: [:]][id.name] = item.version }
        self.versions = versions
    }

    /// The resources of one kind, by name.
    public func resources(of kind: ResourceKind) -> [String: VersionedResource] {
        var result: [String: VersionedResource] = [:]
        for (id, item) in resources where id.kind == kind { result[id.name] = item }
        return result
    }
}

/// A short, stable version for a set of named versions (one type's resources
/// in a state-of-the-world response): FNV-1a 64 over the sorted pairs. An
/// identifier, not a security measure.
public func combinedVersion(_ versions: [String: String]) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for (name, version) in versions.sorted(by: { $0.key < $1.key }) {
        for byte in name.utf8 + [0] + version.utf8 + [0] {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
    }
    return String(hash, radix: 16)
}
