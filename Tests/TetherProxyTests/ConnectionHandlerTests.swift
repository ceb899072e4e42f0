import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import NIOTLS
import Testing
@testable import TetherProxy

/// Records the protocol the detector reports.
final class ProtocolRecorder: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: used on the EmbeddedChannel's one thread only.
    typealias InboundIn = ByteBuffer
    var negotiated: String?
    var bytes: [UInt8] = []

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted(let name)? = event as? TLSUserEvent { negotiated = name }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytes += Array(unwrapInboundIn(data).readableBytesView)
    }
}

@Suite("Listener connection handlers")
struct ConnectionHandlerTests {
    func detect(_ chunks: [String]) throws -> ProtocolRecorder {
        let recorder = ProtocolRecorder()
        let channel = EmbeddedChannel(handlers: [CleartextProtocolDetector(), recorder])
        for chunk in chunks { try channel.writeInbound(ByteBuffer(string: chunk)) }
        return recorder
    }

    @Test func thePrefaceMeansHTTP2EvenInPieces() throws {
        let recorder = try detect(["PRI * HTTP/2.0\r", "\n\r\nSM\r\n\r\nrest"])
        #expect(recorder.negotiated == "h2")
        #expect(String(decoding: recorder.bytes, as: UTF8.self) == "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nrest", "nothing is lost or reordered")
    }

    @Test func anythingElseIsHTTP1() throws {
        let recorder = try detect(["POST /github HTTP/1.1\r\n"])
        #expect(recorder.negotiated == "http/1.1")
        #expect(String(decoding: recorder.bytes, as: UTF8.self) == "POST /github HTTP/1.1\r\n")
        #expect(try detect(["P"]).negotiated == nil, "undecided until a byte differs from the preface")
    }

    @Test func aRequestHeadMustArriveInTime() throws {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(handler: RequestHeadTimeoutHandler(timeout: .seconds(30)), loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        loop.advanceTime(by: .seconds(29))
        #expect(channel.isActive)
        // A head in time disarms it; a response in progress is never timed out.
        try channel.writeInbound(HTTPRequestPart.head(HTTPRequest(method: .post, scheme: nil, authority: "x", path: "/github")))
        loop.advanceTime(by: .seconds(120))
        #expect(channel.isActive)
        // After the response, the next head has 30 s again.
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        loop.advanceTime(by: .seconds(29))
        #expect(channel.isActive)
        loop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive, "closed at 30 s without a request head")
    }
}
