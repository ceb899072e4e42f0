import TetherCore

/// What one data-path listener lets a client hold, and for how long. Every
/// limit has a flag on `tether-proxy run` and a documented default (the
/// listener-limits table in docs/configuration.md); the defaults are what a
/// sidecar needs to survive a hostile or broken peer without an operator
/// tuning anything.
///
/// The outbound and inbound listeners share one set, deliberately: the
/// agent's proxy measures a request against the same header-list limit the
/// serving proxy enforces, so it never forwards what the next hop would
/// refuse (a refused header block is an HTTP/2 connection error that would
/// take the other calls on that mesh connection down with it).
public struct ListenerLimits: Sendable, Equatable {
    /// Open connections per listener; the next one is closed at once (and
    /// counted) until one ends.
    public var maxConnections = 4096
    /// HTTP/2 streams a client may have open on one connection
    /// (SETTINGS_MAX_CONCURRENT_STREAMS).
    public var maxConcurrentStreams = 100
    /// A request's header section, in HTTP/2's measure (RFC 9113 §6.5.2:
    /// name + value + 32 octets per field, pseudo-headers included), the
    /// same on HTTP/1.1. Over it: 431. An HTTP/2 header block more than
    /// twice this size cannot even be decoded and closes the connection.
    public var maxHeaderListSize = 32 * 1024
    /// RST_STREAM frames a client may send on one HTTP/2 connection within
    /// 30 s before it is closed (CVE-2023-44487, "rapid reset").
    public var maxStreamResets = 200
    /// CONTINUATION frames in a row on one HTTP/2 header block (the
    /// CONTINUATION flood of 2024).
    public var maxContinuationFrames = 5
    /// The largest request body; over it: 413.
    public var maxRequestBody = MCPRequestInspector.defaultBodyLimit
    /// From accept to a finished TLS handshake (inbound) or the first bytes
    /// that tell HTTP/1.1 from h2c (outbound). Also the first-byte timeout.
    public var handshakeTimeout: Duration = .seconds(10)
    /// From a request's first byte to the end of its head (HTTP/1.1; an
    /// HTTP/2 header block is bounded by size and frame count instead).
    public var requestHeadTimeout: Duration = .seconds(30)
    /// From a request's head to the end of its body; over it: 408.
    public var requestBodyTimeout: Duration = .seconds(30)
    /// A connection with no request in progress (HTTP/1.1 keep-alive, HTTP/2
    /// with no open stream) is closed after this long; HTTP/2 with GOAWAY.
    public var idleTimeout: Duration = .seconds(60)

    public init() {}

    /// The HTTP/2 header-list size a listener accepts at the decoder, so
    /// that a request somewhat over `maxHeaderListSize` still gets a 431 on
    /// its own stream instead of a connection error for every stream.
    var decodableHeaderListSize: Int { 2 * maxHeaderListSize }
}
