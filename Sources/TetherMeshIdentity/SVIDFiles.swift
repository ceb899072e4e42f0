import Crypto
import Foundation
import SwiftASN1
import TetherIdentity
import X509

/// A workload's SVID on disk — a proxy's, so a restart needs no new join
/// token, or an operator's for the remote admin endpoint:
/// `svid.pem` (chain), `svid.key` (0600, the key this process generated),
/// `bundle.json` (the trust domain's SPIFFE bundle).
public struct SVIDFiles: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    var chainPath: String { "\(directory)/svid.pem" }
    var keyPath: String { "\(directory)/svid.key" }
    var bundlePath: String { "\(directory)/bundle.json" }

    /// Key first: a crash between the writes leaves a key without its
    /// certificate, which `load` refuses, never a certificate with another key.
    public func save(_ identity: WorkloadIdentity) throws(IdentityError) {
        try AtomicFile.write(Data(identity.svid.privateKeyPEM.utf8), to: keyPath, mode: 0o600)
        try AtomicFile.write(Data(identity.svid.chainPEM.utf8), to: chainPath, mode: 0o644)
        try AtomicFile.write(Data(identity.bundle.spiffeBundleJSON.utf8), to: bundlePath, mode: 0o644)
    }

    /// The saved identity, or nil when there is none.
    public func load() throws(IdentityError) -> WorkloadIdentity? {
        let manager = FileManager.default
        guard manager.fileExists(atPath: chainPath), manager.fileExists(atPath: keyPath), manager.fileExists(atPath: bundlePath) else { return nil }
        do {
            let chain = try PEMDocument.parseMultiple(pemString: try String(contentsOfFile: chainPath, encoding: .utf8)).map { try Certificate(pemDocument: $0) }
            let key = try P256.Signing.PrivateKey(pemRepresentation: try String(contentsOfFile: keyPath, encoding: .utf8))
            let svid = try X509SVID(chain: chain, privateKey: key)
            let bundle = try TrustBundle(trustDomain: svid.id.trustDomain, spiffeBundleJSON: try String(contentsOfFile: bundlePath, encoding: .utf8))
            return WorkloadIdentity(svid: svid, bundle: bundle)
        } catch {
            throw IdentityError(.storage, "the saved SVID in \(directory) cannot be used (\(error)); remove svid.pem, svid.key and bundle.json and bootstrap again with a new join token")
        }
    }
}
