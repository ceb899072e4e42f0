import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes
import TetherCore
import TetherIdentity

/// The request path of both data-path listeners, one step after another:
///
/// route (`Destination.resolve`: where it goes and who asks, the listener's
/// role decided once) → authenticate (the user's token, on routes that name
/// an IdentityProvider) → inspect and authorize (`RequestPlan`, without I/O)
/// → credentials (the route's TokenExchange) → forward over a pooled
/// connection → relay the response as it arrives (listings filtered) →
/// access log and metrics. Any step may refuse; the refusal is written as
/// an MCP error (`MCPErrorResponse`) carrying the request's id once known.
struct MCPProxyHandler: HTTPRequestHandler {
    let role: Destination.Role
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

    func handle(_ head: HTTPRequest, body: ByteBuffer, context: RequestContext, response: ResponseWriter) async throws {
        let config = store.current.dataPlane
        let trace = head.headerFields[.traceparent].flatMap(TraceContext.init(traceparent:)) ?? TraceContext.start()
        let requestID = head.headerFields[.requestID] ?? UUID().uuidString.lowercased()
        var record = RequestRecord(head, body: body.readableBytes, role: role, httpVersion: context.httpVersion, requestID: requestID, trace: trace)
        defer { finish(record) }
        do {
            switch try Destination.resolve(head, peer: context.peer, role: role, node: node, config: config).get() {
            case .protectedResourceMetadata(let path):
                let document = try ProtectedResourceMetadata.document(path: path, authority: head.authority, config: config).get()
                record.entry.decision = "allow"
                try await write(document, to: response, record: &record)
            case .forward(let destination):
                record.record(destination)
                let user = try await authenticate(head, for: destination, config: config)
                record.record(user)
                let plan = try RequestPlan.make(head, body: body, to: destination, user: user, config: config, requestID: requestID, trace: trace).get()
                record.record(plan)
                let credential = try await credential(for: destination, user: user, config: config)
                let upstream = try plan.upstream(with: credential, to: destination, maxHeaderListSize: maxHeaderListSize).get()
                try await forward(upstream, body: body, plan: plan, to: destination, response: response, record: &record)
            }
        } catch let refusal as Refusal {
            var error = refusal.error
            error.id = error.id ?? record.messageID
            record.record(refusal, as: error)
            try await response.write(contentsOf: MCPErrorResponse.parts(error, headers: refusal.headers))
        }
    }

