import HTTPTypes
import NIOCore
import NIOHTTP2
import NIOHTTPTypes
import NIOHTTPTypesHTTP2

/// One HTTP/2 connection to a serving proxy; every request to that proxy
/// is a stream on it, so one mTLS handshake serves them all.
final class HTTP2UpstreamConnection: Sendable {
    let channel: any Channel
    let multiplexer: NIOHTTP2Handler.AsyncStreamMultiplexer<Void>

    init(channel: any Channel, multiplexer: NIOHTTP2Handler.AsyncStreamMultiplexer<Void>) {
        self.channel = channel
        self.multiplexer = multiplexer
    }

    var isActive: Bool { channel.isActive }

    func exchange(_ head: HTTPRequest, body: ByteBuffer, receive: @escaping ResponsePartReceiver) async throws {
        let stream: NIOAsyncChannel<HTTPResponsePart, HTTPRequestPart>
        do {
            stream = try await multiplexer.openStream { stream in
                stream.eventLoop.makeCompletedFuture {
                    try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTPClientCodec())
                    return try NIOAsyncChannel<HTTPResponsePart, HTTPRequestPart>(wrappingChannelSynchronously: stream)
                }
            }
        } catch {
            throw UpstreamError(code: .closedBeforeResponse, reason: "cannot open a stream to the serving proxy: \(error)")
        }
        // Cancelled (a timeout, the client gone): resetting the stream ends the exchange.
        let streamChannel = stream.channel
        try await withTaskCancellationHandler {
            try await exchange(on: stream, head: head, body: body, receive: receive)
        } onCancel: {
            streamChannel.close(promise: nil)
        }
    }

    private func exchange(
        on stream: NIOAsyncChannel<HTTPResponsePart, HTTPRequestPart>, head: HTTPRequest, body: ByteBuffer, receive: @escaping ResponsePartReceiver
    ) async throws {
        try await stream.executeThenClose { inbound, outbound in
            do {
                try await outbound.write(contentsOf: HTTPRequestPart.whole(head, body: body))
            } catch {
                throw UpstreamError(code: .closedBeforeResponse, reason: "the serving proxy refused the request: \(error)")
            }
            var started = false
            do {
                for try await part in inbound {
                    if case .head(let head) = part {
                        if head.status.kind == .informational { continue }
                        started = true
                    }
                    try await receive(part)
                    if case .end = part { return }
                }
            } catch let error as UpstreamError {
                throw error
            } catch where !started {
                throw UpstreamError(code: .closedBeforeResponse, reason: "the serving proxy failed the request: \(error)")
            }
            throw UpstreamError(code: started ? .truncated : .closedBeforeResponse, reason: "the serving proxy ended the stream before the response ended")
        }
    }
}
