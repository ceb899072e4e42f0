import HTTPTypes
import NIOCore
import NIOHTTP2
import NIOHTTPTypes
import NIOHTTPTypesHTTP2

/// One HTTP/2 connection to a serving proxy; every request to that proxy
/// is a stream on it, so one mTLS handshake serves them all.
final class HTTP2UpstreamConnection: Sendable {
    let channel: any Channel
    let multiplexer: NIOHTTP2Handler.StreamMultiplexer

    init(channel: any Channel, multiplexer: NIOHTTP2Handler.StreamMultiplexer) {
        self.channel = channel
        self.multiplexer = multiplexer
    }

    var isActive: Bool { channel.isActive }

    /// Opens a stream and sends the request on it, in one step on the
    /// connection's event loop.
    func open(_ head: HTTPRequest, body: ByteBuffer) async throws -> UpstreamResponse {
        let promise = channel.eventLoop.makePromise(of: UpstreamResponse.self)
        let opened = channel.eventLoop.makePromise(of: (any Channel).self)
        // A stream that cannot be opened (the connection is closing) fails `opened`;
        // the initializer succeeds `promise` first otherwise (a second completion is ignored).
        opened.futureResult.whenFailure { promise.fail($0) }
        multiplexer.createStreamChannel(promise: opened) { stream in
            stream.eventLoop.makeCompletedFuture {
                let reader = UpstreamResponseReader()
                try stream.pipeline.syncOperations.addHandlers(HTTP2FramePayloadToHTTPClientCodec(), reader)
                let response = UpstreamResponse(channel: stream, reader: reader)
                response.send(head, body: body)
                promise.succeed(response)
            }
        }
        do {
            return try await promise.futureResult.get()
        } catch {
            throw UpstreamError(code: .closedBeforeResponse, reason: "cannot open a stream to the serving proxy: \(error)")
        }
    }
}
