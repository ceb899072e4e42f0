import NIOCertificateReloading
import NIOSSL
import Synchronization
import TetherIdentity

/// Hands NIOSSL the current SVID on every new handshake: after a rotation,
/// new connections present the new certificate while open ones are left
/// untouched. The NIOSSL form of each SVID is built once and reused.
public final class SVIDCertificateReloader: CertificateReloader {
    private let current: @Sendable () -> X509SVID
    private let cache = Mutex<(serial: [UInt8], override: NIOSSLContextConfigurationOverride)?>(nil)

    public init(current: @escaping @Sendable () -> X509SVID) {
        self.current = current
    }

    public var sslContextConfigurationOverride: NIOSSLContextConfigurationOverride {
        let svid = current()
        let serial = Array(svid.leaf.serialNumber.bytes)
        if let cached = cache.withLock({ $0 }), cached.serial == serial { return cached.override }
        var override = NIOSSLContextConfigurationOverride()
        do {
            override.certificateChain = try svid.chain.map { .certificate(try NIOSSLCertificate(bytes: $0.derBytes, format: .der)) }
            override.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: svid.privateKeyPKCS8DER, format: .der))
        } catch {
            // An SVID we hold always converts; keep the previous one if not.
            return cache.withLock { $0?.override } ?? .noChanges
        }
        cache.withLock { $0 = (serial, override) }
        return override
    }
}
