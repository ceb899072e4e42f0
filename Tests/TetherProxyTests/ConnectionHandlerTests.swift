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

    @Test func anIdleConnectionClosesAtTheIdleTimeoutAndAHeadHasTheHeadTimeoutFromItsFirstByte() throws {
        let loop = EmbeddedEventLoop()
        let timeouts = HTTP1ConnectionTimeouts(idleTimeout: .seconds(60), headTimeout: .seconds(30))
        let channel = EmbeddedChannel(handlers: [timeouts.bytesObserver, ByteToHead(), timeouts], loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        loop.advanceTime(by: .seconds(59))
        #expect(channel.isActive, "idle, within the idle timeout")
        // The first byte of a request starts the head timeout…
        try channel.writeInbound(ByteBuffer(string: "P"))
        loop.advanceTime(by: .seconds(29))
        #expect(channel.isActive)
        // …which the complete head disarms; a response in progress is never timed out.
        try channel.writeInbound(ByteBuffer(string: "\n"))
        loop.advanceTime(by: .seconds(600))
        #expect(channel.isActive)
        // After the response, the idle timeout again.
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        loop.advanceTime(by: .seconds(59))
        #expect(channel.isActive)
        loop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive, "closed at 60 s without a request")
    }

    @Test func aHeadTrickledAByteAtATimeIsClosedAtTheHeadTimeout() throws {
        let loop = EmbeddedEventLoop()
        let timeouts = HTTP1ConnectionTimeouts(idleTimeout: .seconds(60), headTimeout: .seconds(30))
        let channel = EmbeddedChannel(handlers: [timeouts.bytesObserver, ByteToHead(), timeouts], loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        for _ in 0..<29 {
            try channel.writeInbound(ByteBuffer(string: "a"))
            loop.advanceTime(by: .seconds(1))
        }
        #expect(channel.isActive)
        loop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive, "more bytes do not extend the head timeout")
    }

    @Test func theTimerStateMachine() {
        var machine = HTTP1ConnectionTimeouts.StateMachine()
        #expect(machine.connected() == .arm(.idle))
        #expect(machine.bytesReceived() == .arm(.head))
        #expect(machine.bytesReceived() == .none, "later bytes of the same head change nothing")
        #expect(machine.headReceived() == .disarm)
        #expect(machine.bytesReceived() == .none, "body bytes are the body timeout's business")
        #expect(machine.responseEnded() == .arm(.idle))
    }

    @Test func aConnectionThatNeverFinishesItsHandshakeIsClosed() throws {
        let loop = EmbeddedEventLoop()
        var timedOut = 0
        let channel = EmbeddedChannel(handler: HandshakeTimeoutHandler(timeout: .seconds(10)) { timedOut += 1 }, loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        loop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        loop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive && timedOut == 1)
    }

    @Test func aFinishedHandshakeDisarmsTheTimerAndReachesNegotiation() throws {
        let loop = EmbeddedEventLoop()
        let recorder = ProtocolRecorder()
        let channel = EmbeddedChannel(handlers: [HandshakeTimeoutHandler(timeout: .seconds(10)), recorder], loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        channel.pipeline.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: "h2"))
        #expect(recorder.negotiated == "h2")
        loop.advanceTime(by: .seconds(600))
        #expect(channel.isActive)
        #expect((try? channel.pipeline.syncOperations.handler(type: HandshakeTimeoutHandler.self)) == nil, "it left the pipeline")
    }

    @Test func occasionalLogSaysHowOftenItStayedQuiet() {
        let log = OccasionalLog(interval: .seconds(10))
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        #expect(log.occurred(now: start) == 0)
        for second in 1...9 { #expect(log.occurred(now: start + .seconds(Int64(second))) == nil) }
        #expect(log.occurred(now: start + .seconds(10)) == 9)
    }
}

/// Stands in for the HTTP/1.1 decoder: a newline completes a request head.
final class ByteToHead: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: used on the EmbeddedChannel's one thread only.
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTPRequestPart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if unwrapInboundIn(data).readableBytesView.contains(UInt8(ascii: "\n")) {
            context.fireChannelRead(wrapInboundOut(.head(HTTPRequest(method: .post, scheme: nil, authority: "x", path: "/github"))))
        }
    }
}
