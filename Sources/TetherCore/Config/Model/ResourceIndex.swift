/// A config's resources by kind and name: the one place that sorts a list
/// of resources into what each part of Tether looks up (the proxy's
/// compiled config, the authorization engine, the token service).
///
/// ```swift
/// let index = ResourceIndex(resources)
/// let route = index.routes["github"]
/// ```
public struct ResourceIndex: Sendable {
    public private(set) var backends: [String: MCPBackendSpec] = [:]
    public private(set) var routes: [String: RouteSpec] = [:]
    public private(set) var identityProviders: [String: IdentityProviderSpec] = [:]
    public private(set) var tokenExchanges: [String: TokenExchangeSpec] = [:]
    public private(set) var policies: [String: AuthorizationPolicySpec] = [:]
    public private(set) var credentials: [String: CredentialSpec] = [:]
    public private(set) var trustBundles: [String: TrustBundleSpec] = [:]

    public init(_ resources: some Sequence<Resource>) {
        for resource in resources {
            let name = resource.metadata.name
            switch resource.spec {
            case .mcpBackend(let spec): backends[name] = spec
            case .route(let spec): routes[name] = spec
            case .identityProvider(let spec): identityProviders[name] = spec
            case .tokenExchange(let spec): tokenExchanges[name] = spec
            case .authorizationPolicy(let spec): policies[name] = spec
            case .credential(let spec): credentials[name] = spec
            case .trustBundle(let spec): trustBundles[name] = spec
            }
        }
    }

    /// Routes sorted by name: iteration in a stable order, so the same
    /// config always gives the same answer.
    public var sortedRoutes: [(name: String, spec: RouteSpec)] {
        routes.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}
