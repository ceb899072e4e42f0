import Foundation
import Testing
import TetherControlPlane
import TetherCore

@Suite("Config manager and SQLite store")
struct ConfigManagerTests {
    @Test func applyCreatesARevisionThenReportsUnchanged() async throws {
        let plane = try TestControlPlane()
        let first = try await plane.apply(try exampleMesh(), author: "unix:alice(uid=1000)")
        #expect(first.revision == 1)
        #expect(first.changes.count == 7)
        #expect(first.changes.allSatisfy { $0.action == .created })
        let second = try await plane.apply(try exampleMesh())
        #expect(second.revision == nil)
        #expect(second.changes.allSatisfy { $0.action == .unchanged })
        let history = try await plane.manager.history(limit: 10).revisions
        #expect(history.map(\.number) == [1])
        #expect(history[0].author == "unix:alice(uid=1000)")
        #expect(history[0].operation == .apply)
        #expect(history[0].changes.count == 7)
    }

    @Test func aMultiDocumentApplyWithOneBadDocumentChangesNothing() async throws {
        let plane = try TestControlPlane()
        try await plane.apply(try exampleMesh())
        let before = try await plane.store.currentState()
        let bytesBefore = try await plane.store.revisions(limit: 100)

        // Valid changes to two resources, plus one document with an error.
        let changed = try await exampleMesh()
            .replacingOccurrences(of: "timeout: 30s", with: "timeout: 45s")
            .replacingOccurrences(of: "clockSkew: 30s", with: "clockSkew: 1m")
        let bad = changed + "\n---\n" + credential("broken", "\"\"")
        await #expect(throws: ControlPlaneError.self) { try await plane.apply(bad) }
        do { try await plane.apply(bad) } catch let error as ControlPlaneError {
            #expect(error.code == .invalidConfig)
            #expect(error.diagnostics.count == 1)
            #expect(error.diagnostics[0].resource == "Credential/broken")
            #expect(error.message.contains("nothing was changed"))
        }
        // A set-level error (dangling reference) in an otherwise valid apply.
        let dangling = changed.replacingOccurrences(of: "backend: github\n  identityProvider", with: "backend: gitlab\n  identityProvider")
        await #expect(throws: ControlPlaneError.self) { try await plane.apply(dangling) }

        let after = try await plane.store.currentState()
        #expect(after == before)
        await #expect(try plane.store.revisions(limit: 100) == bytesBefore)
    }

    @Test func dryRunChangesNothing() async throws {
        let plane = try TestControlPlane()
        let result = try await plane.apply(try exampleMesh(), dryRun: true)
        #expect(result.dryRun)
        #expect(result.revision == nil)
        #expect(result.changes.count == 7)
        await #expect(try plane.store.currentState().resources.isEmpty)
        await #expect(try plane.store.revisions(limit: 10).isEmpty)
    }

    @Test func rollbackRestoresAnEarlierRevisionExactly() async throws {
        let plane = try TestControlPlane()
        try await plane.apply(try exampleMesh())
        let revision1 = await plane.canonicalState(try plane.store.currentState())

        try await plane.apply(try exampleMesh()
            .replacingOccurrences(of: "timeout: 30s", with: "timeout: 45s")
            .replacingOccurrences(of: "github_pat_11AAAAAAA0example0only0replace0me", with: "github_pat_rotated"))
        try await plane.manager.delete(AdminProtocol.DeleteRequest(ids: [ResourceID(.authorizationPolicy, "github-no-writes")], sources: [], dryRun: false), author: "test")
        try await plane.apply(credential("extra", "value-x"))
        await #expect(plane.canonicalState(try plane.store.currentState()) != revision1)

        let rollback = try await plane.manager.rollback(AdminProtocol.RollbackRequest(revision: 1, dryRun: false), author: "test")
        #expect(rollback.revision == 5)
        let restored = await plane.canonicalState(try plane.store.currentState())
        #expect(restored == revision1)
        await #expect(plane.canonicalState(try plane.store.state(at: 1)) == revision1)

        let history = try await plane.manager.history(limit: 1).revisions
        #expect(history[0].operation == .rollback)
        #expect(history[0].rollbackTo == 1)
        // The restored credential opens to the original value.
        guard case .credential(let restoredCredential)? = try await plane.store.currentState().resources[ResourceID(.credential, "github-pat")]?.spec,
            case .sealed(let box)? = restoredCredential.value
        else {
            Issue.record("credential missing after rollback")
            return
        }
        #expect(try plane.secrets.open(box, for: ResourceID(.credential, "github-pat")) == "github_pat_11AAAAAAA0example0only0replace0me")
    }

    @Test func everyRevisionStateCanBeReadBack() async throws {
        let plane = try TestControlPlane()
        var states: [Int64: [String: String]] = [:]
        for index in 1...5 {
            let response = try await plane.apply(credential("c\(index % 3)", "v\(index)", description: "d\(index)"))
            states[response.revision!] = await plane.canonicalState(try plane.store.currentState())
        }
        for (revision, state) in states {
            await #expect(plane.canonicalState(try plane.store.state(at: revision)) == state)
        }
        await #expect(throws: ControlPlaneError.self) { try await plane.store.state(at: 99) }
        await #expect(throws: ControlPlaneError.self) { try await plane.manager.rollback(AdminProtocol.RollbackRequest(revision: 99, dryRun: false), author: "t") }
    }

