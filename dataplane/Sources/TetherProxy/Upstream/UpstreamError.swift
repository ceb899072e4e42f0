import NIOCore
import NIOHTTP2
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#endif

/// Why a request could not be carried to (or back from) its upstream.
/// `reason` reaches the client inside a JSON-RPC error, so it says what
/// happened in words; the underlying error goes to the log only.
struct UpstreamError: Error, Sendable, CustomStringConvertible {
    enum Code: String, Sendable {
        /// No connection: refused, unreachable, TLS or SPIFFE ID mismatch.
        case connect
        /// The connection broke before the response began; safe to retry
        /// once on a new connection when it was a reused one.
        case closedBeforeResponse
        /// The response began and then broke off.
        case truncated
        /// The upstream sent something that is not HTTP.
        case protocolError
        /// The upstream stayed silent past the route's timeout.
        case timeout
    }

    var code: Code
    /// What went wrong, in words fit for the client: no internal type names.
    var reason: String
    /// The underlying error, for the log and for deciding on a retry.
    var cause: (any Error)?

    init(code: Code, reason: String, cause: (any Error)? = nil) {
        self.code = code
        self.reason = reason
        self.cause = cause
    }

    var description: String { reason }

    /// A network or TLS error in a few words ("connection refused", "TLS
    /// handshake failed"), for messages that reach clients.
    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as UpstreamError:
            return error.reason
        case let error as NIOConnectionError:
            if let first = error.connectionErrors.first { return describe(first.error) }
            return error.dnsAError != nil || error.dnsAAAAError != nil ? "the name did not resolve" : "no address to connect to"
        case let error as IOError:
            return String(cString: strerror(error.errnoCode)).lowercased()
        case ChannelError.connectTimeout:
            return "the connection attempt timed out"
        case ChannelError.ioOnClosedChannel, ChannelError.alreadyClosed, ChannelError.eof, ChannelError.outputClosed:
            return "the connection closed"
        case is NIOSSLError, is BoringSSLError, is NIOSSLExtraError:
            return "the TLS handshake failed (see the proxy's log for the certificate check)"
        case let error as NIOHTTP2Errors.StreamClosed:
            return "the stream was reset (HTTP/2 \(error.errorCode))"
        case is any NIOHTTP2Error:
            return "an HTTP/2 protocol error"
        case let error as UpstreamResponseReader.Failure:
            switch error {
            case .closed: return "the connection closed"
            case .timedOut: return "it timed out"
            case .failed(let cause), .notSent(let cause): return describe(cause)
            }
        default:
            return "an unexpected error (see the proxy's log)"
        }
    }
}
