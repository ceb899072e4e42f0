import GRPCCore
import GRPCNIOTransportHTTP2
import TetherCore
import TetherIdentity

extension ServerContext {
    /// The SPIFFE ID of the mTLS peer, whose chain the `SPIFFEPeerVerifier`
    /// already verified during the handshake; nil on a plaintext or
    /// server-only TLS connection.
    public var peerSPIFFEID: SPIFFEID? {
        guard let context = transportSpecific as? HTTP2ServerTransport.Posix.Context,
            let leaf = context.peerCertificate,
            case .success(let id) = SVIDValidator.spiffeID(of: leaf)
        else { return nil }
        return id
    }

    /// The verified peer, or Unauthenticated.
    public func requirePeer() throws(RPCError) -> SPIFFEID {
        guard let id = peerSPIFFEID else {
            throw RPCError(code: .unauthenticated, message: "this method needs an mTLS connection with an X.509-SVID of the trust domain")
        }
        return id
    }
}
