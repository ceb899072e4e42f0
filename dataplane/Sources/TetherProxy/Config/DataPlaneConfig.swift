import TetherCore
import TetherXDS

/// The proxy's config compiled for the request path: compiled once per
/// accepted xDS update, then read by every request that starts while it is
/// current. A request takes one `DataPlaneConfig` at its start and finishes
/// on it, so a config change never alters a request half-way through.
public struct DataPlaneConfig: Sendable {
    /// A route this proxy's agent may use, with its backend resolved.
    public struct Route: Sendable {
        public var name: String
        public var spec: RouteSpec
        public var backend: Backend
    }

    public struct Backend: Sendable {
        public var name: String
        public var spec: MCPBackendSpec
    }

    /// The control-plane revision this was compiled from ("" before any).
    public let version: String
    /// Outbound routes for this node, longest path first.
    let routes: [Route]
    /// In-mesh backends this node serves, by name.
    let served: [String: Backend]
    public let authorization: AuthorizationEngine
    /// Identity providers and token exchanges by name, for the routes that use them.
    public let identityProviders: [String: IdentityProviderSpec]
    public let tokenExchanges: [String: TokenExchangeSpec]
    /// Credential values by name (only those this proxy's token exchanges use reach it).
    let credentials: [String: String]
    /// The longest route timeout towards each backend: what the serving side
    /// allows its upstream, so it never cuts a call the caller still waits for.
    let backendTimeouts: [String: ConfigDuration]

    /// The timeout of a route that sets none: how long an upstream may take
    /// to begin its response, or stay silent in the middle of a POST's stream.
    public static let defaultTimeout = ConfigDuration.seconds(300)

    public init(config: ProxyConfig, node: SPIFFEID) {
        let index = ResourceIndex(config.resources.values.map(\.resource))
        identityProviders = index.identityProviders
        tokenExchanges = index.tokenExchanges
        credentials = index.credentials.compactMapValues { spec in
            if case .plaintext(let value)? = spec.value { value } else { nil }
        }
        routes = index.routes.compactMap { name, spec -> Route? in
            guard spec.serves(node), let backend = index.backends[spec.backend] else { return nil }
            return Route(name: name, spec: spec, backend: Backend(name: spec.backend, spec: backend))
        }.sorted { ($0.spec.path.count, $1.name) > ($1.spec.path.count, $0.name) }
        served = index.backends.reduce(into: [:]) { served, entry in
            if case .inMesh(let inMesh) = entry.value, inMesh.spiffeID == node {
                served[entry.key] = Backend(name: entry.key, spec: entry.value)
            }
        }
        backendTimeouts = index.routes.values.reduce(into: [:]) { timeouts, route in
            let timeout = route.timeout ?? Self.defaultTimeout
            timeouts[route.backend] = max(timeouts[route.backend] ?? timeout, timeout)
        }
        authorization = AuthorizationEngine(index: index)
        version = config.systemVersion
    }

    /// The route for a request target (`/github/x?y`), and what follows the
    /// route's path in it (`/x?y`, or "" for the route's path itself). A
    /// route's path matches itself and what lies below it, never a mere
    /// prefix: `/git` does not match `/github`.
    public func route(for target: String) -> (route: Route, rest: Substring)? {
        for route in routes {
            let path = route.spec.path
            if path == "/" { return (route, target[...]) }
            guard target.hasPrefix(path) else { continue }
            let rest = target.dropFirst(path.count)
            if rest.isEmpty || rest.hasPrefix("/") || rest.hasPrefix("?") { return (route, rest) }
        }
        return nil
    }

    /// The outbound route paths, for error messages.
    public var routePaths: [String] { routes.map(\.spec.path).sorted() }

    /// An in-mesh backend this proxy serves on its inbound listener.
    public func servedBackend(_ name: String) -> Backend? { served[name] }

    public var servedBackendNames: [String] { served.keys.sorted() }

    /// A credential's value, by name.
    public func credential(_ name: String) -> String? { credentials[name] }

    /// The timeout for calls to a backend this proxy serves.
    public func servedTimeout(_ backend: String) -> ConfigDuration { backendTimeouts[backend] ?? Self.defaultTimeout }
}
