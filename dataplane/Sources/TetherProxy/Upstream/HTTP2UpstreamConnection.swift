import HTTPTypes
import NIOCore
import NIOHTTP2
import NIOHTTPTypes
import NIOHTTPTypesHTTP2
import Synchronization

/// One HTTP/2 connection to a serving proxy; every request to that proxy
/// is a stream on it, so one mTLS handshake serves them all.
///
/// A connection that received GOAWAY takes no new streams (`isUsable`), and
/// a stream the serving proxy never processed — above the GOAWAY's last
/// stream ID, or refused with REFUSED_STREAM — may be sent again on a new
/// connection (RFC 9113 §6.8, §8.7).
final class HTTP2UpstreamConnection: Sendable {
    let channel: any Channel
    let multiplexer: NIOHTTP2Handler.StreamMultiplexer
    /// The last stream ID of the lowest GOAWAY received; -1 before any.
    private let goAwayLastStreamID = Atomic<Int32>(-1)

    init(channel: any Channel, multiplexer: NIOHTTP2Handler.StreamMultiplexer) {
        self.channel = channel
        self.multiplexer = multiplexer
    }

    var isActive: Bool { channel.isActive }

    /// Whether a new request may go on this connection.
    var isUsable: Bool { channel.isActive && goAwayLastStreamID.load(ordering: .relaxed) < 0 }

    /// Whether a request that failed with `error` before any response byte
    /// can be sent again elsewhere without risk of running twice.
    func mayRetry(after error: (any Error)?) -> Bool {
        if case .notSent? = error as? UpstreamResponseReader.Failure { return true }
        let goAway = goAwayLastStreamID.load(ordering: .relaxed)
        if let closed = error as? NIOHTTP2Errors.StreamClosed {
            if closed.errorCode == .refusedStream { return true }
            if goAway >= 0 { return Int(closed.streamID) > Int(goAway) }
        }
        // No GOAWAY says how far the peer got: only a connection that is gone
        // (the serving proxy restarted while it sat idle in the pool) is
        // taken as not having processed the request, as for HTTP/1.1.
        return goAway < 0 && !channel.isActive
    }

    fileprivate func receivedGoAway(lastStreamID: HTTP2StreamID) {
        let new = Int32(Int(lastStreamID))
        var current = goAwayLastStreamID.load(ordering: .relaxed)
        while current < 0 || new < current {
            let (exchanged, original) = goAwayLastStreamID.compareExchange(expected: current, desired: new, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

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
            throw UpstreamError(code: .closedBeforeResponse, reason: "cannot open a stream to the serving proxy", cause: error)
        }
    }

    /// Watches the connection for what ends its use: GOAWAY (no new streams)
    /// and connection errors (closed at once, so the pool drops it).
    final class Monitor: ChannelInboundHandler {
        typealias InboundIn = HTTP2Frame

        private weak var connection: HTTP2UpstreamConnection?

        init(_ connection: HTTP2UpstreamConnection) {
            self.connection = connection
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .goAway(let lastStreamID, _, _) = unwrapInboundIn(data).payload {
                connection?.receivedGoAway(lastStreamID: lastStreamID)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            if error is NIOHTTP2Errors.StreamError { return }
            context.close(promise: nil)
        }
    }
}
