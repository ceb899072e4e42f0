import Foundation
import HTTPTypes

/// Realistic MCP requests as an agent POSTs them: body bytes and headers.
public struct MCPPost: Sendable {
    public var body: Data
    public var headers: HTTPFields

    /// A header by its lowercase name, the way `MCPProxyHandler` hands
    /// headers to `MCPRequestInspector` (an `HTTPField.Name` per lookup).
    public func header(_ name: String) -> String? {
        headers[HTTPField.Name(name)!]
    }
}

public enum Messages {
    static func headers(_ fields: [(String, String)]) -> HTTPFields {
        var headers = HTTPFields()
        for (name, value) in fields { headers.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
        return headers
    }

    static let common: [(String, String)] = [
        ("Host", "127.0.0.1:15001"),
        ("User-Agent", "python-httpx/0.28.1"),
        ("Accept", "application/json, text/event-stream"),
        ("Accept-Encoding", "gzip, deflate"),
        ("Content-Type", "application/json"),
        ("Authorization", "Bearer eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.e30.c2lnbmF0dXJl"),
        ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ]

    /// MCP 2026-07-28: stateless, `_meta` in params, the mirrored
    /// `Mcp-Method` / `Mcp-Name` headers the inspector must check.
    public static let toolsCall20260728 = MCPPost(
        body: Data(#"""
            {"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"get_issue","arguments":{"owner":"acme","repo":"app","issue_number":1234,"include_comments":true},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"sampling":{},"elicitation":{"form":{}},"roots":{"listChanged":true}},"progressToken":"tok-42"}}}
            """#.utf8),
        headers: headers(common + [
            ("Content-Length", "330"), ("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", "tools/call"), ("Mcp-Name", "get_issue"),
        ])
    )

    /// MCP 2025-11-25: the session generation, no mirrored headers.
    public static let toolsCall20251125 = MCPPost(
        body: Data(#"""
            {"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search_code","arguments":{"query":"TokenCache language:swift org:acme","per_page":20,"page":1}}}
            """#.utf8),
        headers: headers(common + [
            ("Content-Length", "150"), ("MCP-Protocol-Version", "2025-11-25"), ("Mcp-Session-Id", "3f1c2a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"),
        ])
    )

    /// A 2026-07-28 call whose arguments carry ~4 KiB of text (an issue
    /// body, a code snippet): agents send these routinely.
    public static let toolsCallLarge20260728: MCPPost = {
        let paragraph = "Steps to reproduce: start the proxy, send a tools/call with a large argument, observe the latency. "
        let text = String(repeating: paragraph, count: 40).replacingOccurrences(of: "\"", with: "'")
        let body = #"{"jsonrpc":"2.0","id":"req-8f2a","method":"tools/call","params":{"name":"create_issue","arguments":{"owner":"acme","repo":"app","title":"Proxy latency under load","body":"\#(text)","labels":["bug","performance","proxy"]},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#
        return MCPPost(
            body: Data(body.utf8),
            headers: headers(common + [
                ("Content-Length", "\(body.utf8.count)"), ("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", "tools/call"), ("Mcp-Name", "create_issue"),
            ])
        )
    }()

    /// Tool names as a GitHub-like MCP server lists them: reads, writes,
    /// destructive ones (so a filter removes some).
    public static let toolNames: [String] = {
        let verbs = ["get", "list", "search", "create", "update", "delete", "merge", "describe", "run", "add"]
        let nouns = ["issue", "pull_request", "repository", "branch", "workflow"]
        return nouns.flatMap { noun in verbs.map { "\($0)_\(noun)" } }
    }()

    /// A `tools/list` JSON-RPC response with 50 tools, each with a
    /// description and a small input schema (≈ 14 KiB).
    public static func toolsList(names: [String] = toolNames) -> Data {
        let tools: [[String: Any]] = names.map { name in
            [
                "name": name,
                "title": name.replacingOccurrences(of: "_", with: " ").capitalized,
                "description": "\(name.replacingOccurrences(of: "_", with: " ").capitalized) in a GitHub repository the token can access. Returns JSON.",
                "inputSchema": [
                    "type": "object",
                    "properties": [
                        "owner": ["type": "string", "description": "Repository owner"],
                        "repo": ["type": "string", "description": "Repository name"],
                        "number": ["type": "integer", "description": "Issue or pull request number"],
                    ],
                    "required": ["owner", "repo"],
                ] as [String: Any],
                "annotations": ["readOnlyHint": name.hasPrefix("get") || name.hasPrefix("list") || name.hasPrefix("search")],
            ]
        }
        let response: [String: Any] = ["jsonrpc": "2.0", "id": 3, "result": ["tools": tools]]
        return try! JSONSerialization.data(withJSONObject: response, options: [.sortedKeys, .withoutEscapingSlashes])
    }
}
