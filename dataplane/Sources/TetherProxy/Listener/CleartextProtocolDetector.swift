import NIOCore
import NIOTLS

/// Tells HTTP/2 with prior knowledge (h2c) from HTTP/1.1 on a cleartext
/// connection by its first bytes, and reports the answer the way TLS
/// reports ALPN (`TLSUserEvent.handshakeCompleted`). The same negotiation
/// pipeline then serves cleartext and TLS connections alike.
final class CleartextProtocolDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The HTTP/2 connection preface (RFC 9113, section 3.4).
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private var buffered: ByteBuffer?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if var buffered {
            buffered.writeBuffer(&bytes)
            bytes = buffered
        }
        let prefix = Array(bytes.readableBytesView.prefix(Self.preface.count))
        guard prefix == Array(Self.preface.prefix(prefix.count)) else {
            decide(context: context, protocol: "http/1.1", bytes: bytes)
            return
        }
        guard prefix.count == Self.preface.count else {
            buffered = bytes
            return
        }
        decide(context: context, protocol: "h2", bytes: bytes)
    }

    private func decide(context: ChannelHandlerContext, protocol name: String, bytes: ByteBuffer) {
        buffered = nil
        context.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: name))
        context.fireChannelRead(wrapInboundOut(bytes))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
