import Foundation
import Testing
import TetherControlPlane
import TetherCore

@Suite("Config manager and SQLite store")
struct ConfigManagerTests {
    @Test func applyCreatesARevisionThenReportsUnchanged() throws {
        let plane = try TestControlPlane()
        let first = try plane.apply(try exampleMesh(), author: "unix:alice(uid=1000)")
        #expect(first.revision == 1)
        #expect(first.changes.count == 7)
        #expect(first.changes.allSatisfy { $0.action == .created })
        let second = try plane.apply(try exampleMesh())
        #expect(second.revision == nil)
        #expect(second.changes.allSatisfy { $0.action == .unchanged })
        let history = try plane.manager.history(limit: 10).revisions
        #expect(history.map(\.number) == [1])
        #expect(history[0].author == "unix:alice(uid=1000)")
        #expect(history[0].operation == .apply)
        #expect(history[0].changes.count == 7)
    }

    @Test func aMultiDocumentApplyWithOneBadDocumentChangesNothing() throws {
        let plane = try TestControlPlane()
        try plane.apply(try exampleMesh())
        let before = try plane.store.currentState()
        let bytesBefore = try plane.store.revisions(limit: 100)

        // Valid changes to two resources, plus one document with an error.
        let changed = try exampleMesh()
            .replacingOccurrences(of: "timeout: 30s", with: "timeout: 45s")
            .replacingOccurrences(of: "clockSkew: 30s", with: "clockSkew: 1m")
        let bad = changed + "\n---\n" + credential("broken", "\"\"")
        #expect(throws: ControlPlaneError.self) { try plane.apply(bad) }
        do { try plane.apply(bad) } catch let error as ControlPlaneError {
            #expect(error.code == .invalidConfig)
            #expect(error.diagnostics.count == 1)
            #expect(error.diagnostics[0].resource == "Credential/broken")
            #expect(error.message.contains("nothing was changed"))
        }
        // A set-level error (dangling reference) in an otherwise valid apply.
        let dangling = changed.replacingOccurrences(of: "backend: github\n  identityProvider", with: "backend: gitlab\n  identityProvider")
        #expect(throws: ControlPlaneError.self) { try plane.apply(dangling) }

        let after = try plane.store.currentState()
        #expect(after == before)
        #expect(try plane.store.revisions(limit: 100) == bytesBefore)
    }

    @Test func dryRunChangesNothing() throws {
        let plane = try TestControlPlane()
        let result = try plane.apply(try exampleMesh(), dryRun: true)
        #expect(result.dryRun)
        #expect(result.revision == nil)
        #expect(result.changes.count == 7)
        #expect(try plane.store.currentState().resources.isEmpty)
        #expect(try plane.store.revisions(limit: 10).isEmpty)
    }

    @Test func rollbackRestoresAnEarlierRevisionExactly() throws {
        let plane = try TestControlPlane()
        try plane.apply(try exampleMesh())
        let revision1 = plane.canonicalState(try plane.store.currentState())

        try plane.apply(try exampleMesh()
            .replacingOccurrences(of: "timeout: 30s", with: "timeout: 45s")
            .replacingOccurrences(of: "github_pat_11AAAAAAA0example0only0replace0me", with: "github_pat_rotated"))
        try plane.manager.delete(AdminProtocol.DeleteRequest(ids: [ResourceID(.authorizationPolicy, "github-no-writes")], sources: [], dryRun: false), author: "test")
        try plane.apply(credential("extra", "value-x"))
        #expect(plane.canonicalState(try plane.store.currentState()) != revision1)

        let rollback = try plane.manager.rollback(AdminProtocol.RollbackRequest(revision: 1, dryRun: false), author: "test")
        #expect(rollback.revision == 5)
        let restored = plane.canonicalState(try plane.store.currentState())
        #expect(restored == revision1)
        #expect(plane.canonicalState(try plane.store.state(at: 1)) == revision1)

        let history = try plane.manager.history(limit: 1).revisions
        #expect(history[0].operation == .rollback)
        #expect(history[0].rollbackTo == 1)
        // The restored credential opens to the original value.
        guard case .credential(let restoredCredential)? = try plane.store.currentState().resources[ResourceID(.credential, "github-pat")]?.spec,
            case .sealed(let box)? = restoredCredential.value
        else {
            Issue.record("credential missing after rollback")
            return
        }
        #expect(try plane.secrets.open(box, for: ResourceID(.credential, "github-pat")) == "github_pat_11AAAAAAA0example0only0replace0me")
    }

    @Test func everyRevisionStateCanBeReadBack() throws {
        let plane = try TestControlPlane()
        var states: [Int64: [String: String]] = [:]
        for index in 1...5 {
            let response = try plane.apply(credential("c\(index % 3)", "v\(index)", description: "d\(index)"))
            states[response.revision!] = plane.canonicalState(try plane.store.currentState())
        }
        for (revision, state) in states {
            #expect(plane.canonicalState(try plane.store.state(at: revision)) == state)
        }
        #expect(throws: ControlPlaneError.self) { try plane.store.state(at: 99) }
        #expect(throws: ControlPlaneError.self) { try plane.manager.rollback(AdminProtocol.RollbackRequest(revision: 99, dryRun: false), author: "t") }
    }

