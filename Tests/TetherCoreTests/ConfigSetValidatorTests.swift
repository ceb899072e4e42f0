import Testing
@testable import TetherCore

@Suite("Set validation")
struct ConfigSetValidatorTests {
    func parse(_ text: String) throws -> [ParsedResource] {
        try ConfigParser.parse([ConfigSource(name: "set.yaml", text: text)])
    }

    let backend = """
        apiVersion: tether.dev/v1alpha1
        kind: MCPBackend
        metadata: {name: github}
        spec:
          external: {url: "https://mcp.example.com/mcp"}
        """

    func route(_ name: String, path: String = "/github", agents: String = "[\"spiffe://td/agent/*\"]", extra: String = "") -> String {
        """
        apiVersion: tether.dev/v1alpha1
        kind: Route
        metadata: {name: \(name)}
        spec:
          agents: \(agents)
          path: \(path)
          backend: github\(extra)
        """
    }

    @Test func danglingReferenceNamesFieldAndLine() throws {
        let parsed = try parse(route("github", extra: "\n  tokenExchange: missing"))
        let problems = ConfigSetValidator.validate(applying: parsed, over: [:])
        #expect(problems.map(\.field) == ["spec.backend", "spec.tokenExchange"])
        #expect(problems.map { $0.location?.line } == [7, 8])
        #expect(problems[0].description.contains("MCPBackend \"github\" does not exist"))
    }

    @Test func referencesResolveAgainstStoredState() throws {
        let stored = try parse(backend).map(\.resource)
        let problems = ConfigSetValidator.validate(applying: try parse(route("github")), over: Dictionary(uniqueKeysWithValues: stored.map { ($0.id, $0) }))
        #expect(problems.isEmpty)
    }

    @Test func duplicateNamesAreRejected() throws {
        let parsed = try parse(backend + "\n---\n" + backend)
        let problems = ConfigSetValidator.validate(applying: parsed, over: [:])
        #expect(problems.count == 1)
        #expect(problems[0].description.contains("is defined twice (first at set.yaml:1:1)"))
        #expect(problems[0].location?.line == 7)
    }

    @Test func routesWithTheSamePathAndOverlappingAgentsConflict() throws {
        let parsed = try parse([backend, route("a"), route("b", agents: "[\"spiffe://td/agent/triage\"]")].joined(separator: "\n---\n"))
        let problems = ConfigSetValidator.validate(applying: parsed, over: [:])
        #expect(problems.count == 2)
        #expect(problems.allSatisfy { $0.field == "spec.path" })
        let disjoint = try parse([backend, route("a"), route("b", agents: "[\"spiffe://td/mcp/x\"]")].joined(separator: "\n---\n"))
        #expect(ConfigSetValidator.validate(applying: disjoint, over: [:]).isEmpty)
    }

    @Test func exchangingTheUserTokenNeedsAnIdentityProvider() throws {
        let exchange = """
            apiVersion: tether.dev/v1alpha1
            kind: TokenExchange
            metadata: {name: sts}
            spec: {type: builtin, audience: github}
            """
        let parsed = try parse([backend, exchange, route("github", extra: "\n  tokenExchange: sts")].joined(separator: "\n---\n"))
        let problems = ConfigSetValidator.validate(applying: parsed, over: [:])
        #expect(problems.map(\.field) == ["spec.tokenExchange"])
        #expect(problems[0].message.contains("needs spec.identityProvider"))
    }

    @Test func deletingAReferencedResourceIsRefused() throws {
        let stored = try parse(backend + "\n---\n" + route("github")).map(\.resource)
        let state = Dictionary(uniqueKeysWithValues: stored.map { ($0.id, $0) })
        let problems = ConfigSetValidator.validate(applying: [], deleting: [ResourceID(.mcpBackend, "github")], over: state)
        #expect(problems.count == 1)
        #expect(problems[0].description.contains("still referenced by Route/github"))
        #expect(ConfigSetValidator.validate(applying: [], deleting: [ResourceID(.mcpBackend, "github"), ResourceID(.route, "github")], over: state).isEmpty)
    }

    @Test func newCredentialNeedsAValue() throws {
        let credential = """
            apiVersion: tether.dev/v1alpha1
            kind: Credential
            metadata: {name: pat}
            spec: {description: no value}
            """
        let parsed = try parse(credential)
        #expect(ConfigSetValidator.validate(applying: parsed, over: [:]).map(\.field) == ["spec.value"])
        let stored = Resource(name: "pat", spec: .credential(CredentialSpec(value: .plaintext("x"))))
        #expect(ConfigSetValidator.validate(applying: parsed, over: [stored.id: stored]).isEmpty)
    }

    @Test func partialValidationAllowsUnresolvedReferences() throws {
        let parsed = try parse(route("github"))
        #expect(ConfigSetValidator.validate(applying: parsed, over: [:], options: .init(allowUnresolvedReferences: true)).isEmpty)
    }
}

@Suite("Unified diff")
struct UnifiedDiffTests {
    @Test func equalTextsHaveNoDiff() {
        #expect(UnifiedDiff.diff(old: "a\nb\n", new: "a\nb\n", oldLabel: "a", newLabel: "b").isEmpty)
    }

    @Test func changeInTheMiddle() {
        let old = (1...10).map { "line \($0)" }.joined(separator: "\n") + "\n"
        let new = old.replacingOccurrences(of: "line 5\n", with: "line five\n")
        #expect(UnifiedDiff.diff(old: old, new: new, oldLabel: "old", newLabel: "new") == """
            --- old
            +++ new
            @@ -2,7 +2,7 @@
             line 2
             line 3
             line 4
            -line 5
            +line five
             line 6
             line 7
             line 8

            """)
    }

    @Test func creationFromNothing() {
        #expect(UnifiedDiff.diff(old: "", new: "a\nb\n", oldLabel: "/dev/null", newLabel: "new") == "--- /dev/null\n+++ new\n@@ -0,0 +1,2 @@\n+a\n+b\n")
    }

    @Test func distantChangesMakeSeparateHunks() {
        let old = (1...30).map { "\($0)" }.joined(separator: "\n") + "\n"
        let new = old.replacingOccurrences(of: "\n2\n", with: "\ntwo\n").replacingOccurrences(of: "\n28\n", with: "\ntwenty-eight\n")
        let diff = UnifiedDiff.diff(old: old, new: new, oldLabel: "a", newLabel: "b")
        #expect(diff.components(separatedBy: "@@ -").count == 3)
    }
}
