import HTTPTypes
import NIOCore
import NIOHTTPTypes
import TetherCore

/// Collects each request of a downstream channel — an HTTP/1.1 connection,
/// where NIO's pipelining handler delivers the next request only once the
/// previous response has ended, or one HTTP/2 stream — and runs the
/// listener's handler for it in a task once its body is whole.
///
/// It owns the body limit: a body over it is read and dropped, so the
/// client sees the 413 rather than a reset in the middle of its upload,
/// unless it is so far over (declared or received) that reading on is not
/// worth it; then the 413 closes the connection. `Expect: 100-continue` is
/// answered at once, since the proxy reads the whole body before forwarding.
///
/// The channel ending (the client gone) cancels the request's task, which
/// closes its upstream exchange.
final class RequestDispatcher: ChannelInboundHandler {
    typealias InboundIn = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    private enum State {
        case idle
        case reading(HTTPRequest, ByteBuffer, received: Int)
        /// Answered (or being answered) with a 413 that closes the connection.
        case refused
        case serving
    }

    private let handler: any HTTPRequestHandler
    private let requestContext: RequestContext
    private let bodyLimit: Int
    private var state = State.idle
    private var task: Task<Void, Never>?

    init(handler: any HTTPRequestHandler, context: RequestContext, bodyLimit: Int) {
        self.handler = handler
        self.requestContext = context
        self.bodyLimit = bodyLimit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (_, .refused):
            return
        case (.head(let head), _):
            if let declared = head.headerFields[.contentLength].flatMap(Int.init), declared > 4 * bodyLimit {
                return refuse(declared, context: context, close: true)
            }
            if head.headerFields[.expect]?.lowercased() == "100-continue" {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
            }
            state = .reading(head, ByteBuffer(), received: 0)
        case (.body(var chunk), .reading(let head, var body, let received)):
            let received = received + chunk.readableBytes
            guard received <= 4 * bodyLimit else { return refuse(received, context: context, close: true) }
            state = .serving  // lets `body` be uniquely referenced while it grows
            if received <= bodyLimit { body.writeBuffer(&chunk) }
            state = .reading(head, body, received: received)
        case (.end, .reading(let head, let body, let received)):
            guard received <= bodyLimit else {
                state = .idle
                return refuse(received, context: context, close: false)
            }
            state = .serving
            serve(head, body: body, context: context)
        case (.body, _), (.end, _):
            // Parts of a request already refused or in service: nothing to do with them.
            return
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        task?.cancel()
        task = nil
        context.fireChannelInactive()
    }

    private func serve(_ head: HTTPRequest, body: ByteBuffer, context: ChannelHandlerContext) {
        let (handler, requestContext) = (handler, requestContext)
        let writer = ResponseWriter(channel: context.channel)
        task = Task {
            do {
                try await handler.handle(head, body: body, context: requestContext, response: writer)
            } catch {
                // It failed mid-response: all that can be done is to end the
                // connection (HTTP/1.1) or reset the stream (HTTP/2).
                writer.channel.close(promise: nil)
            }
        }
    }

    private func refuse(_ size: Int, context: ChannelHandlerContext, close: Bool) {
        let error = MCPProtocolError(status: 413, code: MCPProtocolError.invalidRequest, message: "the request body is \(size) bytes; the limit is \(bodyLimit)")
        let parts = HTTPListener.errorParts(error, close: close)
        for part in parts.dropLast() { context.write(wrapOutboundOut(part), promise: nil) }
        guard close else {
            context.writeAndFlush(wrapOutboundOut(parts[parts.count - 1]), promise: nil)
            return
        }
        state = .refused
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(parts[parts.count - 1])).whenComplete { _ in channel.close(promise: nil) }
    }
}

/// Writes a response to its downstream channel. Each call's parts go out
/// with one flush, so streamed responses stay streamed; the caller waits
/// for the socket only when the channel's buffer is full, which is how a
/// slow client slows the upstream rather than filling memory.
struct ResponseWriter: Sendable {
    let channel: any Channel

    func write(contentsOf parts: [HTTPResponsePart]) async throws {
        guard let last = parts.last else { return }
        let channel = channel
        let written = channel.eventLoop.makePromise(of: Void.self)
        let writeAll: @Sendable () -> Void = {
            for part in parts.dropLast() { channel.write(part, promise: nil) }
            channel.writeAndFlush(last, promise: written)
        }
        if channel.eventLoop.inEventLoop {
            writeAll()
        } else {
            channel.eventLoop.execute(writeAll)
        }
        if channel.isActive, channel.isWritable { return }
        try await written.futureResult.get()
    }

    func write(_ part: HTTPResponsePart) async throws {
        try await write(contentsOf: [part])
    }
}
