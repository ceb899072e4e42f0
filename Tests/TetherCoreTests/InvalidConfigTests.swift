import Testing
@testable import TetherCore

/// One invalid document and the diagnostic it must produce.
struct InvalidCase: Sendable, CustomTestStringConvertible {
    var name: String
    var yaml: String
    var field: String?
    var line: Int
    var message: String

    var testDescription: String { name }
}

/// A Route document whose spec lines start at line 6.
func route(_ spec: String) -> String {
    """
    apiVersion: tether.dev/v1alpha1
    kind: Route
    metadata:
      name: github
    spec:
    \(spec)
    """
}

func resource(_ kind: String, _ spec: String) -> String {
    """
    apiVersion: tether.dev/v1alpha1
    kind: \(kind)
    metadata:
      name: example
    spec:
    \(spec)
    """
}

let validRouteSpec = """
      agents: ["spiffe://example.org/agent/triage"]
      path: /github
      backend: github
    """

let invalidCases: [InvalidCase] = [
    InvalidCase(name: "missing apiVersion", yaml: "kind: Route\nmetadata:\n  name: a\nspec:\n  path: /a\n  backend: b\n  agents: [\"spiffe://td/x\"]\n", field: "apiVersion", line: 1, message: "missing required field \"apiVersion\""),
    InvalidCase(name: "unsupported apiVersion", yaml: route(validRouteSpec).replacingOccurrences(of: "tether.dev/v1alpha1", with: "tether.dev/v1"), field: "apiVersion", line: 1, message: "is not supported"),
    InvalidCase(name: "misspelled kind", yaml: route(validRouteSpec).replacingOccurrences(of: "kind: Route", with: "kind: Rout"), field: "kind", line: 2, message: "did you mean \"Route\"?"),
    InvalidCase(name: "missing metadata.name", yaml: route(validRouteSpec).replacingOccurrences(of: "  name: github", with: "  labels: {a: b}"), field: "metadata.name", line: 4, message: "missing required field \"name\""),
    InvalidCase(name: "bad resource name", yaml: route(validRouteSpec).replacingOccurrences(of: "name: github", with: "name: GitHub_Route"), field: "metadata.name", line: 4, message: "must be lowercase letters"),
    InvalidCase(name: "unknown top-level field", yaml: route(validRouteSpec) + "\nspecs: {}\n", field: "specs", line: 9, message: "did you mean \"spec\"?"),
    InvalidCase(name: "unknown spec field", yaml: route(validRouteSpec + "\n  bakend: x"), field: "spec.bakend", line: 9, message: "did you mean \"backend\"?"),
    InvalidCase(name: "path of wrong type", yaml: route("  agents: [\"spiffe://example.org/a\"]\n  path: 123\n  backend: b"), field: "spec.path", line: 7, message: "expected a string, found a number"),
    InvalidCase(name: "agents not a list", yaml: route("  agents: spiffe://example.org/a\n  path: /a\n  backend: b"), field: "spec.agents", line: 6, message: "expected a list"),
    InvalidCase(name: "agents empty", yaml: route("  agents: []\n  path: /a\n  backend: b"), field: "spec.agents", line: 6, message: "must list at least one item"),
    InvalidCase(name: "missing backend", yaml: route("  agents: [\"spiffe://example.org/a\"]\n  path: /a"), field: "spec.backend", line: 6, message: "missing required field \"backend\""),
    InvalidCase(name: "SPIFFE trust domain uppercase", yaml: route("  agents:\n    - spiffe://Example.org/a\n  path: /a\n  backend: b"), field: "spec.agents[0]", line: 7, message: "only lowercase letters"),
    InvalidCase(name: "SPIFFE ID with port", yaml: resource("MCPBackend", "  inMesh:\n    spiffeID: spiffe://example.org:8443/mcp\n    address: 10.0.0.1:15006\n    upstream: http://127.0.0.1:8080/mcp"), field: "spec.inMesh.spiffeID", line: 7, message: "must not contain a port"),
    InvalidCase(name: "SPIFFE ID with query", yaml: resource("MCPBackend", "  inMesh:\n    spiffeID: spiffe://example.org/mcp?x=1\n    address: 10.0.0.1:15006\n    upstream: http://127.0.0.1:8080/mcp"), field: "spec.inMesh.spiffeID", line: 7, message: "query"),
    InvalidCase(name: "SPIFFE ID with empty segment", yaml: route("  agents: [\"spiffe://example.org/agent//x\"]\n  path: /a\n  backend: b"), field: "spec.agents[0]", line: 6, message: "empty path segment"),
    InvalidCase(name: "SPIFFE ID with dot-dot", yaml: route("  agents: [\"spiffe://example.org/agent/../x\"]\n  path: /a\n  backend: b"), field: "spec.agents[0]", line: 6, message: "relative segments"),
    InvalidCase(name: "SPIFFE ID too long", yaml: route("  agents: [\"spiffe://example.org/\(String(repeating: "a", count: 2100))\"]\n  path: /a\n  backend: b"), field: "spec.agents[0]", line: 6, message: "at most 2048"),
    InvalidCase(name: "SPIFFE ID wrong scheme", yaml: route("  agents: [\"https://example.org/agent\"]\n  path: /a\n  backend: b"), field: "spec.agents[0]", line: 6, message: "must start with \"spiffe://\""),
    InvalidCase(name: "SPIFFE pattern ** in the middle", yaml: route("  agents: [\"spiffe://example.org/**/x\"]\n  path: /a\n  backend: b"), field: "spec.agents[0]", line: 6, message: "may only end a pattern"),
    InvalidCase(name: "duplicate agent pattern", yaml: route("  agents:\n    - spiffe://example.org/a\n    - spiffe://example.org/a\n  path: /a\n  backend: b"), field: "spec.agents[1]", line: 8, message: "repeats an earlier entry"),
    InvalidCase(name: "route path without slash", yaml: route("  agents: [\"spiffe://example.org/a\"]\n  path: github\n  backend: b"), field: "spec.path", line: 7, message: "must start with \"/\""),
    InvalidCase(name: "malformed duration", yaml: route(validRouteSpec + "\n  timeout: 10 minutes"), field: "spec.timeout", line: 9, message: "contains spaces"),
    InvalidCase(name: "unknown duration unit", yaml: route(validRouteSpec + "\n  timeout: 2d"), field: "spec.timeout", line: 9, message: "unknown unit \"d\""),
    InvalidCase(name: "zero duration", yaml: route(validRouteSpec + "\n  timeout: 0s"), field: "spec.timeout", line: 9, message: "longer than zero"),
    InvalidCase(name: "backend both inMesh and external", yaml: resource("MCPBackend", "  inMesh:\n    spiffeID: spiffe://example.org/mcp\n    address: 10.0.0.1:15006\n    upstream: http://127.0.0.1:8080/mcp\n  external:\n    url: https://mcp.example.com/mcp"), field: "spec.external", line: 10, message: "not both"),
    InvalidCase(name: "backend with no location", yaml: resource("MCPBackend", "  {}"), field: "spec", line: 6, message: "set inMesh"),
    InvalidCase(name: "plaintext to a remote host", yaml: resource("MCPBackend", "  external:\n    url: http://mcp.example.com/mcp"), field: "spec.external.url", line: 7, message: "only allowed to loopback"),
    InvalidCase(name: "credentials in a URL", yaml: resource("MCPBackend", "  external:\n    url: https://user:pw@mcp.example.com/mcp"), field: "spec.external.url", line: 7, message: "embeds credentials"),
    InvalidCase(name: "inbound address without port", yaml: resource("MCPBackend", "  inMesh:\n    spiffeID: spiffe://example.org/mcp\n    address: 10.0.0.1\n    upstream: http://127.0.0.1:8080/mcp"), field: "spec.inMesh.address", line: 8, message: "has no port"),
    InvalidCase(name: "HMAC algorithm", yaml: resource("IdentityProvider", "  issuer: https://login.example.com\n  audiences: [tether]\n  jwks:\n    url: https://login.example.com/jwks\n  allowedAlgorithms: [RS256, HS256]"), field: "spec.allowedAlgorithms[1]", line: 10, message: "never accepted"),
    InvalidCase(name: "two JWKS sources", yaml: resource("IdentityProvider", "  issuer: https://login.example.com\n  audiences: [tether]\n  jwks:\n    url: https://login.example.com/jwks\n    file: /etc/jwks.json"), field: "spec.jwks", line: 9, message: "exactly one of inline, file or url"),
    InvalidCase(name: "inline JWKS not JSON", yaml: resource("IdentityProvider", "  issuer: https://login.example.com\n  audiences: [tether]\n  jwks:\n    inline: not json"), field: "spec.jwks.inline", line: 9, message: "is not a JWK Set"),
    InvalidCase(name: "inline JWKS with symmetric key", yaml: resource("IdentityProvider", "  issuer: https://login.example.com\n  audiences: [tether]\n  jwks:\n    inline: '{\"keys\": [{\"kty\": \"oct\", \"k\": \"c2VjcmV0\"}]}'"), field: "spec.jwks.inline", line: 9, message: "symmetric (oct) keys"),
    InvalidCase(name: "IdP without audiences", yaml: resource("IdentityProvider", "  issuer: https://login.example.com\n  jwks:\n    url: https://login.example.com/jwks"), field: "spec.audiences", line: 6, message: "missing required field \"audiences\""),
    InvalidCase(name: "unknown token exchange type", yaml: resource("TokenExchange", "  type: oauth\n  audience: x"), field: "spec.type", line: 6, message: "is not a token exchange type"),
    InvalidCase(name: "field not used by the type", yaml: resource("TokenExchange", "  type: credential\n  credential: pat\n  audience: github"), field: "spec.audience", line: 8, message: "is not used by type credential"),
    InvalidCase(name: "rfc8693 without endpoint", yaml: resource("TokenExchange", "  type: rfc8693\n  audience: github\n  clientID: tether\n  clientSecret: sts-secret"), field: "spec", line: 6, message: "missing required field \"endpoint\" for type rfc8693"),
    InvalidCase(name: "JWT-SVID TTL too long", yaml: resource("TokenExchange", "  type: jwt-svid\n  audience: github\n  ttl: 1h"), field: "spec.ttl", line: 8, message: "lives at most 5m"),
    InvalidCase(name: "scope with a space", yaml: resource("TokenExchange", "  type: builtin\n  audience: github\n  scopes: [\"repo read\"]"), field: "spec.scopes[0]", line: 8, message: "not a valid OAuth scope"),
    InvalidCase(name: "unknown policy action", yaml: resource("AuthorizationPolicy", "  targets: {routes: [github]}\n  action: permit\n  rules:\n    - methods: [tools/call]"), field: "spec.action", line: 7, message: "use allow or deny"),
    InvalidCase(name: "rule without conditions", yaml: resource("AuthorizationPolicy", "  targets: {routes: [github]}\n  action: allow\n  rules:\n    - {}"), field: "spec.rules[0]", line: 9, message: "at least one condition"),
    InvalidCase(name: "method that is not MCP", yaml: resource("AuthorizationPolicy", "  targets: {routes: [github]}\n  action: allow\n  rules:\n    - methods: [tool/call]"), field: "spec.rules[0].methods[0]", line: 9, message: "matches no MCP method"),
    InvalidCase(name: "empty tool pattern", yaml: resource("AuthorizationPolicy", "  targets: {routes: [github]}\n  action: allow\n  rules:\n    - tools: [\"\"]"), field: "spec.rules[0].tools[0]", line: 9, message: "is empty"),
    InvalidCase(name: "delegation depth out of range", yaml: resource("AuthorizationPolicy", "  targets: {routes: [github]}\n  action: deny\n  rules:\n    - tools: [\"*\"]\n  delegation:\n    maxDepth: 0"), field: "spec.delegation.maxDepth", line: 11, message: "out of range"),
    InvalidCase(name: "policy without targets", yaml: resource("AuthorizationPolicy", "  targets: {}\n  action: allow\n  rules:\n    - tools: [\"*\"]"), field: "spec.targets", line: 6, message: "set routes, backends or both"),
    InvalidCase(name: "empty credential", yaml: resource("Credential", "  value: \"\""), field: "spec.value", line: 6, message: "must not be empty"),
    InvalidCase(name: "credential of wrong type", yaml: resource("Credential", "  value: 123456"), field: "spec.value", line: 6, message: "expected a string"),
    InvalidCase(name: "label value not a string", yaml: route(validRouteSpec).replacingOccurrences(of: "  name: github", with: "  name: github\n  labels:\n    tier: 1"), field: "metadata.labels.tier", line: 6, message: "expected a string"),
    InvalidCase(name: "duplicate key", yaml: route(validRouteSpec + "\n  path: /other"), field: nil, line: 9, message: "appears twice"),
    InvalidCase(name: "YAML syntax error", yaml: route("  agents: [\"spiffe://example.org/a\"\n  path: /a\n  backend: b"), field: nil, line: 7, message: "syntax error"),
]

