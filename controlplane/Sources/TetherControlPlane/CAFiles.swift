import Crypto
import Foundation
import TetherIdentity

#if canImport(Glibc)
import Glibc
#endif

/// The trust domain's CA in the data directory: `ca.pem` and `ca.key`
/// (0600). Generated on first run; an operator's own CA or intermediate can
/// be given instead (`--ca-cert`, `--ca-key`). Restarting with another trust
/// domain than the stored CA's is refused rather than silently re-keying the
/// mesh.
public enum CAFiles {
    public static func loadOrCreate(in directory: DataDirectory, trustDomain: String, provided: (certificate: String, key: String)? = nil) throws(ControlPlaneError) -> TrustDomainCA {
        let certificatePath = "\(directory.path)/ca.pem", keyPath = "\(directory.path)/ca.key"
        if let provided { return try load(provided: provided, trustDomain: trustDomain) }
        do {
            if FileManager.default.fileExists(atPath: certificatePath) {
                var info = stat()
                guard stat(keyPath, &info) == 0, info.st_mode & 0o077 == 0 else {
                    throw ControlPlaneError(.secrets, "\(keyPath) is missing or readable by other users; run chmod 600 \(keyPath)")
                }
                return try TrustDomainCA(trustDomain: trustDomain, certificatePEM: try read(certificatePath), privateKeyPEM: try read(keyPath))
            }
            let ca = try TrustDomainCA.generate(trustDomain: trustDomain)
            try write(ca.privateKeyPEM, to: keyPath, mode: 0o600)
            try write(ca.certificatePEM, to: certificatePath, mode: 0o644)
            return ca
        } catch let error as ControlPlaneError {
            throw error
        } catch let error as IdentityError {
            throw ControlPlaneError(.secrets, "cannot use the CA for trust domain \(trustDomain): \(error.reason)")
        } catch {
            throw ControlPlaneError(.secrets, "cannot set up the CA: \(error)")
        }
    }

    /// An operator's own CA or intermediate (`--ca-cert`, `--ca-key`), given
    /// to every replica as files.
    public static func load(provided: (certificate: String, key: String), trustDomain: String) throws(ControlPlaneError) -> TrustDomainCA {
        do {
            return try TrustDomainCA(trustDomain: trustDomain, certificatePEM: try read(provided.certificate), privateKeyPEM: try read(provided.key))
        } catch let error as ControlPlaneError {
            throw error
        } catch {
            throw ControlPlaneError(.secrets, "cannot use the CA in \(provided.certificate) for trust domain \(trustDomain): \((error as? IdentityError)?.reason ?? "\(error)")")
        }
    }

    /// A P-256 signing key in the data directory (0600): `jwt.key` for
    /// JWT-SVIDs, `token.key` for the token service's access tokens. Kept
    /// across restarts so tokens already handed out keep verifying.
    public static func loadOrCreateSigningKey(_ name: String, in directory: DataDirectory) throws(ControlPlaneError) -> P256.Signing.PrivateKey {
        let path = "\(directory.path)/\(name)"
        if FileManager.default.fileExists(atPath: path) {
            var info = stat()
            guard stat(path, &info) == 0, info.st_mode & 0o077 == 0 else {
                throw ControlPlaneError(.secrets, "\(path) is readable by other users; run chmod 600 \(path)")
            }
            do {
                return try P256.Signing.PrivateKey(pemRepresentation: try read(path))
            } catch {
                throw ControlPlaneError(.secrets, "\(path) is not a PEM P-256 private key: \(error)")
            }
        }
        let key = P256.Signing.PrivateKey()
        try write(key.pemRepresentation, to: path, mode: 0o600)
        return key
    }

    static func read(_ path: String) throws(ControlPlaneError) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ControlPlaneError(.secrets, "cannot read \(path)")
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func write(_ text: String, to path: String, mode: mode_t) throws(ControlPlaneError) {
        try ExclusiveFile.create(Data(text.utf8), at: path, mode: mode)
    }
}
