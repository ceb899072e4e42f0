import ArgumentParser
import TetherProxy

/// The listener-limit flags of `tether-proxy run`; defaults from
/// `ListenerLimits`, documented in docs/configuration.md.
struct ListenerLimitOptions: ParsableArguments {
    static let defaults = ListenerLimits()

    @Option(help: ArgumentHelp("Open connections per data-path listener; more are closed at once.", valueName: "n"))
    var maxConnections = defaults.maxConnections

    @Option(help: ArgumentHelp("HTTP/2 streams a client may have open on one connection.", valueName: "n"))
    var maxConcurrentStreams = defaults.maxConcurrentStreams

    @Option(help: ArgumentHelp("Largest request header section (HTTP/2 measure: name + value + 32 bytes a field), on both mesh hops; larger requests get 431.", valueName: "bytes"))
    var maxHeaderListSize = defaults.maxHeaderListSize

    @Option(help: ArgumentHelp("Stream resets a client may send on one HTTP/2 connection within 30 s before it is closed.", valueName: "n"))
    var maxStreamResets = defaults.maxStreamResets

    @Option(help: ArgumentHelp("CONTINUATION frames allowed in a row on one HTTP/2 header block.", valueName: "n"))
    var maxContinuationFrames = defaults.maxContinuationFrames

    @Option(help: ArgumentHelp("The largest request body accepted; larger ones get 413.", valueName: "bytes"))
    var maxRequestBody = defaults.maxRequestBody

    @Option(help: ArgumentHelp("Seconds from accepting a connection to a finished TLS handshake (inbound) or its first bytes (outbound).", valueName: "seconds"))
    var handshakeTimeout = seconds(defaults.handshakeTimeout)

    @Option(help: ArgumentHelp("Seconds from a request's first byte to the end of its headers (HTTP/1.1).", valueName: "seconds"))
    var requestHeaderTimeout = seconds(defaults.requestHeadTimeout)

    @Option(help: ArgumentHelp("Seconds from a request's headers to the end of its body; later gets 408.", valueName: "seconds"))
    var requestBodyTimeout = seconds(defaults.requestBodyTimeout)

    @Option(help: ArgumentHelp("Seconds a connection may stay open with no request in progress.", valueName: "seconds"))
    var idleTimeout = seconds(defaults.idleTimeout)

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// The limits, or a usage error naming the flag that is out of range.
    func limits() throws -> ListenerLimits {
        var limits = ListenerLimits()
        func count(_ value: Int, _ flag: String, _ range: ClosedRange<Int>) throws -> Int {
            guard range.contains(value) else { throw ValidationError("--\(flag) must be between \(range.lowerBound) and \(range.upperBound), not \(value)") }
            return value
        }
        func duration(_ value: Double, _ flag: String) throws -> Duration {
            guard value > 0, value <= 3600 else { throw ValidationError("--\(flag) must be more than 0 and at most 3600 seconds, not \(value)") }
            return .milliseconds(Int64((value * 1000).rounded()))
        }
        limits.maxConnections = try count(maxConnections, "max-connections", 1...1_000_000)
        limits.maxConcurrentStreams = try count(maxConcurrentStreams, "max-concurrent-streams", 1...10_000)
        // HTTP/2 allows SETTINGS values up to 2^31-1; the decoder accepts twice the limit.
        limits.maxHeaderListSize = try count(maxHeaderListSize, "max-header-list-size", 1024...(1 << 24))
        limits.maxStreamResets = try count(maxStreamResets, "max-stream-resets", 1...1_000_000)
        limits.maxContinuationFrames = try count(maxContinuationFrames, "max-continuation-frames", 1...1000)
        limits.maxRequestBody = try count(maxRequestBody, "max-request-body", 1...(1 << 30))
        limits.handshakeTimeout = try duration(handshakeTimeout, "handshake-timeout")
        limits.requestHeadTimeout = try duration(requestHeaderTimeout, "request-header-timeout")
        limits.requestBodyTimeout = try duration(requestBodyTimeout, "request-body-timeout")
        limits.idleTimeout = try duration(idleTimeout, "idle-timeout")
        return limits
    }
}
