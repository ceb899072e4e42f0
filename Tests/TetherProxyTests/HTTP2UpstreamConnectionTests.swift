import NIOCore
import NIOEmbedded
import NIOHTTP2
import Testing
@testable import TetherProxy

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