    /// The user behind the call, on routes that name an IdentityProvider:
    /// 401 with the MCP authorization challenge without a valid token.
    func authenticate(_ head: HTTPRequest, for destination: Destination, config: DataPlaneConfig) async throws(Refusal) -> UserToken? {
        guard let spec = destination.routeSpec, let provider = spec.identityProvider else { return nil }
        guard let idp = config.identityProviders[provider] else {
            throw Refusal(.unavailable, "IdentityProvider \(provider) is not in this proxy's config yet")
        }
        var challenge = HTTPFields()
        challenge[.wwwAuthenticate] = ProtectedResourceMetadata.challenge(authority: head.authority, routePath: spec.path)
        guard let bearer = Self.bearer(head.headerFields[.authorization]) else {
            throw Refusal(.unauthenticated, "this route needs the user's bearer token from \(idp.issuer)", headers: challenge, verdict: "unauthenticated")
        }
        switch await authenticator.authenticate(bearer, provider: provider, spec: idp) {
        case .success(let token):
            return token
        case .failure(.rejected(let rejection)):
            challenge[.wwwAuthenticate]! += ", error=\"invalid_token\", error_description=\"\(rejection.reason.replacingOccurrences(of: "\"", with: "'"))\""
            throw Refusal(.unauthenticated, "the bearer token is not valid: \(rejection.reason)", headers: challenge, verdict: "unauthenticated")
        case .failure(.unavailable(let reason)):
            logger.warning("cannot authenticate users", metadata: ["tether.identity_provider": "\(provider)", "reason": "\(reason)"])
            throw Refusal(.unavailable, "cannot check the bearer token now: \(reason)")
        }
    }

    /// What the route's TokenExchange gives the server (nil without one):
    /// a token minted for it, or a vaulted credential.
    func credential(for destination: Destination, user: UserToken?, config: DataPlaneConfig) async throws(Refusal) -> HTTPField? {
        guard let exchange = destination.routeSpec?.tokenExchange else { return nil }
        switch await credentials.header(exchange: exchange, config: config, user: user) {
        case .success(let header):
            return HTTPField(name: header.name, value: header.value)
        case .failure(let failure):
            logger.warning("token exchange failed", metadata: ["tether.token_exchange": "\(exchange)", "reason": "\(failure.reason)"])
            throw Refusal(MCPProtocolError(.unavailable, "no token for the MCP server behind \(destination.label): \(failure.reason)"), upstreamError: "token_exchange")
        }
    }

    /// Sends the request over a pooled connection on the downstream's event
    /// loop (the whole exchange stays on one thread) and relays the answer.
    /// Before the response has begun, a failure is a refusal (502, or 504 past
    /// the route's timeout); after, it can only end the stream.
    func forward(
        _ upstream: HTTPRequest, body: ByteBuffer, plan: RequestPlan, to destination: Destination, response: ResponseWriter, record: inout RequestRecord
    ) async throws {
        let relay = ResponseRelay(writer: response, filter: plan.listing)
        defer {
            record.entry.upstreamStatus = relay.status
            record.entry.status = relay.status ?? 0
            record.entry.responseBytes = relay.bytes
        }
        do {
            try await upstreams.send(
                upstream, body: body, to: destination.target, on: response.channel.eventLoop, timeout: upstream.method == .post ? destination.timeout : nil
            ) { parts in try await relay.receive(parts) }
        } catch {
            let upstreamError = error as? UpstreamError
            let code = upstreamError?.code.rawValue ?? "downstream"
            record.entry.upstreamError = code
            metrics.recordUpstreamError(listener: role.rawValue, route: destination.label, code: code)
            guard !relay.started else { throw error }
            logger.warning("upstream request failed", metadata: [
                "tether.upstream": "\(destination.target)", "reason": "\(UpstreamError.describe(error))", "error": "\(upstreamError?.cause ?? error)",
            ])
            let what = destination.route.map { "backend \(destination.backend) (route \($0))" } ?? "the MCP server of backend \(destination.backend)"
            throw Refusal(MCPProtocolError(upstreamError?.code == .timeout ? .upstreamTimeout : .upstreamUnavailable, "\(what) is unavailable: \(UpstreamError.describe(error))"))
        }
    }

    /// A small JSON document the proxy answers itself.
    func write(_ document: Data, to response: ResponseWriter, record: inout RequestRecord) async throws {
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        fields[.contentLength] = "\(document.count)"
        record.entry.status = 200
        record.entry.responseBytes = document.count
        try await response.write(contentsOf: [.head(HTTPResponse(status: .ok, headerFields: fields)), .body(ByteBuffer(bytes: document)), .end(nil)])
    }

    /// Writes the access-log line and the metrics of an answered request.
    func finish(_ record: RequestRecord) {
        var entry = record.entry
        let duration = ContinuousClock.now - record.started
        entry.durationMs = Double(duration / .microseconds(1)) / 1000
        if accessLog.isEnabled {
            // Formatting a timestamp is not free: only when there is a log to write.
            entry.time = AccessLog.timestamp(record.startedAt)
            accessLog.write(entry)
        }
        metrics.recordRequest(
            listener: role.rawValue, route: entry.route ?? entry.backend ?? "", method: record.metricMethod,
            decision: entry.decision, status: entry.status, duration: duration
        )
        if entry.decision == "deny" {
            logger.info("MCP call denied", metadata: [
                "tether.agent": "\(entry.agent ?? "")", "tether.mcp.method": "\(entry.mcpMethod ?? entry.httpMethod)",
                "tether.mcp.target": "\(entry.tool ?? entry.resource ?? entry.prompt ?? "")", "reason": "\(entry.reason ?? "")",
            ])
        }
    }

    /// The token of an `Authorization: Bearer …` header.
    static func bearer(_ value: String?) -> String? {
        guard let value, value.count > 7, value.prefix(7).lowercased() == "bearer " else { return nil }
        let token = value.dropFirst(7).trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}
