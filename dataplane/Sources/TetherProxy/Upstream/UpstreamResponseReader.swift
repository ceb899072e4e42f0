import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// The response side of an upstream channel — one HTTP/2 stream, or a
/// keep-alive HTTP/1.1 connection across its exchanges — for the request
/// task that awaits it.
///
/// Parts are handed over in batches: everything one socket read produced
/// (typically head, body and end of a small answer) wakes the waiting task
/// once. That, not a hop per part, is what keeps the per-request cost low.
/// Backpressure: once `highWatermark` parts wait unclaimed, the channel's
/// reads are held back until the task takes them, so a slow client slows
/// the upstream instead of filling memory. With nothing to hold back, an
/// idle HTTP/1.1 connection keeps reading and notices when the server
/// closes it.
///
/// All state is confined to the channel's event loop; tasks reach it
/// through `UpstreamResponse`.
final class UpstreamResponseReader: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPResponsePart
    typealias OutboundIn = HTTPRequestPart
    typealias OutboundOut = HTTPRequestPart

    /// Why no more parts will come.
    enum Failure: Error, Sendable {
        case closed
        case failed(any Error)
        case timedOut
        /// The request's head could not be written: it never left this
        /// proxy, so sending it elsewhere cannot run it twice.
        case notSent(any Error)
    }

    static let highWatermark = 16

    private var parts: [HTTPResponsePart] = []
    private var failure: Failure?
    private var waiter: CheckedContinuation<[HTTPResponsePart], any Error>?
    private var timer: Scheduled<Void>?
    private var heldRead = false
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        parts.append(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        deliver()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if failure == nil { failure = .closed }
        deliver()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if failure == nil { failure = .failed(error) }
        deliver()
        context.close(promise: nil)
    }

    /// The head's write failed (say, a stream opened just as GOAWAY came).
    func requestNotSent(_ error: any Error) {
        switch failure {
        case nil, .closed?: failure = .notSent(error)
        default: break
        }
        deliver()
    }

    func read(context: ChannelHandlerContext) {
        if parts.count >= Self.highWatermark {
            heldRead = true
        } else {
            context.read()
        }
    }

    /// Whether parts are waiting that no exchange asked for (a server that
    /// answers nothing it was asked is not one to send a request to).
    var hasUnclaimedParts: Bool { !parts.isEmpty }

    /// Resumes `continuation` with the next batch of parts, at once when
    /// some are waiting; with `Failure` when the channel ended first or
    /// nothing came within `timeout`.
    func next(_ continuation: CheckedContinuation<[HTTPResponsePart], any Error>, timeout: TimeAmount?) {
        precondition(waiter == nil, "one task reads an upstream response at a time")
        waiter = continuation
        if let timeout, let context {
            timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
                if failure == nil { failure = .timedOut }
                timer = nil
                deliver()
            }
        }
        deliver()
    }

    private func deliver() {
        guard let waiter else { return }
        if !parts.isEmpty {
            let batch = parts
            parts.removeAll(keepingCapacity: true)
            finishWait()
            waiter.resume(returning: batch)
            if heldRead, let context {
                heldRead = false
                context.read()
            }
        } else if let failure {
            finishWait()
            waiter.resume(throwing: failure)
        }
    }

    private func finishWait() {
        waiter = nil
        timer?.cancel()
        timer = nil
    }
}

/// A task's handle on an upstream channel's `UpstreamResponseReader`.
struct UpstreamResponse: Sendable {
    let channel: any Channel
    let reader: NIOLoopBound<UpstreamResponseReader>

    init(channel: any Channel, reader: UpstreamResponseReader) {
        self.channel = channel
        self.reader = NIOLoopBound(reader, eventLoop: channel.eventLoop)
    }

    /// The next parts, in order; throws `UpstreamResponseReader.Failure`.
    /// Cancelling the task closes the channel, which ends the wait.
    func next(timeout: TimeAmount?) async throws -> [HTTPResponsePart] {
        let (channel, reader) = (channel, reader)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                if channel.eventLoop.inEventLoop {
                    reader.value.next(continuation, timeout: timeout)
                } else {
                    channel.eventLoop.execute { reader.value.next(continuation, timeout: timeout) }
                }
            }
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    /// Writes a whole request (the proxy reads bodies before forwarding).
    func send(_ head: HTTPRequest, body: ByteBuffer) {
        let reader = reader
        let headWritten = channel.eventLoop.makePromise(of: Void.self)
        headWritten.futureResult.whenFailure { reader.value.requestNotSent($0) }
        channel.write(HTTPRequestPart.head(head), promise: headWritten)
        if body.readableBytes > 0 { channel.write(HTTPRequestPart.body(body), promise: nil) }
        channel.writeAndFlush(HTTPRequestPart.end(nil), promise: nil)
    }
}
