/// What the proxy needs from one JSON-RPC message.
///
/// Only the members that routing and policy look at are kept; everything else
/// in the message is validated and skipped. When a member occurs more than once
/// the last occurrence wins, as in the MCP Python SDK.
public struct JSONRPCEnvelope: Sendable, Equatable {
    /// A top-level member's value, summarized: strings and integers are kept
    /// because ids, methods and tool names are; anything else only by kind.
    public enum Value: Sendable, Equatable {
        /// A string with its escapes resolved.
        case string(String)
        /// A JSON number whose value is integral and fits `Int64`, whatever
        /// its spelling: `1`, `1.0`, `1e2` and `-0` all count.
        case integer(Int64)
        /// Any other value.
        case other(Kind)

        public enum Kind: Sendable, Equatable {
            case null, bool, number, string, array, object
        }
    }

    /// `nil` when the member is absent.
    public var jsonrpc: Value?
    public var id: Value?
    public var method: Value?
    /// Whether a `result` member is present, whatever its value.
    public var hasResult: Bool
    /// Whether an `error` member is present, whatever its value.
    public var hasError: Bool
    /// `.other(.object)` when `params` is an object; its members of interest
    /// are then in `paramsName` and `paramsURI`.
    public var params: Value?
    /// `params.name`, only when `params` is an object.
    public var paramsName: Value?
    /// `params.uri`, only when `params` is an object.
    public var paramsURI: Value?

    public init(
        jsonrpc: Value? = nil,
        id: Value? = nil,
        method: Value? = nil,
        hasResult: Bool = false,
        hasError: Bool = false,
        params: Value? = nil,
        paramsName: Value? = nil,
        paramsURI: Value? = nil
    ) {
        self.jsonrpc = jsonrpc
        self.id = id
        self.method = method
        self.hasResult = hasResult
        self.hasError = hasError
        self.params = params
        self.paramsName = paramsName
        self.paramsURI = paramsURI
    }
}
