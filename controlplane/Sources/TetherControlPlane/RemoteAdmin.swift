import Foundation
import Logging
import TetherAdminHTTP
import TetherCore
import TetherIdentity
import X509

/// The admin API over TCP, for operators on other machines and for
/// replicas behind one address: TLS with the control plane's SVID, a client
/// X.509-SVID required (verified against the trust domain's bundle, revoked
/// identities refused at the handshake), and then an allow-list of operator
/// SPIFFE IDs — a valid SVID of some workload is not an operator. The
/// caller's SPIFFE ID is the author of what it changes.
///
/// An operator gets its SVID like a proxy (`tether-control token create
/// --spiffe-id spiffe://TD/operator/NAME`, then `tether-control operator
/// enroll`) and renews it here (`POST /v1/operator/svid`) before it expires.
struct RemoteAdmin: Sendable {
    let api: AdminAPI
    let identity: IdentityService
    let operators: OperatorAllowList

    func handle(_ request: AdminRequest) async -> AdminResponse {
        let caller: SPIFFEID
        do {
            guard let der = request.peerCertificate else {
                throw ControlPlaneError(.permissionDenied, "the admin endpoint needs an operator's client certificate")
            }
            guard case .success(let id) = SVIDValidator.spiffeID(of: try Certificate(derEncoded: der)) else {
                throw ControlPlaneError(.permissionDenied, "the client certificate is not an X.509-SVID")
            }
            caller = id
        } catch let error as ControlPlaneError {
            return AdminAPI.failure(error)
        } catch {
            return AdminAPI.failure(ControlPlaneError(.permissionDenied, "the client certificate cannot be read: \(error)"))
        }
        guard operators.permits(caller) else {
            return AdminAPI.failure(ControlPlaneError(.permissionDenied, "\(caller) is not an operator of this control plane; the operator list (--operator) decides who is"))
        }
        if request.method == "POST", request.path == "/v1/operator/svid" {
            return await renew(request, for: caller)
        }
        return await api.handle(request, author: caller.description)
    }

    /// A new SVID for the calling operator, over the key of its CSR.
    private func renew(_ request: AdminRequest, for caller: SPIFFEID) async -> AdminResponse {
        do throws(ControlPlaneError) {
            let body: AdminProtocol.SVIDRequest
            do { body = try AdminProtocol.decoder.decode(AdminProtocol.SVIDRequest.self, from: request.body) } catch {
                throw ControlPlaneError(.badRequest, "the request body is not a valid SVIDRequest: \(error)")
            }
            guard let csr = Data(base64Encoded: body.csr) else {
                throw ControlPlaneError(.badRequest, "csr is not base64 DER")
            }
            let result = try await identity.renew(csrDER: Array(csr), for: caller)
            return AdminAPI.success(AdminProtocol.SVIDResponse(
                certificateChain: [Data(result.svid.derBytes).base64EncodedString()], spiffeBundle: result.bundle.spiffeBundleJSON
            ))
        } catch {
            return AdminAPI.failure(error)
        }
    }
}

/// Who may use the remote admin endpoint: exact SPIFFE IDs, or a path
/// prefix ending in `/*` (`spiffe://example.org/operator/*`).
public struct OperatorAllowList: Sendable, Hashable {
    public let entries: [String]

    public init(_ entries: [String], trustDomain: String) throws(ControlPlaneError) {
        for entry in entries {
            let id = entry.hasSuffix("/*") ? String(entry.dropLast(2)) : entry
            let parsed: SPIFFEID
            do { parsed = try SPIFFEID(id) } catch {
                throw ControlPlaneError(.badRequest, "--operator \(entry) is not a SPIFFE ID (or one ending in /*): it \(error.reason)")
            }
            guard parsed.trustDomain == trustDomain else {
                throw ControlPlaneError(.badRequest, "--operator \(entry) is not in trust domain \(trustDomain)")
            }
        }
        self.entries = entries
    }

    func permits(_ id: SPIFFEID) -> Bool {
        let text = id.description
        return entries.contains { entry in
            entry.hasSuffix("/*") ? text.hasPrefix(entry.dropLast(1)) : text == entry
        }
    }
}
