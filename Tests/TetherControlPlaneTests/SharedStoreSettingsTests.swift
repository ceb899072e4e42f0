import Crypto
import Foundation
import Testing
@testable import TetherControlPlane
import TetherCore

/// What an operator gives a replica — the store URL, the key-encryption key,
/// the operator allow-list — is checked before anything connects, with an
/// error that says what to fix; secrets never ride in a URL.
@Suite("Shared store settings")
struct SharedStoreSettingsTests {
    @Test func aPostgresURLIsReadLikeLibpqReadsIt() throws {
        let location = try PostgresLocation(url: "postgres://tether@db.example:6432/mesh?sslmode=verify-full&sslrootcert=/etc/ca.pem", password: "pw", what: "--store")
        #expect(location.host == "db.example" && location.port == 6432 && location.user == "tether" && location.database == "mesh")
        #expect(location.sslMode == .verifyFull && location.sslRootCertificate == "/etc/ca.pem" && location.password == "pw")
        #expect(location.description == "postgres://tether@db.example:6432/mesh?sslmode=verify-full")
        let defaults = try PostgresLocation(url: "postgresql://t@h/d", password: nil, what: "--store")
        #expect(defaults.port == 5432 && defaults.sslMode == .prefer)
    }

    @Test(arguments: [
        ("postgres://tether:hunter2@db/mesh", "must not contain a password"),
        ("mysql://tether@db/mesh", "not a postgres:// URL"),
        ("postgres://db/mesh", "names no user"),
        ("postgres://tether@db/", "names no database"),
        ("postgres://tether@db/mesh?sslmode=maybe", "sslmode must be one of"),
        ("postgres://tether@db/mesh?sslmode=verify-ca", "needs sslrootcert"),
        ("postgres://tether@db/mesh?application_name=x", "unknown parameter application_name"),
    ])
    func aBadURLIsRefusedWithTheReason(url: String, reason: String) {
        #expect {
            try PostgresLocation(url: url, password: nil, what: "--store")
        } throws: { error in
            let message = (error as? ControlPlaneError)?.message ?? ""
            return message.contains(reason) && !message.contains("hunter2")
        }
    }

    @Test func thePasswordComesFromAFileOrTheEnvironment() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pw-\(UUID().uuidString)").path
        try "s3cret\nignored\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(try PostgresLocation.password(file: file, environment: ["TETHER_STORE_PASSWORD": "env"]) == "s3cret")
        #expect(try PostgresLocation.password(file: nil, environment: ["TETHER_STORE_PASSWORD": "env"]) == "env")
        #expect(try PostgresLocation.password(file: nil, environment: [:]) == nil)
    }

    @Test func theKeyEncryptionKeySealsEachKeyUnderItsName() throws {
        let kek = try KeyEncryptionKey.load(file: nil, environment: ["TETHER_KEY_ENCRYPTION_KEY": Data(repeating: 7, count: 32).base64EncodedString()])
        let sealed = try kek.seal(Data("private".utf8), name: "ca")
        #expect(try kek.open(sealed, name: "ca") == Data("private".utf8))
        #expect(!Data(base64Encoded: sealed)!.contains(Data("private".utf8)))
        // A box moved to another name, or opened with another key, does not open.
        #expect(throws: ControlPlaneError.self) { try kek.open(sealed, name: "jwt.key") }
        let other = KeyEncryptionKey(SymmetricKey(size: .bits256))
        #expect(throws: ControlPlaneError.self) { try other.open(sealed, name: "ca") }
    }

    @Test func aKeyEncryptionKeyMustBeThirtyTwoPrivateBytes() throws {
        #expect(throws: ControlPlaneError.self) { try KeyEncryptionKey.load(file: nil, environment: [:]) }
        #expect(throws: ControlPlaneError.self) { try KeyEncryptionKey.load(file: nil, environment: ["TETHER_KEY_ENCRYPTION_KEY": "c2hvcnQ="]) }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kek-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(FileManager.default.createFile(atPath: file, contents: Data(Data(repeating: 1, count: 32).base64EncodedString().utf8), attributes: [.posixPermissions: 0o644]))
        #expect {
            try KeyEncryptionKey.load(file: file, environment: [:])
        } throws: { error in
            (error as? ControlPlaneError)?.message.contains("chmod 600") == true
        }
        chmod(file, 0o600)
        _ = try KeyEncryptionKey.load(file: file, environment: [:])
    }

    @Test func theOperatorListAllowsExactIDsAndPrefixes() throws {
        let list = try OperatorAllowList(["spiffe://example.org/operator/alice", "spiffe://example.org/ops/*"], trustDomain: "example.org")
        #expect(list.permits(try SPIFFEID("spiffe://example.org/operator/alice")))
        #expect(!list.permits(try SPIFFEID("spiffe://example.org/operator/alice2")))
        #expect(list.permits(try SPIFFEID("spiffe://example.org/ops/bob")))
        #expect(!list.permits(try SPIFFEID("spiffe://example.org/opsx/bob")))
        #expect(!list.permits(try SPIFFEID("spiffe://example.org/agent/triage")))
        #expect(throws: ControlPlaneError.self) { try OperatorAllowList(["spiffe://other.org/operator/alice"], trustDomain: "example.org") }
        #expect(throws: ControlPlaneError.self) { try OperatorAllowList(["alice"], trustDomain: "example.org") }
    }
}
