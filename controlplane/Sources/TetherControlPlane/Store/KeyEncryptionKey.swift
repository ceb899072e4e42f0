import Crypto
import Foundation

/// The key that seals every private key and credential key a shared store
/// holds (AES-256-GCM, each box bound to its name), given to every replica
/// from a file (`--key-encryption-key-file`) or the environment
/// (`TETHER_KEY_ENCRYPTION_KEY`): 32 random bytes, base64. A dump of the
/// database without it yields no usable key or secret.
///
/// ```sh
/// head -c 32 /dev/urandom | base64 > kek; chmod 600 kek
/// ```
public struct KeyEncryptionKey: Sendable {
    private let key: SymmetricKey

    public init(_ key: SymmetricKey) {
        self.key = key
    }

    /// Reads the key from `file`, else from `TETHER_KEY_ENCRYPTION_KEY`.
    public static func load(file: String?, environment: [String: String]) throws(ControlPlaneError) -> KeyEncryptionKey {
        let text: String
        let source: String
        if let file {
            var info = stat()
            guard stat(file, &info) == 0, let data = FileManager.default.contents(atPath: file) else {
                throw ControlPlaneError(.secrets, "--key-encryption-key-file \(file) cannot be read")
            }
            guard info.st_mode & 0o077 == 0 else {
                throw ControlPlaneError(.secrets, "--key-encryption-key-file \(file) is readable by other users; run chmod 600 \(file)")
            }
            text = String(decoding: data, as: UTF8.self)
            source = "--key-encryption-key-file \(file)"
        } else if let value = environment["TETHER_KEY_ENCRYPTION_KEY"] {
            text = value
            source = "TETHER_KEY_ENCRYPTION_KEY"
        } else {
            throw ControlPlaneError(.secrets, "a shared store needs the key-encryption key every replica is given: --key-encryption-key-file FILE or TETHER_KEY_ENCRYPTION_KEY (32 random bytes, base64: head -c 32 /dev/urandom | base64)")
        }
        guard let bytes = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), bytes.count == 32 else {
            throw ControlPlaneError(.secrets, "\(source) is not 32 bytes in base64 (make one with: head -c 32 /dev/urandom | base64)")
        }
        return KeyEncryptionKey(SymmetricKey(data: bytes))
    }

    func seal(_ plaintext: Data, name: String) throws(ControlPlaneError) -> String {
        guard let combined = try? AES.GCM.seal(plaintext, using: key, authenticating: Self.associatedData(name)).combined else {
            throw ControlPlaneError(.secrets, "cannot seal \(name)")
        }
        return combined.base64EncodedString()
    }

    func open(_ sealed: String, name: String) throws(ControlPlaneError) -> Data {
        guard let data = Data(base64Encoded: sealed), let box = try? AES.GCM.SealedBox(combined: data),
            let plaintext = try? AES.GCM.open(box, using: key, authenticating: Self.associatedData(name))
        else {
            throw ControlPlaneError(.secrets, "\(name) in the store cannot be opened with this key-encryption key; every replica needs the same one")
        }
        return plaintext
    }

    private static func associatedData(_ name: String) -> Data {
        Data("tether sealed key v1:\(name)".utf8)
    }
}
