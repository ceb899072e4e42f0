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

/// Where the token signing keys live, and the one way they change.
protocol TokenKeyStore: Sendable {
    func load() async throws(ControlPlaneError) -> TokenSigningKeys
    /// Rotates `keys` — unless another replica already rotated them, in which
    /// case nothing changes — and returns the keys now in force.
    func rotate(_ keys: TokenSigningKeys) async throws(ControlPlaneError) -> TokenSigningKeys
}

/// The files beside SQLite; one process owns the data directory.
struct FileTokenKeys: TokenKeyStore {
    let directory: DataDirectory

    func load() async throws(ControlPlaneError) -> TokenSigningKeys {
        try TokenSigningKeys.load(in: directory)
    }

    func rotate(_ keys: TokenSigningKeys) async throws(ControlPlaneError) -> TokenSigningKeys {
        try TokenSigningKeys.rotate(in: directory)
    }
}

/// One sealed entry in the shared store; rotation is a compare-and-swap, so
/// of replicas that wake at the same due time exactly one rotates.
struct VaultTokenKeys: TokenKeyStore {
    let vault: SealedKeyVault

    struct Stored: Codable, Equatable {
        var previous: String?
        var current: String
        var next: String
        var since: Date

        init(_ keys: TokenSigningKeys) {
            previous = keys.previous?.pemRepresentation
            current = keys.current.pemRepresentation
            next = keys.next.pemRepresentation
            since = keys.since
        }

        func keys() throws(ControlPlaneError) -> TokenSigningKeys {
            let name = ControlPlaneKeys.Name.tokenKeys
            return TokenSigningKeys(
                previous: try previous.map { pem throws(ControlPlaneError) in try ControlPlaneKeys.signingKey(Data(pem.utf8), name) },
                current: try ControlPlaneKeys.signingKey(Data(current.utf8), name),
                next: try ControlPlaneKeys.signingKey(Data(next.utf8), name),
                since: since
            )
        }

        func encoded() throws(ControlPlaneError) -> Data {
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .secondsSince1970
            do { return try encoder.encode(self) } catch { throw ControlPlaneError(.internal, "cannot encode the token keys: \(error)") }
        }

        static func decode(_ data: Data) throws(ControlPlaneError) -> Stored {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .secondsSince1970
            do { return try decoder.decode(Stored.self, from: data) } catch { throw ControlPlaneError(.secrets, "the stored token signing keys cannot be read: \(error)") }
        }
    }

    func load() async throws(ControlPlaneError) -> TokenSigningKeys {
        let data = try await vault.secret(ControlPlaneKeys.Name.tokenKeys) { () throws(ControlPlaneError) in
            try Stored(TokenSigningKeys(previous: nil, current: P256.Signing.PrivateKey(), next: P256.Signing.PrivateKey(), since: Date())).encoded()
        }
        return try Stored.decode(data).keys()
    }

    func rotate(_ keys: TokenSigningKeys) async throws(ControlPlaneError) -> TokenSigningKeys {
        let rotated = TokenSigningKeys(previous: keys.current, current: keys.next, next: P256.Signing.PrivateKey(), since: Date())
        _ = try await vault.replace(ControlPlaneKeys.Name.tokenKeys, old: try Stored(keys).encoded(), new: try Stored(rotated).encoded())
        return try await load()
    }
}

/// Rotates the token service's keys every `period`, counted from when the
/// current key began signing (so restarts do not postpone it), and hands
/// each new issuer to the token service.
struct TokenKeyRotator: Service {
    let keys: any TokenKeyStore
    let period: Duration
    let issuerURL: String
    let service: TokenService
    let logger: Logger

    /// A store that is away at rotation time postpones the rotation (the
    /// current key keeps signing) rather than stopping the control plane.
    func run() async throws {
        while !Task.isCancelled {
            var wait: Double = 30
            var due: TokenSigningKeys?
            do {
                let current = try await keys.load()
                wait = max(0, Double(period.components.seconds) - Date().timeIntervalSince(current.since))
                due = current
            } catch {
                logger.warning("cannot read the token signing keys; retrying in 30s", metadata: ["error": "\(error.message)"])
            }
            let delay = Duration.seconds(wait)
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
            } catch {
                return
            }
            guard let due else { continue }
            do {
                let rotated = try await keys.rotate(due)
                service.use(try await rotated.issuer(url: issuerURL))
                logger.notice("token signing key in force", metadata: ["tether.token.kid": "\(JWTSVIDIssuer.thumbprint(rotated.current.publicKey))"])
            } catch {
                logger.warning("cannot rotate the token signing keys; the current key keeps signing", metadata: ["error": "\(error)"])
            }
        }
    }
}
