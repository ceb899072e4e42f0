import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import Synchronization
import TetherCore
import TetherIdentity
import TetherMeshIdentity
import X509

/// A proxy's first SVID: it generates its key here, sends a CSR with the
/// single-use join token over TLS, and trusts the control plane only if its
/// SVID (`spiffe://<td>/tether/control`) chains to a CA the operator gave —
/// a bundle file, or a CA public-key pin (`--ca-hash sha256:…`).
public enum IdentityBootstrap {
    public enum Trust: Sendable {
        case certificates([Certificate])
        case caHash(String)
    }

    public static func join(bootstrap: HostPort, token: String, trust: Trust, logger: Logger) async throws(ProxyError) -> WorkloadIdentity {
        let anchors: SPIFFEPeerVerifier.Anchors = { presented in
            guard let leaf = presented.first, case .success(let id) = SVIDValidator.spiffeID(of: leaf) else { return nil }
            switch trust {
            case .certificates(let certificates):
                return TrustBundle(trustDomain: id.trustDomain, x509Authorities: certificates, jwtAuthorities: [])
            case .caHash(let pin):
                return presented.first { $0.publicKeyPin == pin }.map { TrustBundle(trustDomain: id.trustDomain, x509Authorities: [$0], jwtAuthorities: []) }
            }
        }
        var verifier = SPIFFEPeerVerifier(role: "bootstrap-client", logger: logger, anchors: anchors) { id in
            id.path == ControlPlaneIdentity.path ? nil : "the bootstrap server is \(id), not a Tether control plane (…\(ControlPlaneIdentity.path))"
        }
        let rejection = Mutex<SVIDRejection?>(nil)
        verifier.onReject = { reason in rejection.withLock { $0 = reason } }
        let key = P256.Signing.PrivateKey()
        let response: Tether_Identity_V1_X509SVIDResponse
        do {
            let transport = try HTTP2ClientTransport.Posix(
                target: bootstrap.host.contains(":") ? .ipv6(address: bootstrap.host, port: bootstrap.port) : .ipv4(address: bootstrap.host, port: bootstrap.port),
                transportSecurity: try MeshTLS.client(identity: nil, serverVerifier: verifier, bundle: TrustBundle(trustDomain: "", x509Authorities: [], jwtAuthorities: [])),
                config: .defaults { $0.backoff.max = .seconds(2) }
            )
            response = try await withGRPCClient(transport: transport) { client in
                // The join token names the SPIFFE ID; the CSR carries only the key.
                var request = Tether_Identity_V1_JoinRequest()
                request.joinToken = token
                request.csr = Data(try X509SVID.certificateSigningRequest(for: nil, key: key))
                var options = CallOptions.defaults
                options.timeout = .seconds(15)
                return try await Tether_Identity_V1_Bootstrap.Client(wrapping: client).join(request, options: options)
            }
        } catch let error as RPCError {
            if let reason = rejection.withLock({ $0 }) {
                throw ProxyError(.identity, "bootstrap at \(bootstrap) failed: the server is not trusted: \(reason.reason); check --trust-bundle / --ca-hash")
            }
            throw ProxyError(.identity, "bootstrap at \(bootstrap) failed: \(error.message) (\(error.code))")
        } catch {
            throw ProxyError(.identity, "bootstrap at \(bootstrap) failed: \(error)")
        }
        let identity = try await IdentityResponse.identity(from: response, key: key, expected: nil)
        let trusted = switch trust {
        case .certificates(let certificates): identity.bundle.x509Authorities.contains { certificates.contains($0) }
        case .caHash(let pin): identity.bundle.x509Authorities.contains { $0.publicKeyPin == pin }
        }
        guard trusted else {
            throw ProxyError(.identity, "the control plane's bundle does not contain the CA this proxy was told to trust; check --trust-bundle / --ca-hash")
        }
        return identity
    }
}
