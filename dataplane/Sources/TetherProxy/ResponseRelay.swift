import Foundation
import HTTPTypes
import NIOCore
import NIOHTTPTypes
import TetherCore

/// Carries an upstream response to the downstream client as it arrives:
/// the head at once, every body chunk — and every server-sent event — as
/// soon as it is read, never buffering a stream. Only a JSON answer to a
/// listing (`tools/list` …) is held until complete, to filter it; an SSE
/// answer to one is filtered event by event.
actor ResponseRelay {
    enum Mode {
        case passThrough
        case json(ByteBuffer)
        case events(ServerSentEventParser)
    }

    /// The listing method whose result is filtered, and the rule.
    struct ListingFilter: Sendable {
        var method: String
        var keep: @Sendable (MCPCall.Target) -> Bool
    }

    private let writer: ResponseWriter
    private let filter: ListingFilter?
    private var mode = Mode.passThrough
    private var head: HTTPResponse?
    private(set) var status: Int?
    private(set) var bytes = 0
    /// When the upstream last sent something (for the route timeout).
    private(set) var lastActivity = ContinuousClock.now

    init(writer: ResponseWriter, filter: ListingFilter?) {
        self.writer = writer
        self.filter = filter
    }

    /// Whether the response has begun downstream (then an error can only
    /// end the stream, not replace the response).
    var started: Bool { status != nil }

    /// Connection-specific fields: meaningful on one hop only (and invalid
    /// in HTTP/2).
    static let hopByHop: [HTTPField.Name] = [
        .connection, .transferEncoding, .upgrade, .proxyAuthenticate, .proxyAuthorization, .te, .trailer,
        HTTPField.Name("Keep-Alive")!, HTTPField.Name("Proxy-Connection")!,
    ]

    func receive(_ part: HTTPResponsePart) async throws {
        lastActivity = .now
        switch part {
        case .head(var response):
            for name in Self.hopByHop { response.headerFields[name] = nil }
            status = response.status.code
            if let filter, (200..<300).contains(response.status.code), MCPListFilter.isListing(filter.method) {
                let type = response.headerFields[.contentType]?.lowercased() ?? ""
                if type.hasPrefix("application/json") {
                    response.headerFields[.contentLength] = nil
                    head = response
                    mode = .json(ByteBuffer())
                    return
                }
                if type.hasPrefix("text/event-stream") {
                    mode = .events(ServerSentEventParser())
                }
            }
            try await writer.write(.head(response))
        case .body(var chunk):
            switch mode {
            case .passThrough:
                bytes += chunk.readableBytes
                try await writer.write(.body(chunk))
            case .json(var buffered):
                buffered.writeBuffer(&chunk)
                mode = .json(buffered)
            case .events(var parser):
                let events = parser.feed(chunk.readableBytesView)
                mode = .events(parser)
                guard !events.isEmpty, let filter else { return }
                let out = events.flatMap { MCPListFilter.filter(event: $0, method: filter.method, keep: filter.keep) ?? $0.raw }
                bytes += out.count
                try await writer.write(.body(ByteBuffer(bytes: out)))
            }
        case .end(let trailers):
            if case .json(let buffered) = mode, var head, let filter {
                let original = Data(buffered.readableBytesView)
                let body = MCPListFilter.filter(response: original, method: filter.method, keep: filter.keep) ?? original
                head.headerFields[.contentLength] = "\(body.count)"
                bytes += body.count
                try await writer.write(contentsOf: [.head(head), .body(ByteBuffer(bytes: body)), .end(trailers)])
                return
            }
            try await writer.write(.end(trailers))
        }
    }
}
