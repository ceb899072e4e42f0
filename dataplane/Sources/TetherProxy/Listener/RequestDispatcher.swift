import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import TetherCore

/// Collects each request of a downstream channel — an HTTP/1.1 connection,
/// where NIO's pipelining handler delivers the next request only once the
/// previous response has ended, or one HTTP/2 stream — and runs the
/// listener's handler for it in a task once its body is whole.
///
/// It owns the per-request limits, checked before any handler runs:
/// - CONNECT is refused with 405 and the connection closed (HTTP/1.1's
///   parser treats everything after a CONNECT head as tunnel bytes).
/// - A header section over the limit gets 431, so the agent's proxy never
///   forwards what the serving proxy's HTTP/2 decoder would refuse.
/// - The body must be complete within the body timeout, or 408.
/// - A body over the limit is read and dropped, so the client sees the 413
///   rather than a reset in the middle of its upload, unless it is so far
///   over (declared or received) that reading on is not worth it; then the
///   413 closes the connection. `Expect: 100-continue` is answered at once,
///   since the proxy reads the whole body before forwarding.
///
/// The channel ending (the client gone) cancels the request's task, which
/// closes its upstream exchange.
final class RequestDispatcher: ChannelInboundHandler {
    typealias InboundIn = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    private enum State {
        case idle
        case reading(HTTPRequest, ByteBuffer, received: Int)
        /// Answered (or being answered) with an error that closes the connection.
        case refused
        case serving
    }

    private let handler: any HTTPRequestHandler
    private let requestContext: RequestContext
    private let limits: ListenerLimits
    private var state = State.idle
    private var task: Task<Void, Never>?
    private var bodyTimer: Scheduled<Void>?

    init(handler: any HTTPRequestHandler, context: RequestContext, limits: ListenerLimits) {
        self.handler = handler
        self.requestContext = context
        self.limits = limits
    }

    private var bodyLimit: Int { limits.maxRequestBody }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (_, .refused):
            return
        case (.head(let head), _):
            if head.method == .connect {
                var allow = HTTPFields()
                allow[.allow] = "GET, POST, DELETE"
                return refuse(MCPProtocolError(.methodNotAllowed, "CONNECT is not served here: MCP Streamable HTTP uses POST, GET and DELETE"), headers: allow, context: context)
            }
            let headerSize = head.headerListSize
            if headerSize > limits.maxHeaderListSize {
                return refuse(MCPProtocolError(
                    .headersTooLarge,
                    "the request's header section is \(headerSize) bytes (as HTTP/2 counts them); the limit is \(limits.maxHeaderListSize)"
                ), context: context)
            }
            if let declared = head.headerFields[.contentLength].flatMap(Int.init), declared > 4 * bodyLimit {
                return refuse(tooLarge(declared), context: context)
            }
            if head.headerFields[.expect]?.lowercased() == "100-continue" {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
            }
            // Sized for the declared body (within the limit): one allocation, not a
            // series of doublings that leave fragments behind.
            let declared = head.headerFields[.contentLength].flatMap(Int.init) ?? 0
            state = .reading(head, context.channel.allocator.buffer(capacity: min(max(declared, 0), bodyLimit)), received: 0)
            armBodyTimer(context: context)
        case (.body(var chunk), .reading(let head, var body, let received)):
            let received = received + chunk.readableBytes
            guard received <= 4 * bodyLimit else { return refuse(tooLarge(received), context: context) }
            state = .serving  // lets `body` be uniquely referenced while it grows
            if received <= bodyLimit { body.writeBuffer(&chunk) }
            state = .reading(head, body, received: received)
        case (.end, .reading(let head, let body, let received)):
            disarmBodyTimer()
            guard received <= bodyLimit else {
                state = .idle
                return refuse(tooLarge(received), context: context, close: false)
            }
            state = .serving
            serve(head, body: body, context: context)
        case (.body, _), (.end, _):
            // Parts of a request already refused or in service: nothing to do with them.
            return
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarmBodyTimer()
        task?.cancel()
        task = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        disarmBodyTimer()
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

    private func armBodyTimer(context: ChannelHandlerContext) {
        disarmBodyTimer()
        let timeout = limits.requestBodyTimeout
        bodyTimer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) { [self] in
            bodyTimer = nil
            guard case .reading = state else { return }
            refuse(MCPProtocolError(.bodyTimeout, "the request body did not arrive within \(timeout)"), context: context)
        }
    }

    private func disarmBodyTimer() {
        bodyTimer?.cancel()
        bodyTimer = nil
    }

    private func tooLarge(_ size: Int) -> MCPProtocolError {
        MCPProtocolError(.bodyTooLarge, "the request body is \(size) bytes; the limit is \(bodyLimit)")
    }

    /// Answers with `error`; unless `close` is false, the rest of the
    /// request is not read and the connection (HTTP/2: the stream) ends.
    private func refuse(_ error: MCPProtocolError, headers: HTTPFields = [:], context: ChannelHandlerContext, close: Bool = true) {
        disarmBodyTimer()
        let parts = MCPErrorResponse.parts(error, headers: headers, close: close)
        if close, let encoder = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self) {
            // HTTP/1.1: NIO's encoder frames every response to CONNECT as a tunnel's (no
            // length, no body), though only a 2xx opens one (RFC 9110 §9.3.6). The
            // connection closes after this answer, so it is written as bytes, past the encoder.
            state = .refused
            let channel = context.channel
            encoder.writeAndFlush(NIOAny(HTTP1ResponseBytes.encode(parts))).whenComplete { _ in channel.close(promise: nil) }
            return
        }
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
