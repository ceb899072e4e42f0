import GRPCNIOTransportHTTP2
import TetherIdentity

/// TLS settings for every Tether gRPC listener and client, so each one
/// presents the current SVID and verifies its peer with the one
/// `SPIFFEPeerVerifier` — never the system trust store, never hostnames
/// (SPIFFE peers are named by their URI SAN).
public enum MeshTLS {
    /// A listener presenting `identity`'s current SVID. With a verifier the
    /// peer must present an X.509-SVID that passes it (mTLS); without one
    /// it is server-authenticated TLS only (the bootstrap port).
    public static func server(identity: WorkloadIdentityPublisher, clientVerifier: SPIFFEPeerVerifier?) throws -> HTTP2ServerTransport.Posix.TransportSecurity {
        let reloader = SVIDCertificateReloader { identity.current.svid }
        let roots = trustRoots(identity.current.bundle)
        guard let clientVerifier else {
            return try .tls(certificateReloader: reloader)
        }
        return try .mTLS(certificateReloader: reloader) { config in
            config.trustRoots = roots
            config.customVerificationCallback = { certificates, promise in clientVerifier.callback(certificates, promise) }
        }
    }

    /// A client verifying the server with `serverVerifier`, presenting
    /// `identity`'s current SVID when given (mTLS).
    public static func client(identity: WorkloadIdentityPublisher?, serverVerifier: SPIFFEPeerVerifier, bundle: TrustBundle) throws -> HTTP2ClientTransport.Posix.TransportSecurity {
        let configure: (inout HTTP2ClientTransport.Posix.TransportSecurity.TLS) -> Void = { config in
            config.serverCertificateVerification = .noHostnameVerification
            config.trustRoots = trustRoots(bundle)
            config.customVerificationCallback = { certificates, promise in serverVerifier.callback(certificates, promise) }
        }
        guard let identity else {
            return .tls(configure: configure)
        }
        return try .mTLS(certificateReloader: SVIDCertificateReloader { identity.current.svid }, configure: configure)
    }

    /// The bundle's CAs as explicit roots: the transport's default would be
    /// the system store. (The verifier callback does the actual check, with
    /// the bundle current at handshake time.)
    static func trustRoots(_ bundle: TrustBundle) -> TLSConfig.TrustRootsSource {
        .certificates(bundle.x509Authorities.map { .bytes($0.derBytes, format: .der) })
    }
}
