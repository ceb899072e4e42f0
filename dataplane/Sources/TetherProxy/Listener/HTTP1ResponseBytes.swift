import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// A complete HTTP/1.1 response as bytes on the wire, for the few answers
/// a listener writes past NIO's HTTP/1.1 encoder (see
/// `RequestDispatcher.refuse`): a status line, the head's fields as given
/// (they carry their Content-Length), the body.
enum HTTP1ResponseBytes {
    static func encode(_ parts: [HTTPResponsePart]) -> ByteBuffer {
        var bytes = ByteBuffer()
        for part in parts {
            switch part {
            case .head(let head):
                bytes.writeString("HTTP/1.1 \(head.status.code) \(head.status.reasonPhrase)\r\n")
                for field in head.headerFields {
                    bytes.writeString("\(field.name.rawName): \(field.value)\r\n")
                }
                bytes.writeString("\r\n")
            case .body(var chunk):
                bytes.writeBuffer(&chunk)
            case .end:
                break
            }
        }
        return bytes
    }
}
