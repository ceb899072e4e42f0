import HTTPTypes
import NIOCore
import NIOHTTPTypes
import TetherCore

/// The one place where an `MCPProtocolError` becomes an HTTP response: its
/// code's status, a JSON-RPC error body with a length, and any fields the
/// refusal adds. Listeners, the dispatcher's limits and the request path
/// all answer through it.
enum MCPErrorResponse {
    static func parts(_ error: MCPProtocolError, headers extra: HTTPFields = [:], close: Bool = false) -> [HTTPResponsePart] {
        let body = error.body
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        fields[.contentLength] = "\(body.count)"
        if close { fields[.connection] = "close" }
        fields.append(contentsOf: extra)
        return [.head(HTTPResponse(status: .init(code: error.status), headerFields: fields)), .body(ByteBuffer(bytes: body)), .end(nil)]
    }
}
