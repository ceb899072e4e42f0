/// An incremental parser for a `text/event-stream` body (the WHATWG
/// server-sent events format MCP's Streamable HTTP uses), built for a proxy:
/// each event comes with its exact bytes, so events that need no change are
/// forwarded as received, and nothing waits for more than one event.
///
/// ```swift
/// var parser = ServerSentEventParser()
/// for event in parser.feed(chunk) { forward(event.raw) }
/// ```
public struct ServerSentEventParser: Sendable {
    public struct Event: Hashable, Sendable {
        /// The event's bytes as received, through its terminating blank line.
        public var raw: [UInt8]
        /// The `event:` field; nil means the default type, `message`.
        public var type: String?
        /// The `data:` lines joined with newlines.
        public var data: String
        public var id: String?

        public init(raw: [UInt8], type: String?, data: String, id: String?) {
            self.raw = raw
            self.type = type
            self.data = data
            self.id = id
        }

        /// The wire form of an event with these fields.
        public static func serialize(type: String?, data: String, id: String?) -> [UInt8] {
            var text = ""
            if let type { text += "event: \(type)\n" }
            if let id { text += "id: \(id)\n" }
            for line in data.split(separator: "\n", omittingEmptySubsequences: false) { text += "data: \(line)\n" }
            return Array((text + "\n").utf8)
        }
    }

    /// Bytes of the event being read.
    private var pending: [UInt8] = []
    /// Where in `pending` the next unparsed line starts.
    private var lineStart = 0
    private var type: String?
    private var data: [String] = []
    private var id: String?
    /// A CR ended the last line; a LF right after it belongs to it.
    private var afterCR = false

    public init() {}

    /// The events completed by `bytes`, in order.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [Event] {
        var events: [Event] = []
        for byte in bytes {
            if afterCR {
                afterCR = false
                if byte == UInt8(ascii: "\n") {
                    pending.append(byte)
                    lineStart = pending.count
                    continue
                }
            }
            pending.append(byte)
            guard byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") else { continue }
            afterCR = byte == UInt8(ascii: "\r")
            let line = pending[lineStart..<(pending.count - 1)]
            lineStart = pending.count
            if line.isEmpty {
                if let event = dispatch() { events.append(event) }
            } else {
                field(line)
            }
        }
        return events
    }

    private mutating func field(_ line: ArraySlice<UInt8>) {
        guard line.first != UInt8(ascii: ":") else { return }  // a comment
        let colon = line.firstIndex(of: UInt8(ascii: ":"))
        let name = String(decoding: line[..<(colon ?? line.endIndex)], as: UTF8.self)
        var value = colon.map { line[line.index(after: $0)...] } ?? []
        if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        let text = String(decoding: value, as: UTF8.self)
        switch name {
        case "event": type = text
        case "data": data.append(text)
        case "id" where !text.contains("\0"): id = text
        default: break  // retry and unknown fields pass through in `raw`
        }
    }

    /// A blank line ends an event. One with no data lines is dropped from
    /// the parsed view per the standard, but its bytes still go on.
    private mutating func dispatch() -> Event? {
        defer {
            pending.removeAll(keepingCapacity: true)
            lineStart = 0
            type = nil
            data = []
        }
        return Event(raw: pending, type: type, data: data.joined(separator: "\n"), id: id)
    }
}
