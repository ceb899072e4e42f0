import Logging
import NIOCore
import NIOHPACK
import NIOHTTP2
import Synchronization

/// Ends a server-side HTTP/2 connection that is broken or idle.
///
/// Broken: swift-nio-http2 answers a connection error (a header block it
/// cannot decode, a CONTINUATION or reset flood, a malformed frame) with a
/// GOAWAY whose last stream ID is 2^31-1 — "I may have processed
/// everything" — and then leaves the connection open, ignoring new streams.
/// A client that keeps such a connection in a pool sends every later
/// request into it and waits for a timeout. This handler, placed after the
/// HTTP/2 handler, sends a second GOAWAY with the real last stream ID (a
/// client may then retry the streams above it safely), logs the cause once,
/// and closes, as RFC 9113 §5.4.1 requires. Stream errors only reset their
/// stream; the connection lives on.
///
/// Idle: with no stream open for the idle timeout, GOAWAY (NO_ERROR, the
/// real last stream ID) and close. NIO's connection manager has an idle
/// timer too, but it closes only once the client acknowledges a PING — a
/// client that never answers would hold the connection forever.
final class HTTP2ConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// The connection's streams as the HTTP/2 handler reports them: the
    /// highest the peer opened (for GOAWAY), how many are open and since
    /// when none are (for the idle timeout). Stream events are passed on to
    /// the connection manager.
    final class StreamTracker: NIOHTTP2StreamDelegate {
        private struct State {
            var highest: Int32 = 0
            var open = 0
            var idleSince = NIODeadline.uptimeNanoseconds(0)
        }

        private let next: (any NIOHTTP2StreamDelegate)?
        private let state = Mutex(State())

        init(next: (any NIOHTTP2StreamDelegate)?) {
            self.next = next
        }

        var lastStreamID: HTTP2StreamID { HTTP2StreamID(state.withLock { $0.highest }) }

        /// When the connection became idle; nil while a stream is open.
        var idleSince: NIODeadline? { state.withLock { $0.open == 0 ? $0.idleSince : nil } }

        func streamCreated(_ id: HTTP2StreamID, channel: any Channel) {
            state.withLock { state in
                state.highest = max(state.highest, Int32(Int(id)))
                state.open += 1
            }
            next?.streamCreated(id, channel: channel)
        }

        func streamClosed(_ id: HTTP2StreamID, channel: any Channel) {
            state.withLock { state in
                state.open -= 1
                if state.open == 0 { state.idleSince = channel.eventLoop.now }
            }
            next?.streamClosed(id, channel: channel)
        }
    }

    let streams: StreamTracker
    private let listener: String
    private let idleTimeout: TimeAmount
    private let logger: Logger
    private var closing = false
    private var idleCheck: Scheduled<Void>?
    private var opened = NIODeadline.uptimeNanoseconds(0)

    init(listener: String, streams: StreamTracker, idleTimeout: TimeAmount, logger: Logger) {
        self.listener = listener
        self.streams = streams
        self.idleTimeout = idleTimeout
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        opened = context.eventLoop.now
        scheduleIdleCheck(at: context.eventLoop.now + idleTimeout, context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        idleCheck = nil
    }

    /// Checks at `deadline` whether the connection has been idle long
    /// enough; if not, checks again when it could be.
    private func scheduleIdleCheck(at deadline: NIODeadline, context: ChannelHandlerContext) {
        idleCheck = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            idleCheck = nil
            guard !closing else { return }
            let now = context.eventLoop.now
            // Idle since the connection began (before any stream) or the last stream closed.
            guard let closed = streams.idleSince else {
                return scheduleIdleCheck(at: now + idleTimeout, context: context)
            }
            let since = max(closed, opened)
            guard now >= since + idleTimeout else {
                return scheduleIdleCheck(at: since + idleTimeout, context: context)
            }
            goAwayAndClose(.noError, context: context)
        }
    }

    private func goAwayAndClose(_ code: HTTP2ErrorCode, context: ChannelHandlerContext) {
        closing = true
        idleCheck?.cancel()
        let goAway = HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: streams.lastStreamID, errorCode: code, opaqueData: nil))
        context.writeAndFlush(wrapOutboundOut(goAway)).whenComplete { [channel = context.channel] _ in
            channel.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is NIOHTTP2Errors.StreamError || closing {
            return
        }
        if Self.isProtocolError(error) {
            logger.warning("closing an HTTP/2 connection after a connection error", metadata: [
                "tether.listener": "\(listener)", "tether.peer": "\(context.channel.remoteAddress?.description ?? "?")",
                "tether.http2.last_stream_id": "\(streams.lastStreamID)", "reason": "\(Self.reason(error))",
            ])
        }
        goAwayAndClose(Self.code(error), context: context)
    }

    static func isProtocolError(_ error: any Error) -> Bool {
        error is any NIOHTTP2Error || error is any NIOHPACKError
    }

    static func code(_ error: any Error) -> HTTP2ErrorCode {
        switch error {
        case is NIOHTTP2Errors.ExcessiveContinuationFrames, is NIOHTTP2Errors.ExcessiveRSTFrames, is NIOHTTP2Errors.ExcessiveStreamErrors,
            is NIOHTTP2Errors.ExcessiveNumberOfGlitches, is NIOHTTP2Errors.ExcessiveControlFrames:
            .enhanceYourCalm
        case is any NIOHPACKError:
            .compressionError
        default:
            .protocolError
        }
    }

    /// The cause in words, for the log.
    static func reason(_ error: any Error) -> String {
        switch error {
        case is NIOHPACKErrors.MaxHeaderListSizeViolation, is NIOHTTP2Errors.ExcessivelyLargeHeaderBlock:
            "the peer sent a header block over the listener's limit (--max-header-list-size)"
        case is NIOHTTP2Errors.ExcessiveContinuationFrames:
            "the peer sent too many CONTINUATION frames in a row (--max-continuation-frames)"
        case is NIOHTTP2Errors.ExcessiveRSTFrames, is NIOHTTP2Errors.ExcessiveStreamErrors:
            "the peer reset or broke too many streams (--max-stream-resets per 30 s)"
        case is NIOHTTP2Errors.ExcessiveNumberOfGlitches, is NIOHTTP2Errors.ExcessiveControlFrames:
            "the peer misbehaved too often (protocol glitches or a control-frame flood)"
        default:
            "HTTP/2 protocol error: \(error)"
        }
    }
}
