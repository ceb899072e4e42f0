import Foundation
import Testing
@testable import TetherCore

@Suite("MCP request inspection")
struct MCPRequestInspectorTests {
    static func inspect(_ body: String, _ headers: [String: String] = [:], limit: Int = MCPRequestInspector.defaultBodyLimit) -> Result<MCPMessage, MCPProtocolError> {
        let lowered = Dictionary(uniqueKeysWithValues: headers.map { ($0.key.lowercased(), $0.value) })
        return MCPRequestInspector.inspect(body: Data(body.utf8), header: { lowered[$0] }, limit: limit)
    }

    static let modern = ["MCP-Protocol-Version": "2026-07-28"]

    @Test func readsMethodIdAndTarget() throws {
        let call = try Self.inspect(#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_issue","arguments":{}}}"#).get()
        #expect(call.kind == .request(.number(7)) && call.method == "tools/call" && call.target == .tool("get_issue"))
        let read = try Self.inspect(#"{"jsonrpc":"2.0","id":"r1","method":"resources/read","params":{"uri":"file:///a"}}"#).get()
        #expect(read.id == .string("r1") && read.target == .resource("file:///a"))
        let prompt = try Self.inspect(#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"summarize"}}"#).get()
        #expect(prompt.target == .prompt("summarize"))
        let note = try Self.inspect(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).get()
        #expect(note.kind == .notification && note.target == nil)
        let answer = try Self.inspect(#"{"jsonrpc":"2.0","id":3,"result":{}}"#).get()
        #expect(answer.kind == .response(.number(3)) && answer.method == nil)
        // 2026-07-28 with its mirrored headers.
        let headed = try Self.inspect(
            #"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_issue"}}"#,
            Self.modern.merging(["Mcp-Method": "tools/call", "Mcp-Name": "get_issue"]) { a, _ in a }
        ).get()
        #expect(headed.protocolVersion == "2026-07-28" && headed.target == .tool("get_issue"))
    }

    /// (body, headers, limit, HTTP status, JSON-RPC code, words in the message)
    static let refused: [(String, [String: String], Int, Int, Int, String)] = [
        (String(repeating: " ", count: 65) + "{}", [:], 64, 413, -32600, "limit is 64"),
        (#"{"jsonrpc":"2.0","id":1,"method":"#, [:], 1 << 20, 400, -32700, "not valid JSON"),
        (#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, [:], 1 << 20, 400, -32600, "batches"),
        (#""ping""#, [:], 1 << 20, 400, -32600, "JSON object"),
        (#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#, [:], 1 << 20, 400, -32600, "jsonrpc"),
        (#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#, [:], 1 << 20, 400, -32600, "id must be"),
        (#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#, [:], 1 << 20, 400, -32600, "id must be"),
        (#"{"jsonrpc":"2.0","id":1}"#, [:], 1 << 20, 400, -32600, "needs a method"),
        (#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1]}"#, [:], 1 << 20, 400, -32602, "params must be an object"),
        (#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#, [:], 1 << 20, 400, -32602, "params.name"),
        (#"{"jsonrpc":"2.0","id":1,"method":"resources/read"}"#, [:], 1 << 20, 400, -32602, "params.uri"),
        (#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_repo"}}"#, ["Mcp-Method": "tools/call", "Mcp-Name": "get_issue"], 1 << 20, 400, -32020, "Mcp-Name header says get_issue"),
        (#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#, ["Mcp-Method": "tools/list"], 1 << 20, 400, -32020, "Mcp-Method header says tools/list"),
        (#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#, modern, 1 << 20, 400, -32020, "must carry the Mcp-Method header"),
        (#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#, modern.merging(["Mcp-Method": "tools/call"]) { a, _ in a }, 1 << 20, 400, -32020, "must carry the Mcp-Name header"),
    ]

    @Test(arguments: refused.indices)
    func badInputIsRefusedWithStatusAndCode(index: Int) {
        let (body, headers, limit, status, code, words) = Self.refused[index]
        guard case .failure(let error) = Self.inspect(body, headers, limit: limit) else {
            Issue.record("accepted: \(body)")
            return
        }
        #expect(error.status == status && error.jsonRPCCode == code, "\(error)")
        #expect(error.message.contains(words), "\(error.message)")
        // The error body is a JSON-RPC error response carrying the id when known.
        let reply = try? JSONSerialization.jsonObject(with: error.body) as? [String: Any]
        #expect((reply?["error"] as? [String: Any])?["code"] as? Int == code)
    }

    @Test func errorsCarryTheRequestID() {
        guard case .failure(let error) = Self.inspect(#"{"jsonrpc":"2.0","id":"abc","method":"tools/call","params":{}}"#) else {
            Issue.record("accepted")
            return
        }
        #expect(error.id == .string("abc"))
        #expect(String(decoding: error.body, as: UTF8.self).contains(#""id":"abc""#))
    }
}
