import NIOCertificateReloading
import NIOSSL
import TetherAdminHTTP
import TetherMeshIdentity

/// The token service's TLS: the control plane's own SVID, and a client
/// certificate that is optional — MCP servers fetch the JWK Set without
/// one — but, when presented, verified like on the xDS port. Token exchange
/// itself requires it.
enum TokenServiceTLS {
    static func make(identity: WorkloadIdentityPublisher, verifier: SPIFFEPeerVerifier) throws -> LocalHTTPServer.TLS {
        var configuration = try TLSConfiguration.makeServerConfiguration(certificateReloader: SVIDCertificateReloader { identity.current.svid })
        configuration.certificateVerification = .optionalVerification
        configuration.trustRoots = .certificates(try identity.current.bundle.x509Authorities.map { try NIOSSLCertificate(bytes: $0.derBytes, format: .der) })
        configuration.applicationProtocols = ["http/1.1"]
        configuration.harden()
        return LocalHTTPServer.TLS(context: try NIOSSLContext(configuration: configuration), verify: verifier.callback)
    }
}
