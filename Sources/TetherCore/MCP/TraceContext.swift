/// A W3C Trace Context `traceparent` (https://www.w3.org/TR/trace-context/).
/// The proxy joins the caller's trace — or starts one — and sends each
/// upstream hop as a new span of it, so a call can be followed from agent
/// to MCP server through every proxy.
public struct TraceContext: Hashable, Sendable {
    /// 32 lowercase hex digits, not all zero.
    public let traceID: String
    /// The span the next hop is a child of: 16 lowercase hex digits, not all zero.
    public let spanID: String
    /// Trace flags (bit 0: sampled), 2 hex digits.
    public let flags: String

    /// Parses a `traceparent` header; nil if it is malformed (then the
    /// spec says to start a new trace). Later versions are read by the
    /// version-00 layout, as the spec asks.
    public init?(traceparent: String) {
        let parts = traceparent.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4, Self.isHex(parts[0], count: 2), parts[0] != "ff" else { return nil }
        guard parts[0] != "00" || parts.count == 4 else { return nil }
        guard Self.isHex(parts[1], count: 32), Self.isHex(parts[2], count: 16), Self.isHex(parts[3], count: 2) else { return nil }
        guard parts[1].contains(where: { $0 != "0" }), parts[2].contains(where: { $0 != "0" }) else { return nil }
        traceID = String(parts[1])
        spanID = String(parts[2])
        flags = String(parts[3])
    }

    init(traceID: String, spanID: String, flags: String) {
        self.traceID = traceID
        self.spanID = spanID
        self.flags = flags
    }

    /// A new trace, sampled.
    public static func start() -> TraceContext {
        TraceContext(traceID: randomHex(bytes: 16), spanID: randomHex(bytes: 8), flags: "01")
    }

    /// A new span in the same trace, for the next hop.
    public func child() -> TraceContext {
        TraceContext(traceID: traceID, spanID: Self.randomHex(bytes: 8), flags: flags)
    }

    public var traceparent: String { "00-\(traceID)-\(spanID)-\(flags)" }

    static func isHex(_ text: Substring, count: Int) -> Bool {
        text.utf8.count == count && text.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// `bytes` random bytes as lowercase hex, never all zero. Drawn 8 bytes
    /// at a time (one system call per word), written as digits directly:
    /// this runs for every request without a `traceparent`.
    static func randomHex(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        while true {
            var word: UInt64 = 0
            var nonZero = false
            let text = String(unsafeUninitializedCapacity: bytes * 2) { buffer in
                for index in 0..<bytes {
                    if index % 8 == 0 { word = generator.next() }
                    let byte = UInt8(truncatingIfNeeded: word >> (UInt64(index % 8) * 8))
                    nonZero = nonZero || byte != 0
                    buffer[2 * index] = hexDigits[Int(byte >> 4)]
                    buffer[2 * index + 1] = hexDigits[Int(byte & 0x0f)]
                }
                return bytes * 2
            }
            if nonZero { return text }
        }
    }
}
