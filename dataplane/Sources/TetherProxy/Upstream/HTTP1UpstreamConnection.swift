import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization

/// One keep-alive HTTP/1.1 connection to an upstream. It carries one
/// exchange at a time: the pool hands it to the next request only once a
/// response has ended cleanly. Its `UpstreamResponseReader` keeps reading
/// while the connection idles in the pool, so a connection the server
/// closed is seen as inactive rather than handed out.
final class HTTP1UpstreamConnection: Sendable {
    let response: UpstreamResponse
    /// Whether it has carried an exchange before (a reused connection may
    /// have been closed by the server meanwhile).
    let used = Atomic<Bool>(false)

    init(_ response: UpstreamResponse) {
        self.response = response
    }

    var channel: any Channel { response.channel }
    var isActive: Bool { channel.isActive }

    func close() {
        channel.close(promise: nil)
    }
}
