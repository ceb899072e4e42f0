import Crypto
import Foundation
import TetherCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Seals credential values at rest with AES-256-GCM under a key kept in its
/// own 0600 file, apart from the database: a copy of the database alone
/// reveals no secret. Each box is bound to its credential's name (AAD), so a
/// box moved to another credential does not open.
///
/// ```swift
/// let box = try SecretBox.loadOrCreate(keyFile: directory.secretsKeyPath)
/// let sealed = try box.seal("ghp_…", for: ResourceID(.credential, "github-pat"))
/// ```
public struct SecretBox: Sendable {
    private let sealingKey: SymmetricKey
    private let digestKey: SymmetricKey

    public init(key: SymmetricKey) {
        self.sealingKey = HKDF<SHA256>.deriveKey(inputKeyMaterial: key, info: Data("tether credential sealing v1".utf8), outputByteCount: 32)
        self.digestKey = HKDF<SHA256>.deriveKey(inputKeyMaterial: key, info: Data("tether credential digest v1".utf8), outputByteCount: 32)
    }

    /// Reads the key file, or creates it (32 random bytes, 0600) when absent.
    public static func loadOrCreate(keyFile path: String) throws(ControlPlaneError) -> SecretBox {
        if FileManager.default.fileExists(atPath: path) {
            var info = stat()
            guard stat(path, &info) == 0, info.st_mode & 0o077 == 0 else {
                throw ControlPlaneError(.secrets, "\(path) is readable by other users; run chmod 600 \(path)")
            }
            guard let data = FileManager.default.contents(atPath: path), data.count == 32 else {
                throw ControlPlaneError(.secrets, "\(path) is not a 32-byte key; restore it from backup (without it stored credentials cannot be read)")
            }
            return SecretBox(key: SymmetricKey(data: data))
        }
        let key = SymmetricKey(size: .bits256)
        try ExclusiveFile.create(key.withUnsafeBytes { Data($0) }, at: path, mode: 0o600)
        return SecretBox(key: key)
    }

    public func seal(_ value: String, for id: ResourceID) throws(ControlPlaneError) -> SealedSecret {
        do {
            let box = try AES.GCM.seal(Data(value.utf8), using: sealingKey, authenticating: Data(id.description.utf8))
            guard let combined = box.combined else { throw ControlPlaneError(.secrets, "cannot seal credential \(id)") }
            return SealedSecret(box: combined.base64EncodedString(), digest: digest(value))
        } catch let error as ControlPlaneError {
            throw error
        } catch {
            throw ControlPlaneError(.secrets, "cannot seal credential \(id)")
        }
    }

    public func open(_ sealed: SealedSecret, for id: ResourceID) throws(ControlPlaneError) -> String {
        guard let data = Data(base64Encoded: sealed.box),
            let box = try? AES.GCM.SealedBox(combined: data),
            let plaintext = try? AES.GCM.open(box, using: sealingKey, authenticating: Data(id.description.utf8))
        else {
            throw ControlPlaneError(.secrets, "credential \(id) cannot be decrypted with this data directory's secrets.key; re-apply its value")
        }
        return String(decoding: plaintext, as: UTF8.self)
    }

    /// A keyed digest: equal values compare equal, but without the key a
    /// guessed value cannot be checked against the database.
    public func digest(_ value: String) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: Data(value.utf8), using: digestKey)).base64EncodedString()
    }
}
