import Foundation
import Testing
@testable import TetherCore

@Suite("Round trips")
struct RoundTripTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func load(_ relativePath: String) throws -> ConfigSource {
        let url = repository.appendingPathComponent(relativePath)
        return ConfigSource(name: relativePath, text: try String(contentsOf: url, encoding: .utf8))
    }

    static let fixtures = ["examples/mesh.yaml", "Tests/TetherCoreTests/Fixtures/all-fields.yaml"]

    @Test("YAML → model → YAML is stable and loses nothing", arguments: fixtures)
    func yamlRoundTrip(_ path: String) throws {
        let parsed = try ConfigParser.parse([Self.load(path)]).map(\.resource)
        let yaml = ConfigEncoding.yaml(parsed)
        let reparsed = try ConfigParser.parse([ConfigSource(name: "out.yaml", text: yaml)]).map(\.resource)
        #expect(reparsed == parsed)
        #expect(ConfigEncoding.yaml(reparsed) == yaml)
    }

    @Test("JSON output reads back as the same model", arguments: fixtures)
    func jsonRoundTrip(_ path: String) throws {
        let parsed = try ConfigParser.parse([Self.load(path)]).map(\.resource)
        let json = ConfigEncoding.json(parsed, single: false)
        let reparsed = try ConfigParser.parse([ConfigSource(name: "out.json", text: json)]).map(\.resource)
        #expect(reparsed == parsed)
    }

    @Test func canonicalJSONDecodesToTheSameResource() throws {
        let parsed = try ConfigParser.parse([Self.load("Tests/TetherCoreTests/Fixtures/all-fields.yaml")]).map(\.resource)
        for resource in parsed {
            let data = ConfigEncoding.canonicalJSON(resource)
            #expect(try ConfigEncoding.decode(canonicalJSON: data) == resource)
            #expect(ConfigEncoding.canonicalJSON(try ConfigEncoding.decode(canonicalJSON: data)) == data)
        }
    }

    @Test func fixturesCoverEveryKind() throws {
        let kinds = Set(try Self.fixtures.flatMap { try ConfigParser.parse([Self.load($0)]) }.map(\.resource.kind))
        #expect(kinds == Set(ResourceKind.allCases))
        let exchangeTypes = Set(try ConfigParser.parse([Self.load(Self.fixtures[1])]).compactMap { parsed -> TokenExchangeSpec.ExchangeType? in
            if case .tokenExchange(let spec) = parsed.resource.spec { return spec.type }
            return nil
        })
        #expect(exchangeTypes == Set(TokenExchangeSpec.ExchangeType.allCases))
    }

    @Test func exampleIsACompleteValidMesh() throws {
        let parsed = try ConfigParser.parse([Self.load("examples/mesh.yaml")])
        #expect(ConfigSetValidator.validate(applying: parsed, over: [:]).isEmpty)
        let fixture = try ConfigParser.parse([Self.load(Self.fixtures[1])])
        let applicable = fixture.filter { $0.resource.kind != .trustBundle }
        #expect(ConfigSetValidator.validate(applying: applicable, over: [:]).isEmpty)
        // The trust bundle is the control plane's to publish, never an operator's to apply.
        let bundle = fixture.filter { $0.resource.kind == .trustBundle }
        let refused = ConfigSetValidator.validate(applying: bundle, over: [:])
        #expect(refused.count == 1 && refused[0].field == "kind" && refused[0].message.contains("cannot be applied"), "\(refused)")
    }

    @Test func jsonArrayAndYAMLStreamsBothRead() throws {
        let json = """
            [{"apiVersion": "tether.dev/v1alpha1", "kind": "Credential", "metadata": {"name": "a"}, "spec": {"value": "x"}},
             {"apiVersion": "tether.dev/v1alpha1", "kind": "Credential", "metadata": {"name": "b"}, "spec": {"value": "y"}}]
            """
        let parsed = try ConfigParser.parse([ConfigSource(name: "c.json", text: json)])
        #expect(parsed.map(\.resource.metadata.name) == ["a", "b"])
        #expect(parsed[1].location?.line == 2)
    }

    @Test func redactionRemovesCredentialValues() throws {
        let parsed = try ConfigParser.parse([Self.load("examples/mesh.yaml")]).map { $0.resource.redactingSecrets() }
        let yaml = ConfigEncoding.yaml(parsed)
        #expect(!yaml.contains("github_pat_"))
        #expect(yaml.contains("kind: Credential"))
    }
}
