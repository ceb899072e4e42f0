import Foundation
import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization
import TetherCore

/// Carries an upstream response to the downstream client as it arrives:
/// the head at once, every body chunk — and every server-sent event — as
/// soon as it is read, never buffering a stream. Only a JSON answer to a
/// listing (`tools/list` …) is held until complete, to filter it; an SSE
/// answer to one is filtered event by event.
///
/// Parts arrive in batches (what one upstream read produced) from one
/// producer, the request's task; each batch is written downstream with one
/// flush. The state sits behind an uncontended lock only because the task
/// and the code that reads `status` afterwards are not statically one.
final class ResponseRelay: Sendable {
    enum Mode: Sendable {
        case passThrough
        case json(ByteBuffer)
        case events(ServerSentEventParser)
        /// A listing the proxy cannot read (compressed): answered with an
        /// error instead; the upstream's body is dropped.
        case refused
    }

    /// The listing method whose result is filtered, and the rule.
    struct ListingFilter: Sendable {
        var method: String
        var keep: @Sendable (MCPCall.Target) -> Bool
    }

    struct State: Sendable {
        var mode = Mode.passThrough
        var head: HTTPResponse?
        var status: Int?
        var bytes = 0
    }

    private let writer: ResponseWriter
    private let filter: ListingFilter?
    private let state = Mutex(State())

    init(writer: ResponseWriter, filter: ListingFilter?) {
        self.writer = writer
        self.filter = filter
    }

    var status: Int? { state.withLock { $0.status } }
    var bytes: Int { state.withLock { $0.bytes } }

    /// Whether the response has begun downstream (then an error can only
    /// end the stream, not replace the response).
    var started: Bool { status != nil }

    /// Connection-specific fields: meaningful on one hop only (and invalid
    /// in HTTP/2).
    static let hopByHop: [HTTPField.Name] = [
        .connection, .transferEncoding, .upgrade, .proxyAuthenticate, .proxyAuthorization, .te, .trailer,
        HTTPField.Name("Keep-Alive")!, HTTPField.Name("Proxy-Connection")!,
    ]

    func receive(_ parts: [HTTPResponsePart]) async throws {
        let out = state.withLock { state in
            parts.count == 1 ? relay(parts[0], &state) : parts.flatMap { relay($0, &state) }
        }
        try await writer.write(contentsOf: out)
    }

    /// What to write downstream for one upstream part.
    private func relay(_ part: HTTPResponsePart, _ state: inout State) -> [HTTPResponsePart] {
        switch part {
        case .head(var response):
            for name in Self.hopByHop { response.headerFields[name] = nil }
            state.status = response.status.code
            if let filter, (200..<300).contains(response.status.code), MCPListFilter.isListing(filter.method) {
                let type = response.headerFields[.contentType]?.lowercased() ?? ""
                if let encoding = response.headerFields[.contentEncoding], encoding.lowercased() != "identity" {
                    // Unreadable, so unfilterable: forwarding it would show the agent what it may not use.
                    let error = MCPProtocolError(.upstreamUnavailable, "the MCP server sent its \(filter.method) answer encoded (\(encoding)); the proxy must filter listings and does not forward one it cannot read")
                    state.mode = .refused
                    state.status = error.status
                    return Array(MCPErrorResponse.parts(error).dropLast())
                }
                if type.hasPrefix("application/json") {
                    response.headerFields[.contentLength] = nil
                    state.head = response
                    state.mode = .json(ByteBuffer())
                    return []
                }
                if type.hasPrefix("text/event-stream") {
                    // Events are rewritten: the length the server announced no longer holds.
                    response.headerFields[.contentLength] = nil
                    state.mode = .events(ServerSentEventParser())
                }
            }
            return [.head(response)]
        case .body(var chunk):
            switch state.mode {
            case .passThrough:
                state.bytes += chunk.readableBytes
                return [.body(chunk)]
            case .json(var buffered):
                buffered.writeBuffer(&chunk)
                state.mode = .json(buffered)
                return []
            case .refused:
                return []
            case .events(var parser):
                let events = parser.feed(chunk.readableBytesView)
                state.mode = .events(parser)
                guard !events.isEmpty, let filter else { return [] }
                let out = events.flatMap { MCPListFilter.filter(event: $0, method: filter.method, keep: filter.keep) ?? $0.raw }
                state.bytes += out.count
                return [.body(ByteBuffer(bytes: out))]
            }
        case .end(let trailers):
            if case .json(let buffered) = state.mode, var head = state.head, let filter {
                let original = Data(buffered.readableBytesView)
                let body = MCPListFilter.filter(response: original, method: filter.method, keep: filter.keep) ?? original
                head.headerFields[.contentLength] = "\(body.count)"
                state.bytes += body.count
                return [.head(head), .body(ByteBuffer(bytes: body)), .end(trailers)]
            }
            return [.end(trailers)]
        }
    }
}
