import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes
import TetherCore
import TetherIdentity

/// The request path of both data-path listeners, in one place:
///
/// config snapshot → where the request goes (outbound: the route by path;
/// inbound: the served backend named by `:authority`) → MCP inspection
/// (JSON-RPC method, tool / resource / prompt; `Mcp-Method`/`Mcp-Name`
/// against the body) → authorization → forward over a pooled connection,
/// streaming the response (listings filtered) → access log and metrics.
///
/// The caller is the proxy's own identity outbound (the agent beside it)
/// and the verified mTLS peer inbound. Both sides decide: outbound on the
/// route, inbound on the backend — the serving proxy never trusts the
/// calling one to have checked.
struct MCPProxyHandler: HTTPRequestHandler {
    enum Role: String, Sendable {
        case outbound, inbound
    }

    let role: Role
    let node: SPIFFEID
    let store: ProxyConfigStore
    let upstreams: UpstreamPool
    let metrics: ProxyMetrics
    let accessLog: AccessLog
    let logger: Logger
    let authenticator: UserAuthenticator
    let credentials: UpstreamCredentials
    /// The header-list limit every serving proxy enforces (`ListenerLimits`):
    /// a request that would exceed it on the mesh hop gets 431 here instead.
    var maxHeaderListSize = ListenerLimits().maxHeaderListSize

    /// Where one request goes, and the rules that apply to it there.
    struct Destination {
        var target: UpstreamTarget
        var scheme: String
        var authority: String
        var path: String
        /// The route (outbound) or backend (inbound) name, for logs and metrics.
        var label: String
        var route: String?
        var backend: String
        /// Outbound: the route, whose IdentityProvider authenticates the
        /// user and whose TokenExchange makes the upstream token.
        var routeSpec: RouteSpec?
        var decide: @Sendable (MCPCall) -> AuthorizationDecision
        var permits: @Sendable (MCPCall.Target, MCPCall) -> Bool
        var mayOpenSession: @Sendable (SPIFFEID) -> Bool
        /// How long the upstream may take to begin a POST's response, or
        /// stay silent within its stream. GET event streams may idle.
        var timeout: ConfigDuration
    }

