import HTTPTypes
import TetherCore

/// Where a request goes, who asks, and under which rules: everything the
/// listener's role decides, decided once, in `resolve`. The steps after it
/// read these fields and never ask which listener they are on.
///
/// Outbound (the agent's proxy) the caller is this proxy's own identity and
/// the route is chosen by path; inbound (the serving proxy) the caller is
/// the verified mTLS peer and the backend is named by `:authority`. Both
/// decide on the call — the serving proxy never trusts the calling one.
struct Destination: Sendable {
    enum Role: String, Sendable {
        case outbound, inbound
    }

    enum Resolution: Sendable {
        case forward(Destination)
        /// RFC 9728 metadata of a route that authenticates users (outbound GET).
        case protectedResourceMetadata(path: String)
    }

    var caller: SPIFFEID
    var scope: AuthorizationScope
    var target: UpstreamTarget
    var scheme: String
    var authority: String
    var path: String
    /// The route (outbound) and the backend; the route names the metrics.
    var route: String?
    var backend: String
    /// Outbound: the route, whose IdentityProvider authenticates the user
    /// and whose TokenExchange makes the upstream token.
    var routeSpec: RouteSpec?
    /// How long the upstream may take to begin a POST's response, or stay
    /// silent within its stream.
    var timeout: ConfigDuration
    /// Inbound: the user's claims were checked by the calling proxy; the
    /// user's token never travels this far.
    var claimsCheckedByCaller: Bool
    /// Outbound: the agent's `Authorization` stops here; the route's
    /// TokenExchange supplies what the server gets.
    var replacesAuthorization: Bool

    var label: String { route ?? backend }

    static func resolve(_ head: HTTPRequest, peer: SPIFFEID?, role: Role, node: SPIFFEID, config: DataPlaneConfig) -> Result<Resolution, Refusal> {
        switch role {
        case .outbound:
            if head.method == .get, let path = head.path, path.hasPrefix(ProtectedResourceMetadata.prefix) {
                return .success(.protectedResourceMetadata(path: path))
            }
            return outbound(head, caller: node, config: config).map(Resolution.forward)
        case .inbound:
            guard let peer else {
                return .failure(Refusal(.unauthenticated, "the inbound listener needs an mTLS client certificate (an X.509-SVID of the trust domain)"))
            }
            return inbound(head, caller: peer, config: config).map(Resolution.forward)
        }
    }

    /// The route by path; the rest of the path goes below the backend's.
    static func outbound(_ head: HTTPRequest, caller: SPIFFEID, config: DataPlaneConfig) -> Result<Destination, Refusal> {
        let requestPath = head.path ?? "/"
        guard let (route, rest) = config.route(for: requestPath) else {
            let known = config.routePaths
            let hint = known.isEmpty ? "this proxy has no routes yet" : "its routes are \(known.joined(separator: ", "))"
            return .failure(Refusal(.notFound, "no route for \(requestPath) on this proxy; \(hint)"))
        }
        var destination = Destination(
            caller: caller, scope: .route(route.name), target: UpstreamTarget(host: "", port: 0, security: .cleartext), scheme: "", authority: "", path: "",
            route: route.name, backend: route.backend.name, routeSpec: route.spec, timeout: route.spec.timeout ?? DataPlaneConfig.defaultTimeout,
            claimsCheckedByCaller: false, replacesAuthorization: true
        )
        switch route.backend.spec {
        case .inMesh(let inMesh):
            // The serving proxy picks the backend by authority and maps the path below it.
            destination.target = UpstreamTarget(host: inMesh.address.host, port: inMesh.address.port, security: .mesh(inMesh.spiffeID))
            (destination.scheme, destination.authority) = ("https", route.backend.name)
            destination.path = rest.hasPrefix("/") ? String(rest) : "/" + rest
        case .external(let external):
            let url = external.url
            let security: UpstreamTarget.Security = url.scheme == "https"
                ? .tls(serverName: external.tls?.serverName ?? url.host, caPEM: external.tls?.caPEM, caFile: external.tls?.caFile)
                : .cleartext
            destination.target = UpstreamTarget(host: url.host, port: url.port, security: security)
            (destination.scheme, destination.authority) = (url.scheme, UpstreamTarget.authority(of: url))
            destination.path = join(url.path, rest)
        }
        return .success(destination)
    }

    /// The served backend by `:authority`; the path goes below its upstream's.
    static func inbound(_ head: HTTPRequest, caller: SPIFFEID, config: DataPlaneConfig) -> Result<Destination, Refusal> {
        let authority = head.authority ?? ""
        let name = authority.split(separator: ":").first.map(String.init) ?? authority
        guard let backend = config.servedBackend(name), case .inMesh(let inMesh) = backend.spec else {
            let served = config.servedBackendNames
            let hint = served.isEmpty ? "it serves none yet" : "it serves \(served.joined(separator: ", "))"
            return .failure(Refusal(.notFound, "this proxy serves no backend \(name); \(hint)"))
        }
        let url = inMesh.upstream
        let path = head.path ?? "/"
        let rest = path == "/" || path.hasPrefix("/?") ? path.dropFirst() : path[...]
        let security: UpstreamTarget.Security = url.scheme == "https" ? .tls(serverName: url.host, caPEM: nil, caFile: nil) : .cleartext
        return .success(Destination(
            caller: caller, scope: .backend(name), target: UpstreamTarget(host: url.host, port: url.port, security: security),
            scheme: url.scheme, authority: UpstreamTarget.authority(of: url), path: join(url.path, rest), route: nil, backend: name,
            routeSpec: nil, timeout: config.servedTimeout(name), claimsCheckedByCaller: true, replacesAuthorization: false
        ))
    }

    /// The upstream path: the backend URL's path, then what followed the
    /// route's path in the request (`/mcp` + `?x` or `/sub`).
    static func join(_ base: String, _ rest: Substring) -> String {
        let base = base.isEmpty ? "/" : base
        if rest.isEmpty { return base }
        if rest.hasPrefix("?") { return base + rest }
        return (base.hasSuffix("/") ? String(base.dropLast()) : base) + rest
    }
}
