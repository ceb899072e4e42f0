import NIOCore
import NIOHTTPTypes

/// The timers of an HTTP/1.1 connection between requests: the idle timeout
/// while it waits for a request, then the head timeout from the request's
/// first byte until its head is complete. A client trickling a head a byte
/// at a time (slowloris) is closed at the head timeout; a keep-alive
/// connection nobody uses is closed at the idle timeout. While a request is
/// in progress neither runs: the body has its own timeout (in
/// `RequestDispatcher`) and a response, such as a long SSE stream, is
/// never timed out here.
///
/// Two handlers share it, since no single pipeline position sees both
/// events: `bytesObserver` sits before the HTTP/1.1 decoder and sees the
/// first byte of a request; the timeouts handler itself sits after the codec
/// and sees heads arrive and responses end.
final class HTTP1ConnectionTimeouts: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Where the connection is between requests; each event says which
    /// timer to run next.
    struct StateMachine {
        enum State: Equatable {
            /// Waiting for the next request (or the first).
            case idle
            /// A request's first bytes came; its head is not complete yet.
            case readingHead
            /// A request is being read or answered.
            case busy
        }

        enum Timer: Equatable {
            case idle, head
        }

        enum Action: Equatable {
            case arm(Timer)
            case disarm
            case none
        }

        private(set) var state = State.idle

        mutating func connected() -> Action {
            state = .idle
            return .arm(.idle)
        }

        mutating func bytesReceived() -> Action {
            guard state == .idle else { return .none }
            state = .readingHead
            return .arm(.head)
        }

        mutating func headReceived() -> Action {
            state = .busy
            return .disarm
        }

        mutating func responseEnded() -> Action {
            state = .idle
            return .arm(.idle)
        }
    }

    /// Tells the timeouts handler when bytes arrive; it must be placed
    /// before the HTTP/1.1 decoder.
    final class BytesObserver: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer

        private let timeouts: HTTP1ConnectionTimeouts

        fileprivate init(_ timeouts: HTTP1ConnectionTimeouts) {
            self.timeouts = timeouts
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            timeouts.bytesReceived()
            context.fireChannelRead(data)
        }
    }

    private let idleTimeout: TimeAmount
    private let headTimeout: TimeAmount
    private var machine = StateMachine()
    private var timer: Scheduled<Void>?
    private var channel: (any Channel)?

    init(idleTimeout: TimeAmount, headTimeout: TimeAmount) {
        self.idleTimeout = idleTimeout
        self.headTimeout = headTimeout
    }

    /// The observer to put before the decoder; it shares this handler's
    /// state, so both must be in the same pipeline.
    var bytesObserver: BytesObserver { BytesObserver(self) }

    func handlerAdded(context: ChannelHandlerContext) {
        channel = context.channel
        if context.channel.isActive { perform(machine.connected(), on: context.eventLoop) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        perform(.disarm, on: context.eventLoop)
        channel = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        perform(machine.connected(), on: context.eventLoop)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        perform(.disarm, on: context.eventLoop)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { perform(machine.headReceived(), on: context.eventLoop) }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { perform(machine.responseEnded(), on: context.eventLoop) }
        context.write(data, promise: promise)
    }

    fileprivate func bytesReceived() {
        guard let channel else { return }
        perform(machine.bytesReceived(), on: channel.eventLoop)
    }

    private func perform(_ action: StateMachine.Action, on loop: any EventLoop) {
        switch action {
        case .none:
            return
        case .disarm:
            timer?.cancel()
            timer = nil
        case .arm(let which):
            timer?.cancel()
            let channel = channel
            timer = loop.assumeIsolated().scheduleTask(in: which == .idle ? idleTimeout : headTimeout) {
                channel?.close(promise: nil)
            }
        }
    }
}
