import Foundation
import HTTPTypes
import TetherCore
import TetherIdentity

/// What one request did, as the request path learns it step by step: the
/// access-log entry and the request metrics' labels, written once the
/// request has been answered (`MCPProxyHandler.finish`).
struct RequestRecord {
    var entry: AccessLogEntry
    var metricMethod: String
    /// The JSON-RPC id, once the body is read: every error from then on echoes it.
    var messageID: JSONRPCID?
    let started = ContinuousClock.now
    let startedAt = Date()

    init(_ head: HTTPRequest, body: Int, role: Destination.Role, httpVersion: String, requestID: String, trace: TraceContext) {
        entry = AccessLogEntry(
            time: "", requestID: requestID, traceID: trace.traceID, listener: role.rawValue, httpVersion: httpVersion,
            agent: nil, user: nil, actors: nil, route: nil, backend: nil, httpMethod: head.method.rawValue, path: head.path ?? "",
            mcpMethod: nil, tool: nil, resource: nil, prompt: nil, decision: "none", policy: nil, rule: nil, reason: nil,
            status: 0, upstreamStatus: nil, upstreamError: nil, durationMs: 0, requestBytes: body, responseBytes: 0
        )
        metricMethod = head.method.rawValue
    }

    mutating func record(_ destination: Destination) {
        entry.agent = destination.caller.description
        entry.route = destination.route
        entry.backend = destination.backend
    }

    mutating func record(_ user: UserToken?) {
        entry.user = user?.subject
        entry.actors = user.flatMap { $0.actors.isEmpty ? nil : $0.actors }
    }

    mutating func record(_ plan: RequestPlan) {
        metricMethod = plan.metricMethod
        messageID = plan.message?.id
        record(plan.message)
        // A request that is no call (a client's response, a session's GET or DELETE) is allowed as such.
        record(plan.decision, verdict: "allow")
    }

    mutating func record(_ message: MCPMessage?) {
        entry.mcpMethod = message?.method
        switch message?.target {
        case .tool(let name)?: entry.tool = name
        case .resource(let uri)?: entry.resource = uri
        case .prompt(let name)?: entry.prompt = name
        case nil: break
        }
    }

    mutating func record(_ decision: AuthorizationDecision?, verdict: String) {
        entry.decision = decision?.verdict.rawValue ?? verdict
        entry.policy = decision?.policy
        entry.rule = decision?.rule
        entry.reason = decision?.reason
    }

    /// A refusal, about to be written as `error`.
    mutating func record(_ refusal: Refusal, as error: MCPProtocolError) {
        if let message = refusal.message {
            record(message)
            metricMethod = message.method ?? metricMethod
        }
        if let verdict = refusal.verdict { record(refusal.decision, verdict: verdict) }
        entry.upstreamError = refusal.upstreamError ?? entry.upstreamError
        entry.status = error.status
        entry.responseBytes = error.body.count
        entry.reason = entry.reason ?? error.message
    }
}
