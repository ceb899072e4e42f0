import Foundation
import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Testing
@testable import TetherProxy

/// The per-request limits the dispatcher enforces before any handler runs.
@Suite("Request dispatcher limits")
struct RequestDispatcherTests {
    /// Fails the test if a request gets past the limits.
    struct Unreachable: HTTPRequestHandler {
        func handle(_ head: HTTPRequest, body: ByteBuffer, context: RequestContext, response: ResponseWriter) async throws {
            Issue.record("the request reached the handler: \(head)")
        }
    }

    func channel(_ limits: ListenerLimits = ListenerLimits()) throws -> (EmbeddedChannel, EmbeddedEventLoop) {
        let loop = EmbeddedEventLoop()
        let context = RequestContext(peer: nil, remoteAddress: "test", httpVersion: "HTTP/1.1")
        let channel = EmbeddedChannel(handler: RequestDispatcher(handler: Unreachable(), context: context, limits: limits), loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, loop)
    }

    /// The response written: its head and its body as JSON.
    func response(_ channel: EmbeddedChannel) throws -> (head: HTTPResponse, body: [String: Any]) {
        var head: HTTPResponse?
        var body = ByteBuffer()
        while let part = try channel.readOutbound(as: HTTPResponsePart.self) {
            switch part {
            case .head(let response): head = response
            case .body(var chunk): body.writeBuffer(&chunk)
            case .end: break
            }
        }
        let object = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] ?? [:]
        return (try #require(head), object)
    }

    func code(_ body: [String: Any]) -> Int? { (body["error"] as? [String: Any])?["code"] as? Int }

    @Test func connectGets405AndTheConnectionCloses() throws {
        let (channel, _) = try channel()
        try channel.writeInbound(HTTPRequestPart.head(HTTPRequest(method: .connect, scheme: nil, authority: "example.com:443", path: nil)))
        let (head, body) = try response(channel)
        #expect(head.status.code == 405 && head.headerFields[.allow] == "GET, POST, DELETE" && head.headerFields[.connection] == "close")
        #expect(head.headerFields[.contentLength] != nil && code(body) == -32600)
        #expect(!channel.isActive)
    }

    @Test func aHeaderSectionOverTheLimitGets431() throws {
        var limits = ListenerLimits()
        limits.maxHeaderListSize = 4096
        let (channel, _) = try channel(limits)
        var request = HTTPRequest(method: .post, scheme: nil, authority: "127.0.0.1", path: "/github")
        request.headerFields[HTTPField.Name("X-Pad")!] = String(repeating: "a", count: 4096)
        #expect(request.headerListSize > 4096)
        try channel.writeInbound(HTTPRequestPart.head(request))
        let (head, body) = try response(channel)
        #expect(head.status.code == 431 && code(body) == -32600)
        #expect((body["error"] as? [String: Any])?["message"] as? String ?? "" != "")
        #expect(!channel.isActive)
    }

    @Test func aBodyThatStopsShortGets408AtTheBodyTimeout() throws {
        var limits = ListenerLimits()
        limits.requestBodyTimeout = .seconds(5)
        let (channel, loop) = try channel(limits)
        var request = HTTPRequest(method: .post, scheme: nil, authority: "127.0.0.1", path: "/github")
        request.headerFields[.contentLength] = "100"
        try channel.writeInbound(HTTPRequestPart.head(request))
        try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: "{\"jsonrpc\"")))
        loop.advanceTime(by: .seconds(4))
        #expect(try channel.isActive && channel.readOutbound(as: HTTPResponsePart.self) == nil)
        loop.advanceTime(by: .seconds(2))
        let (head, body) = try response(channel)
        #expect(head.status.code == 408 && code(body) == -32600)
        #expect(!channel.isActive)
    }

    @Test func aBodySomewhatOverTheLimitIsReadAndDroppedThen413AndTheConnectionStays() throws {
        var limits = ListenerLimits()
        limits.maxRequestBody = 100
        let (channel, _) = try channel(limits)
        try channel.writeInbound(HTTPRequestPart.head(HTTPRequest(method: .post, scheme: nil, authority: "127.0.0.1", path: "/github")))
        for _ in 0..<3 { try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(repeating: UInt8(ascii: "a"), count: 100))) }
        #expect(try channel.readOutbound(as: HTTPResponsePart.self) == nil, "the client may finish its upload first")
        try channel.writeInbound(HTTPRequestPart.end(nil))
        let (head, body) = try response(channel)
        #expect(head.status.code == 413 && code(body) == -32600 && head.headerFields[.connection] == nil)
        #expect(channel.isActive, "read whole, so the connection can carry the next request")
    }

    @Test func aBodyFarOverTheLimitIsRefusedAtOnceAndTheConnectionCloses() throws {
        var limits = ListenerLimits()
        limits.maxRequestBody = 100
        // Declared too large: refused on the head.
        let (declared, _) = try channel(limits)
        var head = HTTPRequest(method: .post, scheme: nil, authority: "127.0.0.1", path: "/github")
        head.headerFields[.contentLength] = "1000"
        try declared.writeInbound(HTTPRequestPart.head(head))
        #expect(try response(declared).head.status.code == 413)
        #expect(!declared.isActive)
        // Sent too large without a declaration: refused once past four times the limit.
        let (sent, _) = try channel(limits)
        try sent.writeInbound(HTTPRequestPart.head(HTTPRequest(method: .post, scheme: nil, authority: "127.0.0.1", path: "/github")))
        for _ in 0..<5 { try sent.writeInbound(HTTPRequestPart.body(ByteBuffer(repeating: UInt8(ascii: "a"), count: 100))) }
        #expect(try response(sent).head.status.code == 413)
        #expect(!sent.isActive)
    }

    @Test func theHeaderListSizeIsHTTP2sMeasure() {
        var request = HTTPRequest(method: .post, scheme: "https", authority: "github", path: "/mcp")
        request.headerFields[.contentType] = "application/json"
        // :method POST, :scheme https, :authority github, :path /mcp, content-type.
        let expected = (7 + 4 + 32) + (7 + 5 + 32) + (10 + 6 + 32) + (5 + 4 + 32) + (12 + 16 + 32)
        #expect(request.headerListSize == expected)
    }
}