    func handle(_ head: HTTPRequest, body: ByteBuffer, context: RequestContext, response: ResponseWriter) async throws {
        let started = ContinuousClock.now
        let startedAt = Date()
        let config = store.current.dataPlane
        let trace = head.headerFields[.traceparent].flatMap(TraceContext.init(traceparent:)) ?? TraceContext.start()
        let requestID = head.headerFields[.requestID] ?? UUID().uuidString.lowercased()
        var entry = AccessLogEntry(
            time: "", requestID: requestID, traceID: trace.traceID, listener: role.rawValue, httpVersion: context.httpVersion,
            agent: nil, user: nil, actors: nil, route: nil, backend: nil, httpMethod: head.method.rawValue, path: head.path ?? "",
            mcpMethod: nil, tool: nil, resource: nil, prompt: nil, decision: "none", policy: nil, rule: nil, reason: nil,
            status: 0, upstreamStatus: nil, upstreamError: nil, durationMs: 0, requestBytes: body.readableBytes, responseBytes: 0
        )
        var metricMethod = head.method.rawValue
        /// The JSON-RPC id, once the body is read: every error from then on echoes it.
        var messageID: JSONRPCID?
        defer {
            entry.durationMs = Double((ContinuousClock.now - started) / .microseconds(1)) / 1000
            if accessLog.isEnabled {
                // Formatting a timestamp is not free: only when there is a log to write.
                entry.time = AccessLog.timestamp(startedAt)
                accessLog.write(entry)
            }
            metrics.recordRequest(
                listener: role.rawValue, route: entry.route ?? entry.backend ?? "", method: metricMethod,
                decision: entry.decision, status: entry.status, duration: ContinuousClock.now - started
            )
        }
        func refuse(_ error: MCPProtocolError, headers: HTTPFields = [:]) async throws {
            var error = error
            error.id = error.id ?? messageID
            entry.status = error.status
            entry.responseBytes = error.body.count
            entry.reason = entry.reason ?? error.message
            try await HTTPListener.writeError(error, to: response, headers: headers)
        }

        let caller: SPIFFEID
        switch role {
        case .outbound: caller = node
        case .inbound:
            guard let peer = context.peer else {
                return try await refuse(MCPProtocolError(status: 401, code: MCPProtocolError.invalidRequest, message: "the inbound listener needs an mTLS client certificate (an X.509-SVID of the trust domain)"))
            }
            caller = peer
        }
        entry.agent = caller.description

        if role == .outbound, head.method == .get, let path = head.path, path.hasPrefix(ProtectedResourceMetadata.prefix) {
            entry.decision = "allow"
            var status = 0
            try await ProtectedResourceMetadata.serve(path: path, authority: head.authority, config: config, response: response) { status = $0 }
            entry.status = status
            return
        }

        let destination: Destination
        switch self.destination(of: head, config: config) {
        case .success(let found): destination = found
        case .failure(let error): return try await refuse(error)
        }
        entry.route = destination.route
        entry.backend = destination.backend

        // The user, on routes that name an IdentityProvider.
        var user: UserToken?
        if let spec = destination.routeSpec, let provider = spec.identityProvider {
            let challenge = ProtectedResourceMetadata.challenge(authority: head.authority, routePath: spec.path)
            guard let idp = config.identityProviders[provider] else {
                return try await refuse(MCPProtocolError(status: 503, code: MCPProtocolError.upstreamUnavailable, message: "IdentityProvider \(provider) is not in this proxy's config yet"))
            }
            guard let bearer = Self.bearer(head.headerFields[.authorization]) else {
                entry.decision = "unauthenticated"
                var fields = HTTPFields()
                fields[.wwwAuthenticate] = challenge
                return try await refuse(MCPProtocolError(status: 401, code: MCPProtocolError.unauthorized, message: "this route needs the user's bearer token from \(idp.issuer)"), headers: fields)
            }
            switch await authenticator.authenticate(bearer, provider: provider, spec: idp) {
            case .success(let token):
                user = token
                entry.user = token.subject
                entry.actors = token.actors.isEmpty ? nil : token.actors
            case .failure(.rejected(let rejection)):
                entry.decision = "unauthenticated"
                var fields = HTTPFields()
                fields[.wwwAuthenticate] = challenge + ", error=\"invalid_token\", error_description=\"\(rejection.reason.replacingOccurrences(of: "\"", with: "'"))\""
                return try await refuse(MCPProtocolError(status: 401, code: MCPProtocolError.unauthorized, message: "the bearer token is not valid: \(rejection.reason)"), headers: fields)
            case .failure(.unavailable(let reason)):
                logger.warning("cannot authenticate users", metadata: ["tether.identity_provider": "\(provider)", "reason": "\(reason)"])
                return try await refuse(MCPProtocolError(status: 503, code: MCPProtocolError.upstreamUnavailable, message: "cannot check the bearer token now: \(reason)"))
            }
        }

        // What the request asks for, and whether the caller may ask it.
        var listing: ResponseRelay.ListingFilter?
        switch head.method {
        case .post:
            let message: MCPMessage
            let inspected = body.withUnsafeReadableBytes { bytes in
                MCPRequestInspector.inspect(body: bytes, header: { head.headerFields[HTTPField.Name($0)!] })
            }
            switch inspected {
            case .success(let inspected):
                message = inspected
                messageID = inspected.id
            case .failure(let error):
                entry.decision = "invalid"
                return try await refuse(error)
            }
            guard let method = message.method else {
                // A response to a request of the server's (sampling, elicitation): not a call.
                metricMethod = "response"
                entry.decision = "allow"
                break
            }
            metricMethod = method
            entry.mcpMethod = method
            switch message.target {
            case .tool(let name)?: entry.tool = name
            case .resource(let uri)?: entry.resource = uri
            case .prompt(let name)?: entry.prompt = name
            case nil: break
            }
            let call = {
                var call = MCPCall(
                    agent: caller, claims: user?.claims, actors: (user?.actors ?? []).compactMap { try? SPIFFEID($0) }, method: method, target: message.target
                )
                // The serving side never sees the user's token: the calling proxy checked it and its claims.
                call.claimsCheckedByCaller = role == .inbound
                return call
            }()
            let decision = destination.decide(call)
            entry.decision = decision.verdict.rawValue
            entry.policy = decision.policy
            entry.rule = decision.rule
            entry.reason = decision.reason
            guard decision.allowed else {
                logger.info("MCP call denied", metadata: [
                    "tether.agent": "\(caller)", "tether.mcp.method": "\(method)", "tether.mcp.target": "\(message.target?.description ?? "")", "reason": "\(decision.reason)",
                ])
                // With a user token (MCP authorization): the user's token does not grant this call.
                var fields = HTTPFields()
                if let spec = destination.routeSpec, spec.identityProvider != nil {
                    fields[.wwwAuthenticate] = ProtectedResourceMetadata.challenge(authority: head.authority, routePath: spec.path) + ", error=\"insufficient_scope\""
                }
                return try await refuse(MCPProtocolError(status: 403, code: MCPProtocolError.accessDenied, message: "access denied: \(decision.reason)", id: message.id), headers: fields)
            }
            if MCPListFilter.isListing(method) {
                let permits = destination.permits
                listing = ResponseRelay.ListingFilter(method: method) { item in permits(item, call) }
            }
        case .get, .delete:
            // The session's event stream and its end carry no call; each call on the session is decided on its own.
            entry.decision = destination.mayOpenSession(caller) ? "allow" : "deny"
            guard entry.decision == "allow" else {
                return try await refuse(MCPProtocolError(status: 403, code: MCPProtocolError.accessDenied, message: "access denied: no route brings \(caller) to backend \(destination.backend)"))
            }
        default:
            var allow = HTTPFields()
            allow[.allow] = "GET, POST, DELETE"
            entry.decision = "invalid"
            return try await refuse(MCPProtocolError(status: 405, code: MCPProtocolError.invalidRequest, message: "MCP Streamable HTTP uses POST, GET and DELETE, not \(head.method.rawValue)"), headers: allow)
        }

        // Forward.
        var upstreamHead = HTTPRequest(method: head.method, scheme: destination.scheme, authority: destination.authority, path: destination.path)
        upstreamHead.headerFields = head.headerFields
        for name in ResponseRelay.hopByHop { upstreamHead.headerFields[name] = nil }
        // The body was read whole (and answered 100 Continue if asked): nothing to expect upstream.
        upstreamHead.headerFields[.expect] = nil
        if role == .outbound {
            // The agent's (user's) token never travels on: the route's TokenExchange supplies what the server gets.
            upstreamHead.headerFields[.authorization] = nil
            if let exchange = destination.routeSpec?.tokenExchange {
                switch await credentials.header(exchange: exchange, config: config, user: user) {
                case .success(let header): upstreamHead.headerFields[header.name] = header.value
                case .failure(let failure):
                    logger.warning("token exchange failed", metadata: ["tether.token_exchange": "\(exchange)", "reason": "\(failure.reason)"])
                    entry.upstreamError = "token_exchange"
                    return try await refuse(MCPProtocolError(status: 503, code: MCPProtocolError.upstreamUnavailable, message: "no token for the MCP server behind \(destination.label): \(failure.reason)"))
                }
            }
        }
        upstreamHead.headerFields[.traceparent] = trace.child().traceparent
        upstreamHead.headerFields[.requestID] = requestID
        if body.readableBytes > 0 { upstreamHead.headerFields[.contentLength] = "\(body.readableBytes)" }
        if case .mesh = destination.target.security, upstreamHead.headerListSize > maxHeaderListSize {
            // The serving proxy would refuse the header block, and with it the mesh connection.
            entry.upstreamError = "header_list_size"
            return try await refuse(MCPProtocolError(
                status: 431, code: MCPProtocolError.invalidRequest,
                message: "the request's headers come to \(upstreamHead.headerListSize) bytes on the mesh hop (with the ones this proxy adds); the limit is \(maxHeaderListSize)"
            ))
        }

        let relay = ResponseRelay(writer: response, filter: listing)
        do {
            // On the downstream's event loop, so the whole exchange stays on one thread.
            try await upstreams.send(
                upstreamHead, body: body, to: destination.target, on: response.channel.eventLoop,
                timeout: head.method == .post ? destination.timeout : nil
            ) { parts in try await relay.receive(parts) }
            entry.upstreamStatus = relay.status
            entry.status = entry.upstreamStatus ?? 0
            entry.responseBytes = relay.bytes
        } catch {
            let upstreamError = error as? UpstreamError
            let code = upstreamError?.code.rawValue ?? "downstream"
            entry.upstreamError = code
            entry.upstreamStatus = relay.status
            entry.responseBytes = relay.bytes
            metrics.recordUpstreamError(listener: role.rawValue, route: destination.label, code: code)
            guard !relay.started else {
                // Mid-response: all that can be done is to end the stream, which the listener does.
                entry.status = entry.upstreamStatus ?? 0
                throw error
            }
            logger.warning("upstream request failed", metadata: [
                "tether.upstream": "\(destination.target)", "reason": "\(UpstreamError.describe(error))", "error": "\(upstreamError?.cause ?? error)",
            ])
            let status = upstreamError?.code == .timeout ? 504 : 502
            let what = role == .outbound ? "backend \(destination.backend) (route \(destination.label))" : "the MCP server of backend \(destination.backend)"
            try await refuse(MCPProtocolError(status: status, code: MCPProtocolError.upstreamUnavailable, message: "\(what) is unavailable: \(UpstreamError.describe(error))"))
        }
    }

    /// Where the request goes, per role; or the error for the client.
    func destination(of head: HTTPRequest, config: DataPlaneConfig) -> Result<Destination, MCPProtocolError> {
        let engine = config.authorization
        switch role {
        case .outbound:
            let requestPath = head.path ?? "/"
            guard let (route, rest) = config.route(for: requestPath) else {
                let known = config.routePaths
                let hint = known.isEmpty ? "this proxy has no routes yet" : "its routes are \(known.joined(separator: ", "))"
                return .failure(MCPProtocolError(status: 404, code: MCPProtocolError.invalidRequest, message: "no route for \(requestPath) on this proxy; \(hint)"))
            }
            let name = route.name
            let decide: @Sendable (MCPCall) -> AuthorizationDecision = { engine.decide($0, route: name) }
            let permits: @Sendable (MCPCall.Target, MCPCall) -> Bool = { engine.permits($0, listing: $1, route: name) }
            switch route.backend.spec {
            case .inMesh(let inMesh):
                // The serving proxy picks the backend by authority and maps the path below it.
                let path = rest.hasPrefix("/") ? String(rest) : "/" + rest
                return .success(Destination(
                    target: UpstreamTarget(host: inMesh.address.host, port: inMesh.address.port, security: .mesh(inMesh.spiffeID)),
                    scheme: "https", authority: route.backend.name, path: path, label: name, route: name, backend: route.backend.name,
                    routeSpec: route.spec, decide: decide, permits: permits, mayOpenSession: { _ in true },
                    timeout: route.spec.timeout ?? DataPlaneConfig.defaultTimeout
                ))
            case .external(let external):
                let url = external.url
                let security: UpstreamTarget.Security = url.scheme == "https"
                    ? .tls(serverName: external.tls?.serverName ?? url.host, caPEM: external.tls?.caPEM, caFile: external.tls?.caFile)
                    : .cleartext
                return .success(Destination(
                    target: UpstreamTarget(host: url.host, port: url.port, security: security),
                    scheme: url.scheme, authority: UpstreamTarget.authority(of: url), path: Self.join(url.path, rest),
                    label: name, route: name, backend: route.backend.name, routeSpec: route.spec,
                    decide: decide, permits: permits, mayOpenSession: { _ in true },
                    timeout: route.spec.timeout ?? DataPlaneConfig.defaultTimeout
                ))
            }
        case .inbound:
            let authority = head.authority ?? ""
            let name = authority.split(separator: ":").first.map(String.init) ?? authority
            guard let backend = config.servedBackend(name), case .inMesh(let inMesh) = backend.spec else {
                let served = config.servedBackendNames
                let hint = served.isEmpty ? "it serves none yet" : "it serves \(served.joined(separator: ", "))"
                return .failure(MCPProtocolError(status: 404, code: MCPProtocolError.invalidRequest, message: "this proxy serves no backend \(name); \(hint)"))
            }
            let url = inMesh.upstream
            let path = head.path ?? "/"
            let rest = path == "/" || path.hasPrefix("/?") ? path.dropFirst() : path[...]
            let security: UpstreamTarget.Security = url.scheme == "https" ? .tls(serverName: url.host, caPEM: nil, caFile: nil) : .cleartext
            return .success(Destination(
                target: UpstreamTarget(host: url.host, port: url.port, security: security),
                scheme: url.scheme, authority: UpstreamTarget.authority(of: url), path: Self.join(url.path, rest),
                label: name, route: nil, backend: name, routeSpec: nil,
                decide: { engine.decide($0, backend: name) },
                permits: { engine.permits($0, listing: $1, backend: name) },
                mayOpenSession: { engine.reaches($0, backend: name) },
                timeout: config.servedTimeout(name)
            ))
        }
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

extension MCPProxyHandler {
    /// The token of an `Authorization: Bearer …` header.
    static func bearer(_ value: String?) -> String? {
        guard let value, value.count > 7, value.prefix(7).lowercased() == "bearer " else { return nil }
        let token = value.dropFirst(7).trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}

extension HTTPField.Name {
    static let traceparent = HTTPField.Name("traceparent")!
    static let requestID = HTTPField.Name("X-Request-Id")!
}