@Suite("Invalid config documents")
struct InvalidConfigTests {
    @Test("each invalid document is rejected with field path and line", arguments: invalidCases)
    func rejected(_ testCase: InvalidCase) throws {
        let (resources, diagnostics) = ConfigParser.parse(ConfigSource(name: "mesh.yaml", text: testCase.yaml))
        #expect(resources.isEmpty)
        let match = diagnostics.first { $0.message.contains(testCase.message) }
        #expect(match != nil, "expected a diagnostic containing \(testCase.message); got \(diagnostics.map(\.description))")
        guard let match else { return }
        #expect(match.field == testCase.field, "\(match)")
        #expect(match.location?.file == "mesh.yaml")
        #expect(match.location?.line == testCase.line, "\(match)")
        #expect(match.location?.column ?? 0 >= 1)
    }

    @Test func atLeastThirtyCases() {
        #expect(invalidCases.count >= 30)
    }

    @Test func diagnosticNamesFileLineResourceAndField() throws {
        let (_, diagnostics) = ConfigParser.parse(ConfigSource(name: "mesh.yaml", text: route("  agents: [\"spiffe://example.org/a\"]\n  path: 123\n  backend: b")))
        #expect(diagnostics.map(\.description) == [
            "mesh.yaml:7:9: Route/github: spec.path: expected a string, found a number; quote the value if it is meant as text",
        ])
    }

    @Test func everyErrorOfAFileIsReportedAtOnce() {
        let text = route("  agents: [\"spiffe://Example.org/a\"]\n  path: nope\n  backend: B") + "\n---\n" + resource("Credential", "  value: \"\"\n  extra: 1")
        let (resources, diagnostics) = ConfigParser.parse(ConfigSource(name: "all.yaml", text: text))
        #expect(resources.isEmpty)
        #expect(diagnostics.map(\.field) == ["spec.agents[0]", "spec.path", "spec.backend", "spec.value", "spec.extra"])
        #expect(diagnostics.map(\.resource) == ["Route/github", "Route/github", "Route/github", "Credential/example", "Credential/example"])
    }

    @Test func secretsNeverAppearInDiagnostics() {
        let secret = "ghp_DoNotPrintMe"
        let texts = [
            resource("Credential", "  value: \(secret)\n  valu: \(secret)"),
            resource("Credential", "  value: [\(secret)]"),
            resource("Credential", "  value: \"\(secret)\n"),
        ]
        for text in texts {
            let (_, diagnostics) = ConfigParser.parse(ConfigSource(name: "c.yaml", text: text))
            #expect(!diagnostics.isEmpty)
            #expect(!diagnostics.map(\.description).joined().contains(secret))
        }
    }
}
