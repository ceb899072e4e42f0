import Foundation
import TetherControlPlane
import TetherCore

/// A fresh data directory with a store and manager, removed on deinit.
final class TestControlPlane {
    let path: String
    let directory: DataDirectory
    let secrets: SecretBox
    let store: SQLiteConfigStore
    let manager: ConfigManager

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("tether-test-\(UUID().uuidString)").path
        directory = try DataDirectory.prepare(path: path)
        secrets = try SecretBox.loadOrCreate(keyFile: directory.secretsKeyPath)
        store = try SQLiteConfigStore(path: directory.databasePath)
        manager = ConfigManager(store: store, secrets: secrets)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    @discardableResult
    func apply(_ text: String, name: String = "test.yaml", dryRun: Bool = false, author: String = "test") async throws -> AdminProtocol.ChangeResponse {
        try await manager.apply(AdminProtocol.ApplyRequest(sources: [ConfigSource(name: name, text: text)], dryRun: dryRun), author: author)
    }

    /// Every resource's canonical JSON, as stored (credentials sealed).
    func canonicalState(_ state: StoreState) -> [String: String] {
        Dictionary(uniqueKeysWithValues: state.resources.map { ($0.key.description, String(decoding: ConfigEncoding.canonicalJSON($0.value), as: UTF8.self)) })
    }

    /// All bytes of the database files (main, WAL, shared memory).
    func databaseBytes() -> Data {
        ["", "-wal", "-shm"].reduce(into: Data()) { bytes, suffix in
            bytes += FileManager.default.contents(atPath: directory.databasePath + suffix) ?? Data()
        }
    }
}

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

func exampleMesh() async throws -> String {
    try String(contentsOf: repositoryRoot.appendingPathComponent("examples/mesh.yaml"), encoding: .utf8)
}

func credential(_ name: String, _ value: String?, description: String? = nil) -> String {
    var spec = ""
    if let value { spec += "\n  value: \(value)" }
    if let description { spec += "\n  description: \(description)" }
    if spec.isEmpty { spec = " {}" }
    return """
        apiVersion: tether.dev/v1alpha1
        kind: Credential
        metadata:
          name: \(name)
        spec:\(spec)
        """
}