    @Test func deleteIsRefusedWhileReferencedAndOtherwiseRecorded() throws {
        let plane = try TestControlPlane()
        try plane.apply(try exampleMesh())
        let backend = ResourceID(.mcpBackend, "github")
        #expect(throws: ControlPlaneError.self) {
            try plane.manager.delete(AdminProtocol.DeleteRequest(ids: [backend], sources: [], dryRun: false), author: "t")
        }
        #expect(throws: ControlPlaneError.self) {
            try plane.manager.delete(AdminProtocol.DeleteRequest(ids: [ResourceID(.route, "nope")], sources: [], dryRun: false), author: "t")
        }
        let all = try plane.manager.delete(AdminProtocol.DeleteRequest(ids: [], sources: [ConfigSource(name: "m.yaml", text: try exampleMesh())], dryRun: false), author: "t")
        #expect(all.revision == 2)
        #expect(all.changes.allSatisfy { $0.action == .deleted })
        #expect(try plane.store.currentState().resources.isEmpty)
    }

    @Test func credentialsAreWriteOnlyAndEncryptedAtRest() throws {
        let plane = try TestControlPlane()
        let secret = "ghp_VerySecretValue_0123456789"
        try plane.apply(try exampleMesh() + "\n---\n" + credential("second", secret))

        let get = try plane.manager.get(kind: nil, name: nil)
        let yaml = ConfigEncoding.yaml(get.resources)
        let json = ConfigEncoding.json(get.resources, single: false)
        let api = String(decoding: try AdminProtocol.encoder.encode(get), as: UTF8.self)
        for output in [yaml, json, api] {
            #expect(!output.contains(secret))
            #expect(!output.contains("github_pat_11AAAAAAA0example0only0replace0me"))
            #expect(output.contains("second"))
        }
        let diff = try plane.manager.diff(AdminProtocol.ApplyRequest(sources: [ConfigSource(name: "c.yaml", text: credential("second", "changed"))], dryRun: true))
        #expect(diff.entries.count == 1)
        #expect(diff.entries[0].action == .configured)
        #expect(diff.entries[0].proposed?.contains("<secret, changed>") == true)
        #expect(!(diff.entries[0].stored ?? "").contains(secret))

        let bytes = plane.databaseBytes()
        #expect(bytes.count > 0)
        #expect(bytes.range(of: Data(secret.utf8)) == nil)
        #expect(bytes.range(of: Data("github_pat_11AAAAAAA0example0only0replace0me".utf8)) == nil)
        // The same value seals again only when it changes.
        #expect(try plane.apply(credential("second", secret)).changes == [Change(id: ResourceID(.credential, "second"), action: .unchanged)])
        #expect(try plane.apply(credential("second", nil, description: nil)).changes.first?.action == .unchanged)
        #expect(try plane.apply(credential("second", "rotated")).changes.first?.action == .configured)
    }

    @Test func aSealedBoxOnlyOpensForItsOwnCredential() throws {
        let plane = try TestControlPlane()
        let sealed = try plane.secrets.seal("pat", for: ResourceID(.credential, "a"))
        #expect(try plane.secrets.open(sealed, for: ResourceID(.credential, "a")) == "pat")
        #expect(throws: ControlPlaneError.self) { try plane.secrets.open(sealed, for: ResourceID(.credential, "b")) }
        let other = try SecretBox.loadOrCreate(keyFile: plane.path + "/other.key")
        #expect(throws: ControlPlaneError.self) { try other.open(sealed, for: ResourceID(.credential, "a")) }
    }

    @Test func filesAreForTheOwnerOnly() throws {
        let plane = try TestControlPlane()
        #expect(try permissions(plane.path) == 0o700)
        #expect(try permissions(plane.directory.secretsKeyPath) == 0o600)
        #expect(try permissions(plane.directory.databasePath) == 0o600)
        chmod(plane.directory.secretsKeyPath, 0o644)
        #expect(throws: ControlPlaneError.self) { try SecretBox.loadOrCreate(keyFile: plane.directory.secretsKeyPath) }
        chmod(plane.path, 0o755)
        #expect(throws: ControlPlaneError.self) { try DataDirectory.prepare(path: plane.path) }
    }

    @Test func onlyOneControlPlanePerDataDirectory() throws {
        let plane = try TestControlPlane()
        let lock = try DataDirectoryLock(plane.directory)
        #expect(throws: ControlPlaneError.self) { try DataDirectoryLock(plane.directory) }
        withExtendedLifetime(lock) {}
    }

    @Test func concurrentAppliesSerializeWithoutLoss() async throws {
        let plane = try TestControlPlane()
        let manager = plane.manager
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<40 {
                group.addTask {
                    _ = try manager.apply(AdminProtocol.ApplyRequest(sources: [ConfigSource(name: "c\(index).yaml", text: credential("c\(index)", "v\(index)"))], dryRun: false), author: "t\(index)")
                }
            }
            try await group.waitForAll()
        }
        let revisions = try plane.store.revisions(limit: 100)
        #expect(revisions.map(\.number) == Array((1...40).reversed()))
        #expect(try plane.store.currentState().resources.count == 40)
    }

    @Test func reopeningTheStoreKeepsEverything() throws {
        let plane = try TestControlPlane()
        try plane.apply(try exampleMesh())
        let reopened = try SQLiteConfigStore(path: plane.directory.databasePath)
        #expect(try reopened.currentState() == plane.store.currentState())
    }
}

func permissions(_ path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.posixPermissions] as? Int ?? 0) & 0o777
}
