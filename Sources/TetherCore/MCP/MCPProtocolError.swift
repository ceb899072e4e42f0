import Foundation

/// Why the data path answers a request itself instead of forwarding it: a
/// stable code, which fixes both the HTTP status and the JSON-RPC error
/// code, a message that says what is wrong without quoting the body, and
/// the request's id once it is known (JSON-RPC 2.0 §5).
///
/// ```swift
/// throw MCPProtocolError(.accessDenied, "access denied: \(decision.reason)", id: message.id)
/// ```
public struct MCPProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable {
        /// The body is not JSON (or nests too deep to read).
        case parseError
        /// Not one JSON-RPC message of the shape MCP allows.
        case invalidRequest
        /// The params that name the target are missing or malformed.
        case invalidParams
        /// MCP 2026-07-28: `Mcp-Method` / `Mcp-Name` missing or disagreeing with the body.
        case headerMismatch
        case bodyTooLarge
        case headersTooLarge
        /// The body did not arrive within the body timeout.
        case bodyTimeout
        /// No route for the path (outbound), no such served backend (inbound).
        case notFound
        case methodNotAllowed
        /// The user's bearer token is missing or invalid, or the caller
        /// presented no identity (401 with `WWW-Authenticate`).
        case unauthenticated
        /// An AuthorizationPolicy denies the call.
        case accessDenied
        /// Something this proxy needs is not there yet or cannot be reached
        /// (an IdentityProvider, a token service).
        case unavailable
        /// The upstream could not be reached or broke off.
        case upstreamUnavailable
        /// The upstream stayed silent past the route's timeout.
        case upstreamTimeout

        public var httpStatus: Int {
            switch self {
            case .parseError, .invalidRequest, .invalidParams, .headerMismatch: 400
            case .unauthenticated: 401
            case .accessDenied: 403
            case .notFound: 404
            case .methodNotAllowed: 405
            case .bodyTimeout: 408
            case .bodyTooLarge: 413
            case .headersTooLarge: 431
            case .upstreamUnavailable: 502
            case .unavailable: 503
            case .upstreamTimeout: 504
            }
        }

        /// JSON-RPC's own codes where one fits; the server-error range
        /// (-32000 to -32099) for the rest, as MCP servers use it.
        public var jsonRPCCode: Int {
            switch self {
            case .parseError: -32700
            case .invalidRequest, .bodyTooLarge, .headersTooLarge, .bodyTimeout, .notFound, .methodNotAllowed: -32600
            case .invalidParams: -32602
            case .headerMismatch: -32020
            case .unauthenticated: -32001
            case .accessDenied: -32003
            case .unavailable, .upstreamUnavailable, .upstreamTimeout: -32004
            }
        }
    }

    public var code: Code
    public var message: String
    /// The request's id when it could be read, so the client can match the error.
    public var id: JSONRPCID?

    public init(_ code: Code, _ message: String, id: JSONRPCID? = nil) {
        self.code = code
        self.message = message
        self.id = id
    }

    public var status: Int { code.httpStatus }
    public var jsonRPCCode: Int { code.jsonRPCCode }
    public var description: String { message }

    /// The JSON-RPC error response body.
    public var body: Data {
        let object: [String: Any] = ["jsonrpc": "2.0", "id": id?.json ?? NSNull(), "error": ["code": jsonRPCCode, "message": message]]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
    }
}
