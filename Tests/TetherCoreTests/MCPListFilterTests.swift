import Foundation
import Testing
@testable import TetherCore

@Suite("Server-sent events and listing filters")
struct MCPListFilterTests {
    @Test func eventsArriveWhateverTheChunkingAndKeepTheirBytes() {
        let stream = "event: message\nid: 1\ndata: {\"a\":1}\n\n: a comment\r\ndata: line one\r\ndata: line two\r\n\r\nretry: 5\rdata: x\r\r"
        let bytes = Array(stream.utf8)
        for chunk in [1, 2, 7, bytes.count] {
            var parser = ServerSentEventParser()
            var events: [ServerSentEventParser.Event] = []
            var index = 0
            while index < bytes.count {
                events += parser.feed(bytes[index..<min(index + chunk, bytes.count)])
                index += chunk
            }
            #expect(events.map(\.data) == [#"{"a":1}"#, "line one\nline two", "x"], "chunk \(chunk)")
            #expect(events.map(\.type) == ["message", nil, nil])
            #expect(events[0].id == "1")
            #expect(events.flatMap(\.raw) == bytes, "every byte accounted for, in order (chunk \(chunk))")
        }
    }

    let keep: (MCPCall.Target) -> Bool = { target in
        if case .tool(let name) = target { return name.hasPrefix("get_") }
        return false
    }

    @Test func listingsLoseWhatTheCallerMayNotUse() throws {
        let response = #"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"get_issue","description":"a/b"},{"name":"delete_repo"},{"title":"nameless"}],"nextCursor":"c"}}"#
        let filtered = try #require(MCPListFilter.filter(response: Data(response.utf8), method: "tools/list", keep: keep))
        let object = try #require(try JSONSerialization.jsonObject(with: filtered) as? [String: Any])
        let result = try #require(object["result"] as? [String: Any])
        #expect((result["tools"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["get_issue"])
        #expect(result["nextCursor"] as? String == "c" && object["id"] as? Int == 2)
        #expect(String(decoding: filtered, as: UTF8.self).contains("a/b"), "no escaped slashes")

        // Nothing to remove, an error, or another method: untouched (nil).
        #expect(MCPListFilter.filter(response: Data(#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"get_a"}]}}"#.utf8), method: "tools/list", keep: keep) == nil)
        #expect(MCPListFilter.filter(response: Data(#"{"jsonrpc":"2.0","id":2,"error":{"code":1,"message":"x"}}"#.utf8), method: "tools/list", keep: keep) == nil)
        #expect(MCPListFilter.filter(response: Data(response.utf8), method: "tools/call", keep: keep) == nil)
    }

    @Test func anSSEListingIsFilteredEventByEvent() throws {
        var parser = ServerSentEventParser()
        let events = parser.feed(Array("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"prompts\":[{\"name\":\"p\"}]}}\n\n".utf8))
        let rewritten = try #require(MCPListFilter.filter(event: events[0], method: "prompts/list", keep: keep))
        var again = ServerSentEventParser()
        let parsed = again.feed(rewritten)
        #expect(parsed.count == 1 && parsed[0].type == "message")
        let object = try JSONSerialization.jsonObject(with: Data(parsed[0].data.utf8)) as? [String: Any]
        #expect(((object?["result"] as? [String: Any])?["prompts"] as? [Any])?.isEmpty == true)
    }
}
