import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Stops a listening socket from spinning when accept(2) fails for want of
/// resources (EMFILE, ENFILE, ENOBUFS, ENOMEM): reads are paused for
/// `pause`, then tried again.
///
/// NIO's own `AcceptBackoffHandler` cannot do this here: when the very first
/// accept of a read cycle fails, the server channel keeps its read pending
/// and never asks the pipeline for the next read, so the listening socket —
/// still readable, the connection still waiting in the backlog — wakes the
/// event loop again at once (61,000 failed accepts in 3 s were observed).
/// Turning auto-read off unregisters the socket from epoll; turning it back
/// on re-registers it.
final class AcceptPauseHandler: ChannelInboundHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    private let pause: TimeAmount
    private let onPause: (IOError) -> Void
    private var resume: Scheduled<Void>?

    /// - Parameter onPause: called on the event loop each time accepts are
    ///   paused (logging and metrics).
    init(pause: TimeAmount = .milliseconds(250), onPause: @escaping (IOError) -> Void) {
        self.pause = pause
        self.onPause = onPause
    }

    static func isOutOfResources(_ error: IOError) -> Bool {
        [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.errnoCode)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let error = error as? IOError, Self.isOutOfResources(error) else {
            context.fireErrorCaught(error)
            return
        }
        onPause(error)
        guard resume == nil, let options = context.channel.syncOptions else { return }
        try? options.setOption(.autoRead, value: false)
        resume = context.eventLoop.assumeIsolated().scheduleTask(in: pause) { [self] in
            resume = nil
            try? options.setOption(.autoRead, value: true)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        resume?.cancel()
        resume = nil
        context.fireChannelInactive()
    }
}
