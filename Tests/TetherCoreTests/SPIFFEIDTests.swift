import Testing
@testable import TetherCore

@Suite("SPIFFE IDs and patterns")
struct SPIFFEIDTests {
    @Test(arguments: [
        "spiffe://example.org",
        "spiffe://example.org/agent/triage",
        "spiffe://prod.example-corp_1.io/ns/Default/sa/My-App.v2",
        "spiffe://td/" + String(repeating: "a", count: 2000),
    ])
    func valid(_ text: String) throws {
        let id = try SPIFFEID(text)
        #expect(id.description == text)
    }

    @Test(arguments: [
        ("", SPIFFEIDError.Code.badScheme),
        ("example.org/agent", .badScheme),
        ("SPIFFE://example.org/agent", .badScheme),
        ("spiffe://", .emptyTrustDomain),
        ("spiffe:///agent", .emptyTrustDomain),
        ("spiffe://Example.org/agent", .badTrustDomain),
        ("spiffe://example.org:443/agent", .badTrustDomain),
        ("spiffe://user@example.org/agent", .badTrustDomain),
        ("spiffe://exa$mple.org", .badTrustDomain),
        ("spiffe://example.org/", .badPath),
        ("spiffe://example.org//agent", .badPath),
        ("spiffe://example.org/agent/./x", .badPath),
        ("spiffe://example.org/agent/../x", .badPath),
        ("spiffe://example.org/agent name", .badPath),
        ("spiffe://example.org/agent%20x", .badPath),
        ("spiffe://example.org/agent?x=1", .queryOrFragment),
        ("spiffe://example.org/agent#frag", .queryOrFragment),
        ("spiffe://example.org/" + String(repeating: "a", count: 2048), .tooLong),
        ("spiffe://" + String(repeating: "a", count: 256) + "/x", .tooLong),
    ])
    func invalid(_ text: String, _ code: SPIFFEIDError.Code) {
        #expect(throws: SPIFFEIDError.self) { try SPIFFEID(text) }
        do { _ = try SPIFFEID(text) } catch { #expect(error.code == code, "\(text): \(error.reason)") }
    }

    @Test func segments() throws {
        #expect(try SPIFFEID("spiffe://td/a/b").segments == ["a", "b"])
        #expect(try SPIFFEID("spiffe://td").segments == [])
    }

    @Test(arguments: [
        ("spiffe://td/agent/*", "spiffe://td/agent/triage", true),
        ("spiffe://td/agent/*", "spiffe://td/agent/triage/x", false),
        ("spiffe://td/agent/*", "spiffe://td/agent", false),
        ("spiffe://td/agent/**", "spiffe://td/agent/a/b/c", true),
        ("spiffe://td/agent/**", "spiffe://td/agent", false),
        ("spiffe://td/**", "spiffe://td", false),
        ("spiffe://td/**", "spiffe://td/x", true),
        ("spiffe://td/*/triage", "spiffe://td/agent/triage", true),
        ("spiffe://td/agent/triage", "spiffe://td/agent/triage", true),
        ("spiffe://td/agent/triage", "spiffe://other/agent/triage", false),
        ("spiffe://td", "spiffe://td", true),
    ])
    func patternMatching(_ pattern: String, _ id: String, _ expected: Bool) throws {
        #expect(try SPIFFEIDPattern(pattern).matches(SPIFFEID(id)) == expected)
    }

    @Test(arguments: [
        ("spiffe://td/agent/*", "spiffe://td/agent/triage", true),
        ("spiffe://td/agent/*", "spiffe://td/*/triage", true),
        ("spiffe://td/agent/*", "spiffe://td/mcp/*", false),
        ("spiffe://td/**", "spiffe://td/a/b", true),
        ("spiffe://td/a/**", "spiffe://td/a", false),
        ("spiffe://td/a", "spiffe://other/a", false),
        ("spiffe://td/a/*", "spiffe://td/a/*/c", false),
    ])
    func patternOverlap(_ a: String, _ b: String, _ expected: Bool) throws {
        let left = try SPIFFEIDPattern(a), right = try SPIFFEIDPattern(b)
        #expect(left.overlaps(right) == expected)
        #expect(right.overlaps(left) == expected)
    }

    @Test(arguments: ["spiffe://td/a*", "spiffe://td/**/x", "spiffe://*/agent", "spiffe://td/a//b"])
    func invalidPatterns(_ text: String) {
        #expect(throws: SPIFFEIDError.self) { try SPIFFEIDPattern(text) }
    }
}

@Suite("Name patterns and durations")
struct ValueTests {
    @Test(arguments: [
        ("get_*", "get_issue", true), ("get_*", "get_", true), ("get_*", "list_issues", false),
        ("*", "anything", true), ("get_?", "get_a", true), ("get_?", "get_ab", false),
        ("*_issue*", "list_issue_comments", true), ("a*b*c", "aXbYbZc", true), ("a*b*c", "aXbYbZ", false),
        ("file:///docs/*", "file:///docs/a/b.md", true), ("Get", "get", false),
        ("get_issue", "get_issue", true), ("get_issue", "get_issues", false), ("get_*", "get", false), ("*x", "abx", true),
    ])
    func namePatterns(_ pattern: String, _ name: String, _ expected: Bool) throws {
        #expect(try NamePattern(pattern).matches(name) == expected)
    }

    @Test func pathologicalPatternStaysFast() throws {
        let pattern = try NamePattern(String(repeating: "a*", count: 30) + "b")
        #expect(!pattern.matches(String(repeating: "a", count: 5000)))
    }

    @Test(arguments: [("30s", 30_000), ("500ms", 500), ("1h30m", 5_400_000), ("2m30s", 150_000), ("24h", 86_400_000)])
    func durations(_ text: String, _ milliseconds: Int64) throws {
        let duration = try ConfigDuration(parsing: text)
        #expect(duration.milliseconds == milliseconds)
        #expect(duration.description == text)
    }

    @Test(arguments: ["", "10", "1.5s", "1d", "30m1h", "1s1s", "-5s", "5 s", "99999999999h"])
    func invalidDurations(_ text: String) {
        #expect(throws: DurationError.self) { try ConfigDuration(parsing: text) }
    }

    @Test func canonicalDurationForm() throws {
        #expect(try ConfigDuration(parsing: "90s").description == "1m30s")
    }

    @Test(arguments: ["10.0.0.1:15006", "[::1]:8080", "mcp.internal:443"])
    func hostPorts(_ text: String) throws {
        #expect(try HostPort(text).description == text)
    }

    @Test(arguments: ["10.0.0.1", "::1:80", "host:0", "host:70000", ":80"])
    func invalidHostPorts(_ text: String) {
        #expect(throws: EndpointURLError.self) { try HostPort(text) }
    }

    @Test func loopbackPlaintextOnly() throws {
        #expect(try EndpointURL("http://127.0.0.1:8080/mcp", rules: .tlsUnlessLoopback).isLoopback)
        #expect(try EndpointURL("http://[::1]:8080/mcp", rules: .tlsUnlessLoopback).isLoopback)
        #expect(throws: EndpointURLError.self) { try EndpointURL("http://10.0.0.1/mcp", rules: .tlsUnlessLoopback) }
        #expect(try EndpointURL("http://idp.test", rules: .identifier).host == "idp.test")
    }
}
