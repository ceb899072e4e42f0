import Crypto
import Foundation
import Logging
import ServiceLifecycle
import TetherIdentity

#if canImport(Glibc)
import Glibc
#endif

/// The token service's signing keys, rotated in stages so no verifier is
/// ever surprised: the *next* key is published in the JWK Set a whole
/// period before it signs, and the *previous* one stays published a whole
/// period after it stopped (longer than any token it signed lives: `ttl`
/// is at most 24 h). Files in the data directory, each 0600:
/// `token-previous.key`, `token.key` (signing), `token-next.key`.
struct TokenSigningKeys {
    var previous: P256.Signing.PrivateKey?
    var current: P256.Signing.PrivateKey
    var next: P256.Signing.PrivateKey
    /// When `current` began signing (its file's modification time).
    var since: Date

    static let files = (previous: "token-previous.key", current: "token.key", next: "token-next.key")

    /// Loads the keys, creating what is missing. After a crash in the middle
    /// of a rotation, a missing current key is the next one promoted.
    static func load(in directory: DataDirectory) throws(ControlPlaneError) -> TokenSigningKeys {
        let path = { (name: String) in "\(directory.path)/\(name)" }
        if !FileManager.default.fileExists(atPath: path(files.current)), FileManager.default.fileExists(atPath: path(files.next)) {
            guard rename(path(files.next), path(files.current)) == 0 else {
                throw ControlPlaneError(.secrets, "cannot promote \(path(files.next)): \(String(cString: strerror(errno)))")
            }
        }
        let current = try CAFiles.loadOrCreateSigningKey(files.current, in: directory)
        let next = try CAFiles.loadOrCreateSigningKey(files.next, in: directory)
        let previous: P256.Signing.PrivateKey? = FileManager.default.fileExists(atPath: path(files.previous))
            ? try CAFiles.loadOrCreateSigningKey(files.previous, in: directory) : nil
        let since = (try? FileManager.default.attributesOfItem(atPath: path(files.current))[.modificationDate] as? Date) ?? Date()
        return TokenSigningKeys(previous: previous, current: current, next: next, since: since)
    }

    /// previous ← current ← next ← a new key; on disk first, so a restart
    /// picks up exactly this state.
    static func rotate(in directory: DataDirectory) throws(ControlPlaneError) -> TokenSigningKeys {
        let path = { (name: String) in "\(directory.path)/\(name)" }
        for (from, to) in [(files.current, files.previous), (files.next, files.current)] {
            guard rename(path(from), path(to)) == 0 else {
                throw ControlPlaneError(.secrets, "cannot rotate \(path(from)) to \(path(to)): \(String(cString: strerror(errno)))")
            }
        }
        // The promoted key starts its period now.
        utimes(path(files.current), nil)
        return try load(in: directory)
    }

    /// The issuer signing with `current` and publishing all three.
    func issuer(url: String) async throws(IdentityError) -> AccessTokenIssuer {
        try await AccessTokenIssuer(issuer: url, key: current, alsoPublished: [previous, next].compactMap { $0?.publicKey })
    }
}

/// Rotates the token service's keys every `period`, counted from when the
/// current key began signing (so restarts do not postpone it), and hands
/// each new issuer to the token service.
struct TokenKeyRotator: Service {
    let directory: DataDirectory
    let period: Duration
    let issuerURL: String
    let service: TokenService
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled {
            let since = try TokenSigningKeys.load(in: directory).since
            let elapsed = Date().timeIntervalSince(since)
            let wait = max(0, Double(period.components.seconds) - elapsed)
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(wait)) }
            } catch {
                return
            }
            let keys = try TokenSigningKeys.rotate(in: directory)
            service.use(try await keys.issuer(url: issuerURL))
            logger.notice("rotated the token signing key", metadata: ["tether.token.kid": "\(JWTSVIDIssuer.thumbprint(keys.current.publicKey))"])
        }
    }
}
