import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Logging
import Testing
@testable import TetherProxy

#if canImport(Glibc)
import Glibc
#endif

@Suite("Upstream errors and HTTP/2 connection errors")
struct UpstreamErrorTests {
    @Test func networkErrorsAreDescribedInWordsWithoutTypeNames() {
        #expect(UpstreamError.describe(IOError(errnoCode: ECONNREFUSED, reason: "connect")) == "connection refused")
        #expect(UpstreamError.describe(ChannelError.connectTimeout(.seconds(5))) == "the connection attempt timed out")
        #expect(UpstreamError.describe(UpstreamResponseReader.Failure.closed) == "the connection closed")
        let reset = UpstreamError.describe(NIOHTTP2Errors.streamClosed(streamID: 3, errorCode: .refusedStream))
        #expect(reset.contains("reset") && !reset.contains("StreamClosed"))
        struct Internal: Error {}
        #expect(!UpstreamError.describe(Internal()).contains("Internal"))
    }

    @Test func aConnectionErrorGetsAGoAwayWithTheRealLastStreamAndTheConnectionCloses() throws {
        let tracker = HTTP2ConnectionGuard.StreamTracker(next: nil)
        let channel = EmbeddedChannel(handler: HTTP2ConnectionGuard(listener: "inbound", streams: tracker, idleTimeout: .seconds(60), logger: Logger(label: "test")))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        tracker.streamCreated(1, channel: channel)
        tracker.streamCreated(5, channel: channel)
        tracker.streamCreated(3, channel: channel)
        // A stream error leaves the connection alone.
        channel.pipeline.fireErrorCaught(NIOHTTP2Errors.streamError(streamID: 3, baseError: NIOHTTP2Errors.streamClosed(streamID: 3, errorCode: .cancel)))
        #expect(try channel.isActive && channel.readOutbound(as: HTTP2Frame.self) == nil)

        channel.pipeline.fireErrorCaught(NIOHPACKErrors.MaxHeaderListSizeViolation())
        let frame = try #require(try channel.readOutbound(as: HTTP2Frame.self))
        guard case .goAway(let last, let code, _) = frame.payload else {
            Issue.record("not a GOAWAY: \(frame)")
            return
        }
        #expect(last == 5 && code == .compressionError)
        #expect(!channel.isActive)
    }

    @Test func aConnectionWithNoOpenStreamIsClosedAtTheIdleTimeout() throws {
        let loop = EmbeddedEventLoop()
        let tracker = HTTP2ConnectionGuard.StreamTracker(next: nil)
        let channel = EmbeddedChannel(loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.pipeline.syncOperations.addHandler(HTTP2ConnectionGuard(listener: "outbound", streams: tracker, idleTimeout: .seconds(60), logger: Logger(label: "test")))
        // A stream open for longer than the idle timeout keeps it.
        loop.advanceTime(by: .seconds(30))
        tracker.streamCreated(1, channel: channel)
        loop.advanceTime(by: .seconds(120))
        #expect(channel.isActive)
        tracker.streamClosed(1, channel: channel)
        loop.advanceTime(by: .seconds(59))
        #expect(channel.isActive)
        loop.advanceTime(by: .seconds(2))
        let frame = try #require(try channel.readOutbound(as: HTTP2Frame.self))
        guard case .goAway(let last, let code, _) = frame.payload else {
            Issue.record("not a GOAWAY: \(frame)")
            return
        }
        #expect(last == 1 && code == .noError)
        #expect(!channel.isActive)
    }
}

/// What the agent's pool does with a mesh connection the serving proxy is
/// leaving: no new streams, and a resend only of what was never processed.
@Suite("Mesh connections after GOAWAY")
struct HTTP2UpstreamConnectionTests {
    func connection() throws -> (HTTP2UpstreamConnection, EmbeddedChannel) {
        let channel = EmbeddedChannel()
        let http2 = NIOHTTP2Handler(mode: .client, eventLoop: channel.eventLoop) { stream in stream.close() }
        try channel.pipeline.syncOperations.addHandler(http2)
        let connection = HTTP2UpstreamConnection(channel: channel, multiplexer: try http2.syncMultiplexer())
        try channel.pipeline.syncOperations.addHandler(HTTP2UpstreamConnection.Monitor(connection))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (connection, channel)
    }

    /// A GOAWAY as the HTTP/2 handler passes root-stream frames on.
    func receive(_ goAway: HTTP2Frame, on channel: EmbeddedChannel) throws {
        try channel.pipeline.syncOperations.context(handlerType: NIOHTTP2Handler.self).fireChannelRead(NIOAny(goAway))
    }

    @Test func aGoAwayEndsNewStreamsAndOnlyStreamsAboveItsLastMayBeResent() throws {
        let (connection, channel) = try connection()
        #expect(connection.isUsable)
        try receive(HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: 5, errorCode: .noError, opaqueData: nil)), on: channel)
        #expect(!connection.isUsable && connection.isActive, "draining: open streams finish, new ones go elsewhere")
        #expect(connection.mayRetry(after: NIOHTTP2Errors.streamClosed(streamID: 7, errorCode: .cancel)), "above the last stream: never processed")
        #expect(!connection.mayRetry(after: NIOHTTP2Errors.streamClosed(streamID: 5, errorCode: .cancel)), "at or below it: may have run")
        #expect(!connection.mayRetry(after: UpstreamResponseReader.Failure.closed))
        // A later GOAWAY may only lower the last stream.
        try receive(HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: 3, errorCode: .protocolError, opaqueData: nil)), on: channel)
        #expect(connection.mayRetry(after: NIOHTTP2Errors.streamClosed(streamID: 5, errorCode: .cancel)))
    }

    @Test func refusedOrUnsentStreamsMayBeResentAnywhere() throws {
        let (connection, _) = try connection()
        struct WriteFailed: Error {}
        #expect(connection.mayRetry(after: NIOHTTP2Errors.streamClosed(streamID: 9, errorCode: .refusedStream)))
        #expect(connection.mayRetry(after: UpstreamResponseReader.Failure.notSent(WriteFailed())))
        #expect(!connection.mayRetry(after: NIOHTTP2Errors.streamClosed(streamID: 9, errorCode: .cancel)), "a live connection's reset stream may have run")
    }
}
