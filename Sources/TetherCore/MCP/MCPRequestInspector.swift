import Foundation

extension NSNumber {
    /// JSONSerialization gives JSON booleans as NSNumbers too, of the
    /// `__NSCFBoolean` class on Linux and Darwin alike.
    public var isJSONBoolean: Bool {
        String(describing: type(of: self)) == "__NSCFBoolean"
    }
}

/// A JSON-RPC id as MCP allows it: a string or an integer (never null).
public enum JSONRPCID: Hashable, Sendable, CustomStringConvertible {
    case string(String)
    case number(Int64)

    /// The id as the envelope reader found it; nil for anything MCP does not
    /// allow as an id (null, a fraction, a boolean, a structure).
    init?(_ value: JSONRPCEnvelope.Value) {
        switch value {
        case .string(let text): self = .string(text)
        case .integer(let number): self = .number(number)
        case .other: return nil
        }
    }

    var json: Any {
        switch self {
        case .string(let text): text
        case .number(let number): number
        }
    }

    public var description: String {
        switch self {
        case .string(let text): "\"\(text)\""
        case .number(let number): "\(number)"
        }
    }
}

/// What the proxy needs to know about one MCP message a client POSTed.
public struct MCPMessage: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        /// A request: it gets a response with the same id.
        case request(JSONRPCID)
        /// A notification: no id, no response (the server answers 202).
        case notification
        /// The client's answer to a request the server sent it.
        case response(JSONRPCID)
    }

    public var kind: Kind
    /// The JSON-RPC method; nil for responses.
    public var method: String?
    /// The tool, resource or prompt the method names.
    public var target: MCPCall.Target?
    /// The `MCP-Protocol-Version` header, if any.
    public var protocolVersion: String?

    public var id: JSONRPCID? {
        switch kind {
        case .request(let id), .response(let id): id
        case .notification: nil
        }
    }
}

/// Reads the JSON-RPC message of an MCP Streamable HTTP POST — method, id,
/// and the tool / resource / prompt it names — and checks what a proxy must
/// check before routing on it: size, JSON, the JSON-RPC shape, the params
/// that name the target, and (MCP 2026-07-28) that the `Mcp-Method` and
/// `Mcp-Name` headers say what the body says, so nothing that routes or
/// authorizes on headers can be told something else than the server
/// executes. The body itself is never re-encoded: the proxy forwards the
/// bytes it received.
///
/// The body is read by `JSONRPCEnvelopeReader`, which validates the whole
/// document without building it: memory stays at the body's own size
/// whatever the body holds (a 4 MiB batch once cost 80 times that as
/// Foundation objects), and duplicate members resolve as in the MCP SDKs,
/// the last one winning.
public enum MCPRequestInspector {
    public static let defaultBodyLimit = 4 * 1024 * 1024
    /// The first revision whose requests carry the mirrored headers.
    public static let headerRevision = "2026-07-28"

    /// Methods whose params name a target.
    enum TargetParam { case name, uri }
    static let targetParams: [String: TargetParam] = ["tools/call": .name, "resources/read": .uri, "prompts/get": .name]

    /// - Parameter header: the value of a request header, by case-insensitive name.
    public static func inspect(body: UnsafeRawBufferPointer, header: (String) -> String?, limit: Int = defaultBodyLimit) -> Result<MCPMessage, MCPProtocolError> {
        guard body.count <= limit else {
            return .failure(MCPProtocolError(.bodyTooLarge, "the request body is \(body.count) bytes; the limit is \(limit)"))
        }
        switch JSONRPCEnvelopeReader.read(body) {
        case .success(let envelope):
            return inspect(envelope, header: header)
        case .failure(.invalidJSON(let offset)):
            return .failure(MCPProtocolError(.parseError, "the request body is not valid JSON (at byte \(offset))"))
        case .failure(.tooDeep(let offset)):
            return .failure(MCPProtocolError(.parseError, "the request body nests deeper than \(JSONRPCEnvelopeReader.maximumDepth) levels (at byte \(offset))"))
        case .failure(.batch):
            return .failure(MCPProtocolError(.invalidRequest, "JSON-RPC batches are not part of MCP (since 2025-06-18); send one message per request"))
        case .failure(.notAnObject):
            return .failure(MCPProtocolError(.invalidRequest, "a JSON-RPC message must be a JSON object"))
        }
    }

    public static func inspect(body: Data, header: (String) -> String?, limit: Int = defaultBodyLimit) -> Result<MCPMessage, MCPProtocolError> {
        body.withUnsafeBytes { inspect(body: $0, header: header, limit: limit) }
    }

    static func inspect(_ envelope: JSONRPCEnvelope, header: (String) -> String?) -> Result<MCPMessage, MCPProtocolError> {
        var id: JSONRPCID?
        if let rawID = envelope.id {
            guard let parsed = JSONRPCID(rawID) else {
                return .failure(MCPProtocolError(.invalidRequest, "id must be a string or an integer"))
            }
            id = parsed
        }
        func invalid(_ message: String, code: MCPProtocolError.Code = .invalidRequest) -> Result<MCPMessage, MCPProtocolError> {
            .failure(MCPProtocolError(code, message, id: id))
        }
        guard envelope.jsonrpc == .string("2.0") else {
            return invalid("jsonrpc must be \"2.0\"")
        }
        let version = header("mcp-protocol-version")
        guard let methodValue = envelope.method else {
            guard let id, envelope.hasResult || envelope.hasError else {
                return invalid("a JSON-RPC message needs a method (request or notification) or an id with a result or error (response)")
            }
            return .success(MCPMessage(kind: .response(id), method: nil, target: nil, protocolVersion: version))
        }
        guard case .string(let method) = methodValue, !method.isEmpty else {
            return invalid("method must be a non-empty string")
        }
        var target: MCPCall.Target?
        if let params = envelope.params {
            guard params == .other(.object) else {
                return invalid("params must be an object", code: .invalidParams)
            }
            if let param = targetParams[method] {
                let key = param == .name ? "name" : "uri"
                guard case .string(let value)? = param == .name ? envelope.paramsName : envelope.paramsURI, !value.isEmpty else {
                    return invalid("\(method) needs params.\(key) (a non-empty string)", code: .invalidParams)
                }
                target = switch method {
                case "tools/call": .tool(value)
                case "resources/read": .resource(value)
                default: .prompt(value)
                }
            }
        } else if let param = targetParams[method] {
            return invalid("\(method) needs params.\(param == .name ? "name" : "uri")", code: .invalidParams)
        }
        // The mirrored headers: required from 2026-07-28 on, checked whenever present.
        let modern = version.map { $0 >= headerRevision } ?? false
        let headerMethod = header("mcp-method")
        if let headerMethod, headerMethod != method {
            return invalid("the Mcp-Method header says \(headerMethod) but the body's method is \(method)", code: .headerMismatch)
        }
        if modern, headerMethod == nil {
            return invalid("MCP \(version!) requests must carry the Mcp-Method header", code: .headerMismatch)
        }
        if let target {
            let name = switch target {
            case .tool(let value), .resource(let value), .prompt(let value): value
            }
            let headerName = header("mcp-name")
            if let headerName, headerName != name {
                return invalid("the Mcp-Name header says \(headerName) but the body names \(name)", code: .headerMismatch)
            }
            if modern, headerName == nil {
                return invalid("MCP \(version!) \(method) requests must carry the Mcp-Name header", code: .headerMismatch)
            }
        }
        return .success(MCPMessage(kind: id.map(MCPMessage.Kind.request) ?? .notification, method: method, target: target, protocolVersion: version))
    }
}
