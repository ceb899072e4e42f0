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