    @Test func deleteIsRefusedWhileReferencedAndOtherwiseRecorded() async throws {
        let plane = try TestControlPlane()
        try await plane.apply(try exampleMesh())
        let backend = ResourceID(.mcpBackend, "github")
        await #expect(throws: ControlPlaneError.self) {
            try await plane.manager.delete(AdminProtocol.DeleteRequest(ids: [backend], sources: [], dryRun: false), author: "t")
        }
        await #expect(throws: ControlPlaneError.self) {
            try await plane.manager.delete(AdminProtocol.DeleteRequest(ids: [ResourceID(.route, "nope")], sources: [], dryRun: false), author: "t")
        }
        let all = try await plane.manager.delete(AdminProtocol.DeleteRequest(ids: [], sources: [ConfigSource(name: "m.yaml", text: try exampleMesh())], dryRun: false), author: "t")
        #expect(all.revision == 2)
        #expect(all.changes.allSatisfy { $0.action == .deleted })
        await #expect(try plane.store.currentState().resources.isEmpty)
    }

    @Test func credentialsAreWriteOnlyAndEncryptedAtRest() async throws {
        let plane = try TestControlPlane()
        let secret = "ghp_VerySecretValue_0123456789"
        try await plane.apply(try exampleMesh() + "\n---\n" + credential("second", secret))

        let get = try await plane.manager.get(kind: nil, name: nil)
        let yaml = ConfigEncoding.yaml(get.resources)
        let json = ConfigEncoding.json(get.resources, single: false)
        let api = String(decoding: try AdminProtocol.encoder.encode(get), as: UTF8.self)
        for output in [yaml, json, api] {
            #expect(!output.contains(secret))
            #expect(!output.contains("github_pat_11AAAAAAA0example0only0replace0me"))
            #expect(output.contains("second"))
        }
        let diff = try await plane.manager.diff(AdminProtocol.ApplyRequest(sources: [ConfigSource(name: "c.yaml", text: credential("second", "changed"))], dryRun: true))
        #expect(diff.entries.count == 1)
        #expect(diff.entries[0].action == .configured)
        #expect(diff.entries[0].proposed?.contains("<secret, changed>") == true)
        #expect(!(diff.entries[0].stored ?? "").contains(secret))

        let bytes = plane.databaseBytes()
        #expect(bytes.count > 0)
        #expect(bytes.range(of: Data(secret.utf8)) == nil)
        #expect(bytes.range(of: Data("github_pat_11AAAAAAA0example0only0replace0me".utf8)) == nil)
        // The same value seals again only when it changes.
        await #expect(try plane.apply(credential("second", secret)).changes == [Change(id: ResourceID(.credential, "second"), action: .unchanged)])
        await #expect(try plane.apply(credential("second", nil, description: nil)).changes.first?.action == .unchanged)
        await #expect(try plane.apply(credential("second", "rotated")).changes.first?.action == .configured)
    }

    @Test func aSealedBoxOnlyOpensForItsOwnCredential() async throws {
        let plane = try TestControlPlane()
        let sealed = try plane.secrets.seal("pat", for: ResourceID(.credential, "a"))
        #expect(try plane.secrets.open(sealed, for: ResourceID(.credential, "a")) == "pat")
        #expect(throws: ControlPlaneError.self) { try plane.secrets.open(sealed, for: ResourceID(.credential, "b")) }
        let other = try SecretBox.loadOrCreate(keyFile: plane.path + "/other.key")
        #expect(throws: ControlPlaneError.self) { try other.open(sealed, for: ResourceID(.credential, "a")) }
    }

    @Test func filesAreForTheOwnerOnly() async throws {
        let plane = try TestControlPlane()
        await #expect(try permissions(plane.path) == 0o700)
        await #expect(try permissions(plane.directory.secretsKeyPath) == 0o600)
        await #expect(try permissions(plane.directory.databasePath) == 0o600)
        chmod(plane.directory.secretsKeyPath, 0o644)
        #expect(throws: ControlPlaneError.self) { try SecretBox.loadOrCreate(keyFile: plane.directory.secretsKeyPath) }
        chmod(plane.path, 0o755)
        #expect(throws: ControlPlaneError.self) { try DataDirectory.prepare(path: plane.path) }
    }

    @Test func onlyOneControlPlanePerDataDirectory() async throws {
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
                    _ = try await manager.apply(AdminProtocol.ApplyRequest(sources: [ConfigSource(name: "c\(index).yaml", text: credential("c\(index)", "v\(index)"))], dryRun: false), author: "t\(index)")
                }
            }
            try await group.waitForAll()
        }
        let revisions = try await plane.store.revisions(limit: 100)
        #expect(revisions.map(\.number) == Array((1...40).reversed()))
        await #expect(try plane.store.currentState().resources.count == 40)
    }

    @Test func reopeningTheStoreKeepsEverything() async throws {
        let plane = try TestControlPlane()
        try await plane.apply(try exampleMesh())
        let reopened = try SQLiteConfigStore(path: plane.directory.databasePath)
        await #expect(try reopened.currentState() == plane.store.currentState())
    }
}

func permissions(_ path: String) async throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.posixPermissions] as? Int ?? 0) & 0o777
}
