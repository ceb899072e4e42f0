import Foundation
import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Testing
import TetherCore
@testable import TetherProxy

/// The response relay forwards each batch of upstream parts downstream as
/// it arrives (head at once, body chunks unbuffered), minus hop-by-hop
/// fields, and counts status and body bytes. Only a successful JSON answer
/// to a listing is held whole and filtered; an SSE answer to a listing is
/// filtered event by event; every other stream passes chunk by chunk.
///
/// The downstream is a `NIOAsyncTestingChannel`: `ResponseWriter` hops to
/// its event loop with `execute`, which that loop runs at once on its own
/// queue, and `readOutbound` runs after it on the same queue, so what a
/// test reads right after `receive` returns is exactly what was written.
@Suite("Response relay")
struct ResponseRelayTests {
    /// Keeps only the tools whose name starts with `get_`.
    static let getters = ResponseRelay.ListingFilter(method: "tools/list") { target in
        if case .tool(let name) = target { return name.hasPrefix("get_") }
        return false
    }

    static let listing = #"{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"get_issue","description":"Read an issue","inputSchema":{"type":"object"}},{"name":"delete_repo","description":"Delete"},{"name":"get_pr"}],"nextCursor":"page-2"}}"#

    func downstream() async throws -> NIOAsyncTestingChannel {
        let channel = NIOAsyncTestingChannel()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        return channel
    }

    /// Everything written downstream so far.
    func written(_ channel: NIOAsyncTestingChannel) async throws -> [HTTPResponsePart] {
        var parts: [HTTPResponsePart] = []
        while let part = try await channel.readOutbound(as: HTTPResponsePart.self) { parts.append(part) }
        return parts
    }

    func head(_ status: HTTPResponse.Status = .ok, _ fields: HTTPFields) -> HTTPResponsePart {
        .head(HTTPResponse(status: status, headerFields: fields))
    }

    func body(_ text: String) -> HTTPResponsePart { .body(ByteBuffer(string: text)) }

