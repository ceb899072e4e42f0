import NIOCore
import NIOTLS

/// Closes a connection that has not finished its handshake within the
/// timeout: the TLS handshake on the inbound listener, the first bytes that
/// tell HTTP/1.1 from h2c on the outbound one. Without it a peer that opens
/// a TCP connection and sends nothing holds a file descriptor and memory
/// forever — and the inbound listener is reachable before any identity is
/// checked.
///
/// It sits right after the TLS handler (or the cleartext detector), takes
/// itself out of the pipeline when the handshake completes, and passes that
/// event on to protocol negotiation.
final class HandshakeTimeoutHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let timeout: TimeAmount
    private let onTimeout: () -> Void
    private var timer: Scheduled<Void>?

    /// - Parameter onTimeout: called on the event loop when it closes a
    ///   connection (metrics).
    init(timeout: TimeAmount, onTimeout: @escaping () -> Void = {}) {
        self.timeout = timeout
        self.onTimeout = onTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        disarm()
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSUserEvent {
            disarm()
            context.fireUserInboundEventTriggered(event)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func arm(context: ChannelHandlerContext) {
        guard timer == nil else { return }
        let channel = context.channel
        let onTimeout = onTimeout
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            onTimeout()
            channel.close(promise: nil)
        }
    }

    private func disarm() {
        timer?.cancel()
        timer = nil
    }
}
