import NIOCertificateReloading
import NIOSSL
import TetherAdminHTTP
import TetherMeshIdentity

/// TLS for the control plane's HTTPS listeners: its own SVID, and client
/// certificates verified like on the xDS port. The token service makes them
/// optional — MCP servers fetch the JWK Set without one, token exchange
/// itself requires one — and the remote admin endpoint requires them.
enum SVIDServerTLS {
    static func make(identity: WorkloadIdentityPublisher, verifier: SPIFFEPeerVerifier, clientCertificate: CertificateVerification) throws -> LocalHTTPServer.TLS {
        var configuration = try TLSConfiguration.makeServerConfiguration(certificateReloader: SVIDCertificateReloader { identity.current.svid })
        configuration.certificateVerification = clientCertificate
        configuration.trustRoots = .certificates(try identity.current.bundle.x509Authorities.map { try NIOSSLCertificate(bytes: $0.derBytes, format: .der) })
        configuration.applicationProtocols = ["http/1.1"]
        configuration.harden()
        return LocalHTTPServer.TLS(context: try NIOSSLContext(configuration: configuration), verify: verifier.callback)
    }
}