    func text(_ parts: [HTTPResponsePart]) -> String {
        parts.reduce(into: "") { text, part in
            if case .body(let chunk) = part { text += String(buffer: chunk) }
        }
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    func toolNames(_ object: [String: Any]) -> [String]? {
        ((object["result"] as? [String: Any])?["tools"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
    }

    @Test func aResponsePassesThroughPartByPartWithItsStatusAndByteCount() async throws {
        let channel = try await downstream()
        let relay = ResponseRelay(writer: ResponseWriter(channel: channel), filter: nil)
        #expect(!relay.started && relay.status == nil)

        try await relay.receive([head(.created, [.contentType: "application/json", .contentLength: "11"])])
        let first = try await written(channel)
        #expect(first.count == 1)
        guard case .head(let response)? = first.first else {
            Issue.record("the head was not written at once: \(first)")
            return
        }
        #expect(response.status.code == 201 && response.headerFields[.contentLength] == "11")
        #expect(relay.started && relay.status == 201)

        // Each chunk goes on as it arrives, before the response ends.
        try await relay.receive([body("hello ")])
        #expect(try await written(channel) == [body("hello ")])
        try await relay.receive([body("world")])
        #expect(try await written(channel) == [body("world")])
        try await relay.receive([.end(nil)])
        #expect(try await written(channel) == [.end(nil)])
        #expect(relay.bytes == 11)
    }

    @Test func aBatchIsWrittenInOrder() async throws {
        let channel = try await downstream()
        let relay = ResponseRelay(writer: ResponseWriter(channel: channel), filter: nil)
        var trailers = HTTPFields()
        trailers[HTTPField.Name("X-Checksum")!] = "abc"
        let batch: [HTTPResponsePart] = [head(.ok, [.contentType: "text/plain"]), body("a"), body("bc"), .end(trailers)]
        try await relay.receive(batch)
        #expect(try await written(channel) == batch)
        #expect(relay.bytes == 3 && relay.status == 200)
    }

    @Test func hopByHopFieldsAreDropped() async throws {
        let channel = try await downstream()
        let relay = ResponseRelay(writer: ResponseWriter(channel: channel), filter: nil)
        var fields: HTTPFields = [.contentType: "application/json", .connection: "keep-alive, X-Private", .transferEncoding: "chunked", .upgrade: "h2c", .te: "trailers", .trailer: "X-Checksum", .proxyAuthenticate: "Basic"]
        fields[HTTPField.Name("Keep-Alive")!] = "timeout=5"
        fields[HTTPField.Name("Proxy-Connection")!] = "keep-alive"
        fields[HTTPField.Name("Mcp-Session-Id")!] = "s-1"
        try await relay.receive([head(.ok, fields)])
        guard case .head(let response)? = try await written(channel).first else {
            Issue.record("no head")
            return
        }
        let names = Set(response.headerFields.map { $0.name.canonicalName })
        #expect(names == ["content-type", "mcp-session-id"], "\(names)")
    }

    @Test func aJSONListingIsHeldWholeAndFiltered() async throws {
        let channel = try await downstream()
        let relay = ResponseRelay(writer: ResponseWriter(channel: channel), filter: Self.getters)
        var fields: HTTPFields = [.contentType: "application/json; charset=utf-8", .contentLength: "\(Self.listing.utf8.count)", .connection: "close"]
        fields[HTTPField.Name("Mcp-Session-Id")!] = "s-1"
        try await relay.receive([head(.ok, fields)])
        let middle = Self.listing.index(Self.listing.startIndex, offsetBy: 40)
        try await relay.receive([body(String(Self.listing[..<middle]))])
        try await relay.receive([body(String(Self.listing[middle...]))])
        #expect(try await written(channel).isEmpty, "nothing goes out before the listing is complete")
        #expect(relay.status == 200, "the status is known before anything is written")

        try await relay.receive([.end(nil)])
        let parts = try await written(channel)
        #expect(parts.count == 3)
        guard case .head(let response)? = parts.first, case .end(nil)? = parts.last else {
            Issue.record("not head, body, end: \(parts)")
            return
        }
        let filtered = text(parts)
        #expect(response.headerFields[.contentLength] == "\(filtered.utf8.count)")
        #expect(response.headerFields[HTTPField.Name("Mcp-Session-Id")!] == "s-1" && response.headerFields[.connection] == nil)
        let object = try json(filtered)
        #expect(toolNames(object) == ["get_issue", "get_pr"])
        // Everything else is intact.
        #expect(object["jsonrpc"] as? String == "2.0" && object["id"] as? Int == 7)
        let result = try #require(object["result"] as? [String: Any])
        #expect(result["nextCursor"] as? String == "page-2")
        let issue = try #require((result["tools"] as? [[String: Any]])?.first)
        #expect(issue["description"] as? String == "Read an issue" && (issue["inputSchema"] as? [String: Any])?["type"] as? String == "object")
        #expect(relay.bytes == filtered.utf8.count && relay.bytes < Self.listing.utf8.count)
    }

    @Test func aListingThatLosesNothingKeepsItsExactBytes() async throws {
        let channel = try await downstream()
        let relay = ResponseRelay(writer: ResponseWriter(channel: channel), filter: Self.getters)
        let listing = #"{"jsonrpc":"2.0", "id":1, "result":{"tools":[{"name":"get_a"}]}}"#
        try await relay.receive([head(.ok, [.contentType: "application/json"]), body(listing), .end(nil)])
        let parts = try await written(channel)
        #expect(text(parts) == listing)
        guard case .head(let response)? = parts.first else {
            Issue.record("no head")
            return
        }
        #expect(response.headerFields[.contentLength] == "\(listing.utf8.count)")
    }

    @Test func onlySuccessfulJSONListingsAreHeld() async throws {
        // An error status, another method, another content type: each chunk at once, unfiltered.
        let cases: [(String, HTTPResponse.Status, ResponseRelay.ListingFilter, String)] = [
            ("a 500", .internalServerError, Self.getters, "application/json"),
            ("tools/call", .ok, ResponseRelay.ListingFilter(method: "tools/call", keep: Self.getters.keep), "application/json"),
            ("text/plain", .ok, Self.getters, "text/plain"),
        ]
        for (what, status, filter, type) in cases {
            let channel = try await downstream()
            let relay = ResponseRelay(writer: ResponseWriter(channel: channel), filter: filter)
            try await relay.receive([head(status, [.contentType: type])])
            #expect(try await written(channel).count == 1, "\(what): the head goes at once")
            try await relay.receive([body(Self.listing)])
            #expect(try await written(channel) == [body(Self.listing)], "\(what)")
            try await relay.receive([.end(nil)])
            #expect(try await written(channel) == [.end(nil)], "\(what)")
        }
    }

    @Test func anSSEListingIsFilteredEventByEvent() async throws {
        let channel = try await downstream()
        let relay = ResponseRelay(writer: ResponseWriter(channel: channel), filter: Self.getters)
        try await relay.receive([head(.ok, [.contentType: "text/event-stream"])])
        guard case .head(let response)? = try await written(channel).first else {
            Issue.record("the head of an event stream is not held")
            return
        }
        #expect(response.status == .ok)

        let notification = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\n"
        let listing = "id: 42\ndata: \(Self.listing)\n\n"
        // Half an event: nothing yet.
        try await relay.receive([body(String(notification.prefix(20)))])
        #expect(try await written(channel).isEmpty)
        // The rest of it, and half of the listing: the notification, as received.
        let split = listing.index(listing.startIndex, offsetBy: 30)
        try await relay.receive([body(String(notification.dropFirst(20)) + String(listing[..<split]))])
        #expect(text(try await written(channel)) == notification)
        // The rest of the listing: the listing, filtered, with its id.
        try await relay.receive([body(String(listing[split...]))])
        let rewritten = text(try await written(channel))
        var parser = ServerSentEventParser()
        let events = parser.feed(Array(rewritten.utf8))
        #expect(events.count == 1 && events.first?.id == "42")
        let object = try json(try #require(events.first?.data))
        #expect(toolNames(object) == ["get_issue", "get_pr"])
        #expect((object["result"] as? [String: Any])?["nextCursor"] as? String == "page-2" && object["id"] as? Int == 7)

        try await relay.receive([.end(nil)])
        #expect(try await written(channel) == [.end(nil)])
        #expect(relay.bytes == notification.utf8.count + rewritten.utf8.count)
    }

    @Test func anEventStreamThatIsNoListingPassesChunkByChunk() async throws {
        for filter in [nil, ResponseRelay.ListingFilter(method: "tools/call", keep: Self.getters.keep)] {
            let channel = try await downstream()
            let relay = ResponseRelay(writer: ResponseWriter(channel: channel), filter: filter)
            try await relay.receive([head(.ok, [.contentType: "text/event-stream", .cacheControl: "no-cache"])])
            #expect(try await written(channel).count == 1)
            // Not even a whole event: it still goes on at once, byte for byte.
            let chunks = ["data: {\"jsonrpc\":\"2.0\",", "\"id\":1,\"result\":{\"tools\":[{\"name\":\"delete_repo\"}]}}\n", "\n", ": keep-alive\n\n"]
            for chunk in chunks {
                try await relay.receive([body(chunk)])
                #expect(try await written(channel) == [body(chunk)], "\(filter?.method ?? "no filter")")
            }
            #expect(relay.bytes == chunks.joined().utf8.count)
        }
    }

    @Test func aFilteredEventStreamCarriesNoStaleContentLength() async throws {
        // An upstream may frame a short event stream with Content-Length. When
        // events are rewritten, the length the head announced no longer holds.
        let channel = try await downstream()
        let relay = ResponseRelay(writer: ResponseWriter(channel: channel), filter: Self.getters)
        let stream = "data: \(Self.listing)\n\n"
        try await relay.receive([head(.ok, [.contentType: "text/event-stream", .contentLength: "\(stream.utf8.count)"]), body(stream), .end(nil)])
        let parts = try await written(channel)
        guard case .head(let response)? = parts.first else {
            Issue.record("no head")
            return
        }
        let sent = text(parts).utf8.count
        #expect(sent < stream.utf8.count, "the listing was filtered")
        #expect(response.headerFields[.contentLength] == nil || response.headerFields[.contentLength] == "\(sent)")
    }

    @Test func aCompressedListingIsNotForwardedUnfiltered() async throws {
        // gzip of {"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"get_issue"},{"name":"delete_repo"}]}}
        // (the proxy forwards the agent's Accept-Encoding, so a server may well compress).
        let gzip = try #require(Data(base64Encoded: "H4sIAAAAAAACAz3KQQqAIBAF0Lv8tUS0CeYqERI5hGGOOLqSuXut2j7ewK2SazlBWKYZDjGAVofK2lMDDTSRpKBtIB8Pf+/i5qNqZ5j7MXDixr5yEdhu9gKgA1+4WQAAAA=="))
        let channel = try await downstream()
        let relay = ResponseRelay(writer: ResponseWriter(channel: channel), filter: Self.getters)
        try await relay.receive([head(.ok, [.contentType: "application/json", .contentEncoding: "gzip"]), .body(ByteBuffer(bytes: gzip)), .end(nil)])
        var forwarded = Data()
        for part in try await written(channel) {
            if case .body(let chunk) = part { forwarded.append(contentsOf: chunk.readableBytesView) }
        }
        #expect(forwarded != gzip, "a listing the proxy cannot read must not reach the agent unfiltered")
        #expect(relay.status == 502 && String(decoding: forwarded, as: UTF8.self).contains("-32004"))
    }
}
