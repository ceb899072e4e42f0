import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import Synchronization
import TetherCore
import TetherIdentity
import X509

/// A workload's first SVID — a proxy's, or an operator's for the remote
/// admin endpoint: it generates its key here, sends a CSR with the
/// single-use join token over TLS, and trusts the control plane only if its
/// SVID (`spiffe://<td>/tether/control`) chains to a CA the operator gave —
/// a bundle file, or a CA public-key pin (`--ca-hash sha256:…`).
public enum IdentityBootstrap {
    public enum Trust: Sendable {
        case certificates([Certificate])
        case caHash(String)
    }

    public static func join(bootstrap: HostPort, token: String, trust: Trust, logger: Logger) async throws(IdentityError) -> WorkloadIdentity {
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
                throw IdentityError(.invalidRequest, "bootstrap at \(bootstrap) failed: the server is not trusted: \(reason.reason); check the trust bundle / CA hash you gave")
            }
            throw IdentityError(.invalidRequest, "bootstrap at \(bootstrap) failed: \(error.message) (\(error.code))")
        } catch {
            throw IdentityError(.invalidRequest, "bootstrap at \(bootstrap) failed: \(error)")
        }
        let identity = try await IdentityResponse.identity(from: response, key: key, expected: nil)
        let trusted = switch trust {
        case .certificates(let certificates): identity.bundle.x509Authorities.contains { certificates.contains($0) }
        case .caHash(let pin): identity.bundle.x509Authorities.contains { $0.publicKeyPin == pin }
        }
        guard trusted else {
            throw IdentityError(.invalidRequest, "the control plane's bundle does not contain the CA this proxy was told to trust; check the trust bundle / CA hash you gave")
        }
        return identity
    }
}

/// Turns a Join or Renew answer into an identity, checking it before use:
/// the chain belongs to our key, names the expected SPIFFE ID, and verifies
/// against the bundle that came with it.
public enum IdentityResponse {
    public static func identity(from response: Tether_Identity_V1_X509SVIDResponse, key: P256.Signing.PrivateKey, expected: SPIFFEID?) async throws(IdentityError) -> WorkloadIdentity {
        let svid: X509SVID
        let bundle: TrustBundle
        do {
            let chain = try response.certificateChain.map { try Certificate(derEncoded: Array($0)) }
            svid = try X509SVID(chain: chain, privateKey: key)
            bundle = try TrustBundle(trustDomain: svid.id.trustDomain, spiffeBundleJSON: response.spiffeBundle)
        } catch {
            throw IdentityError(.invalidSVID, "the control plane sent an unusable SVID: \(error)")
        }
        if let expected, svid.id != expected {
            throw IdentityError(.wrongIdentity, "the control plane issued \(svid.id), expected \(expected)")
        }
        let validator = SVIDValidator(trustDomain: svid.id.trustDomain, bundle: bundle.x509Authorities)
        if case .failure(let rejection) = await validator.validate(chain: svid.chain) {
            throw IdentityError(.invalidSVID, "the SVID the control plane issued does not verify against its bundle: \(rejection.reason)")
        }
        return WorkloadIdentity(svid: svid, bundle: bundle)
    }
}
