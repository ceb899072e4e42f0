import HTTPTypes
import NIOCore
import TetherCore
import TetherIdentity

/// What to do with one request under one config, decided without I/O: the
/// MCP message it carries, whether the caller may make that call, how to
/// filter a listing's answer, and the request to send upstream. The steps
/// with I/O around it — authenticating the user before, adding credentials
/// and forwarding after — only carry it out.
///
/// ```swift
/// let plan = try RequestPlan.make(head, body: body, to: destination, user: user, config: config, requestID: id, trace: trace).get()
/// ```
struct RequestPlan: Sendable {
    /// The JSON-RPC message of a POST; nil for a session's GET or DELETE.
    var message: MCPMessage?
    /// The policy decision on the call; nil when the request is no call
    /// (a client's JSON-RPC response, a session's GET or DELETE).
    var decision: AuthorizationDecision?
    /// For a listing (`tools/list` …): which items the caller may see.
    var listing: ResponseRelay.ListingFilter?
    /// The request for the upstream, before any credential is added.
    var upstream: HTTPRequest
    /// The method label of the request metrics: the MCP method, `response`, or the HTTP method.
    var metricMethod: String

    static func make(
        _ head: HTTPRequest, body: ByteBuffer, to destination: Destination, user: UserToken?, config: DataPlaneConfig, requestID: String, trace: TraceContext
    ) -> Result<RequestPlan, Refusal> {
        var plan = RequestPlan(message: nil, decision: nil, listing: nil, upstream: head, metricMethod: head.method.rawValue)
        switch head.method {
        case .post:
            let inspected = body.withUnsafeReadableBytes { bytes in
                MCPRequestInspector.inspect(body: bytes, header: { head.headerFields[HTTPField.Name($0)!] })
            }
            switch inspected {
            case .success(let message): plan.message = message
            case .failure(let error): return .failure(Refusal(error, verdict: "invalid"))
            }
            if let refusal = plan.authorize(to: destination, user: user, engine: config.authorization, authority: head.authority) {
                return .failure(refusal)
            }
        case .get, .delete:
            // The session's event stream and its end carry no call; each call on the session is decided on its own.
            guard config.authorization.mayOpenSession(destination.caller, in: destination.scope) else {
                return .failure(Refusal(.accessDenied, "access denied: no route brings \(destination.caller) to backend \(destination.backend)", verdict: "deny"))
            }
        default:
            var allow = HTTPFields()
            allow[.allow] = "GET, POST, DELETE"
            return .failure(Refusal(.methodNotAllowed, "MCP Streamable HTTP uses POST, GET and DELETE, not \(head.method.rawValue)", headers: allow, verdict: "invalid"))
        }
        plan.upstream = upstreamRequest(head, body: body, to: destination, requestID: requestID, trace: trace)
        if plan.listing != nil {
            // A listing is filtered on the way back, so it must come back readable.
            plan.upstream.headerFields[.acceptEncoding] = nil
        }
        return .success(plan)
    }

    /// Decides the POSTed call, and prepares the listing filter; a refusal
    /// when the caller may not make it. A client's JSON-RPC response (to the
    /// server's sampling or elicitation) is no call and passes.
    private mutating func authorize(to destination: Destination, user: UserToken?, engine: AuthorizationEngine, authority: String?) -> Refusal? {
        guard let message, let method = message.method else {
            metricMethod = "response"
            return nil
        }
        metricMethod = method
        var call = MCPCall(agent: destination.caller, claims: user?.claims, actors: (user?.actors ?? []).compactMap { try? SPIFFEID($0) }, method: method, target: message.target)
        call.claimsCheckedByCaller = destination.claimsCheckedByCaller
        let decision = engine.decide(call, in: destination.scope)
        self.decision = decision
        guard decision.allowed else {
            // With a user token (MCP authorization): the user's token does not grant this call.
            var fields = HTTPFields()
            if let spec = destination.routeSpec, spec.identityProvider != nil {
                fields[.wwwAuthenticate] = ProtectedResourceMetadata.challenge(authority: authority, routePath: spec.path) + ", error=\"insufficient_scope\""
            }
            return Refusal(
                MCPProtocolError(.accessDenied, "access denied: \(decision.reason)", id: message.id), headers: fields, verdict: "deny", decision: decision, message: message
            )
        }
        if MCPListFilter.isListing(method) {
            let (scope, listed) = (destination.scope, call)
            listing = ResponseRelay.ListingFilter(method: method) { item in engine.permits(item, listing: listed, in: scope) }
        }
        return nil
    }

    /// The request as it leaves: the destination's scheme, authority and
    /// path; the client's fields without hop-by-hop ones, `Expect` (the body
    /// was read whole) and, leaving the agent's side, `Authorization`; the
    /// trace continued, the request id kept or set.
    static func upstreamRequest(_ head: HTTPRequest, body: ByteBuffer, to destination: Destination, requestID: String, trace: TraceContext) -> HTTPRequest {
        var upstream = HTTPRequest(method: head.method, scheme: destination.scheme, authority: destination.authority, path: destination.path)
        upstream.headerFields = head.headerFields
        for name in ResponseRelay.hopByHop { upstream.headerFields[name] = nil }
        upstream.headerFields[.expect] = nil
        if destination.replacesAuthorization { upstream.headerFields[.authorization] = nil }
        upstream.headerFields[.traceparent] = trace.child().traceparent
        upstream.headerFields[.requestID] = requestID
        if body.readableBytes > 0 { upstream.headerFields[.contentLength] = "\(body.readableBytes)" }
        return upstream
    }

    /// The upstream request with the credential the route's TokenExchange
    /// produced; refused when its headers would exceed the serving proxy's
    /// header-list limit on a mesh hop — that proxy would refuse the header
    /// block, and with it the mesh connection.
    func upstream(with credential: HTTPField?, to destination: Destination, maxHeaderListSize: Int) -> Result<HTTPRequest, Refusal> {
        var upstream = upstream
        if let credential { upstream.headerFields[credential.name] = credential.value }
        if case .mesh = destination.target.security, upstream.headerListSize > maxHeaderListSize {
            return .failure(Refusal(
                MCPProtocolError(.headersTooLarge, "the request's headers come to \(upstream.headerListSize) bytes on the mesh hop (with the ones this proxy adds); the limit is \(maxHeaderListSize)"),
                upstreamError: "header_list_size"
            ))
        }
        return .success(upstream)
    }
}

extension HTTPField.Name {
    static let traceparent = HTTPField.Name("traceparent")!
    static let requestID = HTTPField.Name("X-Request-Id")!
}
