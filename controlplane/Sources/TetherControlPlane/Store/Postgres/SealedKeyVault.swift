import Foundation
import PostgresNIO

/// The control plane's keys in the shared store, each sealed under the
/// key-encryption key: the CA key, the JWT-SVID key, the token service's
/// signing keys and the key credential values are sealed with.
struct SealedKeyVault: Sendable {
    let store: PostgresStore
    let kek: KeyEncryptionKey

    /// The key `name`; if there is none yet, the one `make` returns — and of
    /// replicas starting at once, the first to insert wins and every one
    /// returns that winner.
    func secret(_ name: String, orCreate make: () throws(ControlPlaneError) -> Data) async throws(ControlPlaneError) -> Data {
        if let existing = try await secret(name) { return existing }
        let sealed = try kek.seal(try make(), name: name)
        let logger = store.logger
        _ = try await store.withConnection("store \(name)") { connection in
            try await connection.query("""
                INSERT INTO sealed_keys (name, sealed, updated_at) VALUES (\(name), \(sealed), \(StoreDates.format(Date())))
                ON CONFLICT (name) DO NOTHING
                """, logger: logger)
            return true
        }
        guard let stored = try await secret(name) else {
            throw ControlPlaneError(.storage, "\(name) vanished from the store right after it was written")
        }
        return stored
    }

    func secret(_ name: String) async throws(ControlPlaneError) -> Data? {
        let logger = store.logger
        let sealed = try await store.withConnection("read \(name)") { connection in
            try await connection.query("SELECT sealed FROM sealed_keys WHERE name = \(name)", logger: logger).collect().map { try $0.decode(String.self) }.first
        }
        guard let sealed else { return nil }
        return try kek.open(sealed, name: name)
    }

    /// Stores `new` for `name` unless it exists already (for `migrate`).
    func insert(_ name: String, _ value: Data) async throws(ControlPlaneError) {
        _ = try await secret(name, orCreate: { value })
    }

    /// Replaces `name`'s value `old` with `new` in one transaction; false
    /// when another replica replaced it first (compare-and-swap).
    func replace(_ name: String, old: Data, new: Data) async throws(ControlPlaneError) -> Bool {
        let logger = store.logger
        let kek = self.kek
        let sealed = try kek.seal(new, name: name)
        return try await store.withTransaction("replace \(name)") { connection in
            let current = try await connection.query("SELECT sealed FROM sealed_keys WHERE name = \(name) FOR UPDATE", logger: logger).collect().map { try $0.decode(String.self) }.first
            guard let current, try kek.open(current, name: name) == old else { return false }
            try await connection.query("UPDATE sealed_keys SET sealed = \(sealed), updated_at = \(StoreDates.format(Date())) WHERE name = \(name)", logger: logger)
            return true
        }
    }
}
