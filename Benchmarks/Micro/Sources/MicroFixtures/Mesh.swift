import Foundation
import TetherCore

/// A mesh of the size a team runs in production rather than the one-route
/// example: 20 MCP backends, a route to each, an allow policy per route
/// (agents by pattern, user groups, method lists, tool globs, a delegation
/// limit) and 4 deny policies shared across backends — 24 policies in all.
/// Route `github` and agent `triage` are the ones the benchmarks call.
public enum Mesh {
    public static let servers = [
        "github", "gitlab", "jira", "confluence", "slack", "linear", "notion", "sentry", "datadog", "pagerduty",
        "postgres", "snowflake", "s3", "kubernetes", "terraform", "vault", "salesforce", "zendesk", "figma", "stripe",
    ]

    public static let agent = try! SPIFFEID("spiffe://example.org/agent/triage")

    /// The claims of a signed-in engineer, as `UserTokenValidator` hands them over.
    public static let claims: [String: [String]] = [
        "iss": ["https://login.example.com"], "aud": ["tether-agents"], "sub": ["00u1a2b3c4d5e6f7g8h9"],
        "email": ["ada@example.com"], "name": ["Ada Lovelace"], "groups": ["engineering", "oncall", "platform"],
        "department": ["R&D"], "amr": ["pwd", "mfa"], "exp": ["1893456000"], "iat": ["1893452400"],
    ]

    public static let yaml: String = {
        var documents: [String] = []
        for (index, server) in servers.enumerated() {
            documents.append("""
                apiVersion: tether.dev/v1alpha1
                kind: MCPBackend
                metadata:
                  name: \(server)
                spec:
                  inMesh:
                    spiffeID: spiffe://example.org/mcp/\(server)
                    address: \(server)-mcp.internal:15006
                    upstream: http://127.0.0.1:8080/mcp
                """)
            documents.append("""
                apiVersion: tether.dev/v1alpha1
                kind: Route
                metadata:
                  name: \(server)
                spec:
                  agents: ["spiffe://example.org/agent/*", "spiffe://example.org/team/\(index % 4)/**"]
                  path: /\(server)
                  backend: \(server)
                  timeout: 30s
                """)
            documents.append("""
                apiVersion: tether.dev/v1alpha1
                kind: AuthorizationPolicy
                metadata:
                  name: \(server)-read
                spec:
                  targets:
                    routes: [\(server)]
                  action: allow
                  rules:
                    - agents: ["spiffe://example.org/agent/*"]
                      claims:
                        groups: [engineering, support]
                      methods: ["initialize", "ping", "server/discover", "notifications/*", "tools/list", "resources/list", "prompts/list"]
                    - agents: ["spiffe://example.org/agent/release-bot"]
                      methods: [tools/call]
                      tools: ["create_*", "update_*"]
                    - agents: ["spiffe://example.org/agent/*", "spiffe://example.org/team/\(index % 4)/*"]
                      claims:
                        groups: [engineering, support]
                        department: [R&D, Support]
                      methods: [tools/call]
                      tools: ["get_*", "list_*", "search_*", "describe_*"]
                    - agents: ["spiffe://example.org/agent/*"]
                      claims:
                        groups: [engineering]
                      methods: [resources/read, prompts/get]
                      resources: ["repo://acme/**", "file:///shared/*"]
                      prompts: ["summarize_*"]
                  delegation:
                    maxDepth: 2
                """)
        }
        let denies: [(String, [String], [String])] = [
            ("no-destructive", servers, ["delete_*", "drop_*", "destroy_*"]),
            ("no-merges", ["github", "gitlab"], ["merge_*", "push_*"]),
            ("no-secrets", ["vault", "kubernetes", "terraform"], ["read_secret*", "get_secret*"]),
            ("no-payments", ["stripe", "salesforce"], ["refund_*", "charge_*"]),
        ]
        for (name, backends, tools) in denies {
            documents.append("""
                apiVersion: tether.dev/v1alpha1
                kind: AuthorizationPolicy
                metadata:
                  name: \(name)
                spec:
                  targets:
                    backends: [\(backends.joined(separator: ", "))]
                  action: deny
                  rules:
                    - methods: [tools/call]
                      tools: [\(tools.map { "\"\($0)\"" }.joined(separator: ", "))]
                """)
        }
        return documents.joined(separator: "\n---\n")
    }()

    /// The mesh's resources, parsed and validated as the control plane does.
    public static let resources: [Resource] = {
        do {
            return try ConfigParser.parse([ConfigSource(name: "bench-mesh.yaml", text: yaml)]).map(\.resource)
        } catch {
            fatalError("the benchmark mesh does not parse: \(error)")
        }
    }()

    /// What the proxy compiles from its config (`DataPlaneConfig.authorization`).
    public static let engine = AuthorizationEngine(resources: resources)
}
