import HTTPTypes
import TetherCore

/// The data path answering a request itself: the MCP error for the client,
/// the response fields that go with it (`WWW-Authenticate`, `Allow`), and
/// what the access log records about why. Every step of the request path
/// throws one; `MCPProxyHandler` writes it.
struct Refusal: Error {
    var error: MCPProtocolError
    var headers: HTTPFields = [:]
    /// The access log's `decision`: `invalid`, `deny`, `unauthenticated`
    /// (nil: as far as the request got, e.g. `allow` before an upstream failure).
    var verdict: String?
    /// The policy decision that denied the call, for the access log.
    var decision: AuthorizationDecision?
    /// The access log's `upstreamError` (`token_exchange`, `connect`, …).
    var upstreamError: String?
    /// The MCP message refused, when it was read (for the log and metrics).
    var message: MCPMessage?

    init(
        _ error: MCPProtocolError, headers: HTTPFields = [:], verdict: String? = nil, decision: AuthorizationDecision? = nil,
        upstreamError: String? = nil, message: MCPMessage? = nil
    ) {
        self.error = error
        self.headers = headers
        self.verdict = verdict
        self.decision = decision
        self.upstreamError = upstreamError
        self.message = message
    }

    init(_ code: MCPProtocolError.Code, _ message: String, headers: HTTPFields = [:], verdict: String? = nil) {
        self.init(MCPProtocolError(code, message), headers: headers, verdict: verdict)
    }
}
