import Crypto
import Foundation
import TetherIdentity

/// The keys a control plane runs on — the trust domain's CA, the JWT-SVID
/// key, the key credential values are sealed with, and the token service's
/// signing keys — loaded (or created on first start) from where its store
/// keeps them: 0600 files in the data directory beside SQLite, or sealed
/// rows in PostgreSQL shared by every replica.
struct ControlPlaneKeys: Sendable {
    var ca: TrustDomainCA
    var jwtKey: P256.Signing.PrivateKey
    var secrets: SecretBox
    var tokenKeys: any TokenKeyStore

    /// Names in the sealed vault.
    enum Name {
        static let ca = "ca", jwt = "jwt.key", secrets = "secrets.key", tokenKeys = "token-signing-keys"
    }

    static func load(in directory: DataDirectory, trustDomain: String, provided: (certificate: String, key: String)?) throws(ControlPlaneError) -> ControlPlaneKeys {
        ControlPlaneKeys(
            ca: try CAFiles.loadOrCreate(in: directory, trustDomain: trustDomain, provided: provided),
            jwtKey: try CAFiles.loadOrCreateSigningKey("jwt.key", in: directory),
            secrets: try SecretBox.loadOrCreate(keyFile: directory.secretsKeyPath),
            tokenKeys: FileTokenKeys(directory: directory)
        )
    }

    /// Of replicas starting together on an empty store, the first to write
    /// each key wins and all use it. The CA's certificate and key are one
    /// entry, so no replica can pair one replica's key with another's
    /// certificate.
    static func load(in vault: SealedKeyVault, trustDomain: String, provided: (certificate: String, key: String)?) async throws(ControlPlaneError) -> ControlPlaneKeys {
        let ca: TrustDomainCA
        if let provided {
            ca = try CAFiles.load(provided: provided, trustDomain: trustDomain)
        } else {
            let stored = try await vault.secret(Name.ca) { () throws(ControlPlaneError) in
                let generated: TrustDomainCA
                do throws(IdentityError) { generated = try TrustDomainCA.generate(trustDomain: trustDomain) } catch {
                    throw ControlPlaneError(.secrets, "cannot create the CA for trust domain \(trustDomain): \(error.reason)")
                }
                return try StoredCA(certificate: generated.certificatePEM, key: generated.privateKeyPEM).encoded()
            }
            ca = try StoredCA(decoding: stored).authority(trustDomain: trustDomain)
        }
        let jwtPEM = try await vault.secret(Name.jwt) { Data(P256.Signing.PrivateKey().pemRepresentation.utf8) }
        let secretsKey = try await vault.secret(Name.secrets) { SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) } }
        guard secretsKey.count == 32 else {
            throw ControlPlaneError(.secrets, "the stored credential key is not 32 bytes; the store is damaged")
        }
        let tokenKeys = VaultTokenKeys(vault: vault)
        _ = try await tokenKeys.load()
        return ControlPlaneKeys(
            ca: ca,
            jwtKey: try signingKey(jwtPEM, Name.jwt),
            secrets: SecretBox(key: SymmetricKey(data: secretsKey)),
            tokenKeys: tokenKeys
        )
    }

    static func signingKey(_ pem: Data, _ name: String) throws(ControlPlaneError) -> P256.Signing.PrivateKey {
        do {
            return try P256.Signing.PrivateKey(pemRepresentation: String(decoding: pem, as: UTF8.self))
        } catch {
            throw ControlPlaneError(.secrets, "the stored \(name) is not a PEM P-256 private key: \(error)")
        }
    }
}

/// The CA as one sealed entry: certificate and key together.
struct StoredCA: Codable {
    var certificate: String
    var key: String

    init(certificate: String, key: String) {
        self.certificate = certificate
        self.key = key
    }

    init(decoding data: Data) throws(ControlPlaneError) {
        do { self = try JSONDecoder().decode(StoredCA.self, from: data) } catch {
            throw ControlPlaneError(.secrets, "the stored CA cannot be read: \(error)")
        }
    }

    func encoded() throws(ControlPlaneError) -> Data {
        do { return try JSONEncoder().encode(self) } catch {
            throw ControlPlaneError(.internal, "cannot encode the CA: \(error)")
        }
    }

    func authority(trustDomain: String) throws(ControlPlaneError) -> TrustDomainCA {
        do {
            return try TrustDomainCA(trustDomain: trustDomain, certificatePEM: certificate, privateKeyPEM: key)
        } catch {
            throw ControlPlaneError(.secrets, "cannot use the stored CA for trust domain \(trustDomain): \(error.reason)")
        }
    }
}
