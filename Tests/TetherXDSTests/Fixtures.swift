import Foundation
import TetherCore

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Every resource of the round-trip fixture and the example.
func fixtureResources() throws -> [Resource] {
    try ["Tests/TetherCoreTests/Fixtures/all-fields.yaml", "examples/mesh.yaml"].flatMap { path in
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent(path), encoding: .utf8)
        return try ConfigParser.parse([ConfigSource(name: path, text: text)]).map(\.resource)
    }
}

let triage = try! SPIFFEID("spiffe://example.org/agent/triage")

/// The example mesh as a snapshot, each resource versioned `name@generation`.
func exampleSnapshot(revision: Int64 = 1, generation: Int = 1, drop: Set<ResourceID> = [], change: Set<ResourceID> = []) throws -> MeshSnapshot {
    let text = try String(contentsOf: repositoryRoot.appendingPathComponent("examples/mesh.yaml"), encoding: .utf8)
    var resources: [ResourceID: VersionedResource] = [:]
    for parsed in try ConfigParser.parse([ConfigSource(name: "mesh.yaml", text: text)]) where !drop.contains(parsed.resource.id) {
        let version = change.contains(parsed.resource.id) ? "v\(generation + 1)" : "v\(generation)"
        resources[parsed.resource.id] = VersionedResource(resource: parsed.resource, version: version)
    }
    return MeshSnapshot(revision: revision, resources: resources)
}
