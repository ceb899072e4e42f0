import Crypto
import Foundation
import Testing
@testable import TetherControlPlane
import TetherCore
import TetherIdentity
import X509

@Suite("Join tokens and SVID issuance")
struct IdentityServiceTests {
    let triage = try! SPIFFEID("spiffe://example.org/agent/triage")

    func service(_ plane: TestControlPlane) async throws -> IdentityService {
        let ca = try CAFiles.loadOrCreate(in: plane.directory, trustDomain: "example.org")
        let issuer = try await JWTSVIDIssuer(trustDomain: "example.org", key: try CAFiles.loadOrCreateSigningKey("jwt.key", in: plane.directory))
        return IdentityService(ca: ca, jwtIssuer: issuer, store: plane.store, svidTTL: 3600)
    }

    func csr(for id: SPIFFEID?) async throws -> [UInt8] {
        let key = P256.Signing.PrivateKey()
        let extensions = try Certificate.Extensions {
            if let id { SubjectAlternativeNames([.uniformResourceIdentifier(id.description)]) }
        }
        let request = try CertificateSigningRequest(
            version: .v1,
            subject: DistinguishedName { CommonName("proxy") },
            privateKey: Certificate.PrivateKey(key),
            attributes: CertificateSigningRequest.Attributes([.init(ExtensionRequest(extensions: extensions))])
        )
        return try request.serializeAsPEM().derBytes
    }

    @Test func aTokenIsRedeemedOnceForAnSVIDOfItsIdentity() async throws {
        let plane = try TestControlPlane()
        let identity = try await service(plane)
        let (token, expiresAt) = try await identity.createJoinToken(for: triage, ttl: 600, author: "test")
        #expect(token.hasPrefix("tjt."))
        #expect(expiresAt > Date())
        let result = try await identity.join(token: token, csrDER: try csr(for: triage))
        #expect(try SVIDValidator.spiffeID(of: result.svid).get() == triage)
        #expect(result.bundle.x509Authorities == [identity.ca.certificate])

        // Replay: refused.
        await #expect(throws: ControlPlaneError.self) { try await identity.join(token: token, csrDER: try csr(for: triage)) }
        do { _ = try await identity.join(token: token, csrDER: try csr(for: triage)) } catch let error as ControlPlaneError {
            #expect(error.code == .permissionDenied)
            #expect(error.message.contains("already used"))
        }
    }

    @Test func anExpiredTokenIsRefusedAndConsumed() async throws {
        let plane = try TestControlPlane()
        let identity = try await service(plane)
        let (token, _) = try await identity.createJoinToken(for: triage, ttl: 1, author: "test", now: Date() - 60)
        do {
            _ = try await identity.join(token: token, csrDER: try csr(for: triage))
            Issue.record("an expired token was accepted")
        } catch let error as ControlPlaneError {
            #expect(error.message.contains("expired"))
        }
        do {
            _ = try await identity.join(token: token, csrDER: try csr(for: triage))
            Issue.record("an expired token was accepted")
        } catch let error as ControlPlaneError {
            #expect(error.message.contains("already used"))
        }
    }

    @Test func aCSRForAnotherIdentityIsRefusedAndTheTokenIsSpent() async throws {
        let plane = try TestControlPlane()
        let identity = try await service(plane)
        let (token, _) = try await identity.createJoinToken(for: triage, author: "test")
        do {
            _ = try await identity.join(token: token, csrDER: try csr(for: try SPIFFEID("spiffe://example.org/agent/admin")))
            Issue.record("a CSR for another identity was accepted")
        } catch let error as ControlPlaneError {
            #expect(error.code == .permissionDenied)
            #expect(error.message.contains("join token is for spiffe://example.org/agent/triage"))
        }
        await #expect(throws: ControlPlaneError.self) { try await identity.join(token: token, csrDER: try csr(for: triage)) }
    }

    @Test func tokensAreStoredOnlyAsHashesAndIssuedCertificatesAreRecorded() async throws {
        let plane = try TestControlPlane()
        let identity = try await service(plane)
        let (token, _) = try await identity.createJoinToken(for: triage, author: "test")
        let result = try await identity.join(token: token, csrDER: try csr(for: nil))
        let bytes = plane.databaseBytes()
        #expect(bytes.range(of: Data(token.utf8)) == nil)
        #expect(bytes.range(of: Data(String(token.dropFirst(4)).utf8)) == nil)
        let serials = try await plane.store.pool.read { db in try String.fetchAll(db, sql: "SELECT serial FROM issued_certificates") }
        #expect(serials == [result.svid.serialNumber.openSSLText])
    }

    @Test func tokensAreOnlyForWorkloadsOfTheTrustDomain() async throws {
        let plane = try TestControlPlane()
        let identity = try await service(plane)
        await #expect(throws: ControlPlaneError.self) { try await identity.createJoinToken(for: try SPIFFEID("spiffe://other.org/agent"), author: "t") }
        await #expect(throws: ControlPlaneError.self) { try await identity.createJoinToken(for: try SPIFFEID("spiffe://example.org"), author: "t") }
        await #expect(throws: ControlPlaneError.self) { try await identity.createJoinToken(for: triage, ttl: 0, author: "t") }
    }

    @Test func theCAIsGeneratedOnceKeptPrivateAndBoundToItsTrustDomain() async throws {
        let plane = try TestControlPlane()
        let first = try CAFiles.loadOrCreate(in: plane.directory, trustDomain: "example.org")
        let again = try CAFiles.loadOrCreate(in: plane.directory, trustDomain: "example.org")
        #expect(first.certificate == again.certificate)
        await #expect(try permissions(plane.path + "/ca.key") == 0o600)
        #expect(throws: ControlPlaneError.self) { try CAFiles.loadOrCreate(in: plane.directory, trustDomain: "other.org") }
        // An operator-provided CA is used as given.
        let operatorCA = try TrustDomainCA.generate(trustDomain: "corp.example")
        let certificateFile = plane.path + "/op-ca.pem", keyFile = plane.path + "/op-ca.key"
        try operatorCA.certificatePEM.write(toFile: certificateFile, atomically: true, encoding: .utf8)
        try operatorCA.privateKeyPEM.write(toFile: keyFile, atomically: true, encoding: .utf8)
        let provided = try CAFiles.loadOrCreate(in: plane.directory, trustDomain: "corp.example", provided: (certificateFile, keyFile))
        #expect(provided.certificate == operatorCA.certificate)
    }

    @Test func aRevokedIdentityGetsNothingUntilUnrevokedAndItIsDurable() async throws {
        let plane = try TestControlPlane()
        let identity = try await service(plane)
        let (token, _) = try await identity.createJoinToken(for: triage, author: "test")
        try await identity.setRevoked(triage, revoked: true, author: "test", reason: "lost laptop")
        #expect(identity.revoked.current == [triage])
        await #expect(throws: ControlPlaneError.self) { try await identity.join(token: token, csrDER: try csr(for: nil)) }
        await #expect(throws: ControlPlaneError.self) { try await identity.renew(csrDER: try csr(for: triage), for: triage) }
        await #expect(throws: ControlPlaneError.self) { try await identity.createJoinToken(for: triage, author: "test") }
        await #expect(throws: ControlPlaneError.self) { try await identity.mintJWTSVID(for: triage, audience: ["x"]) }
        let stored = try await identity.revokedIdentities()
        #expect(stored.map(\.spiffeID) == [triage.description] && stored.first?.reason == "lost laptop" && stored.first?.revokedBy == "test")

        try await identity.setRevoked(triage, revoked: false, author: "test", reason: nil)
        #expect(identity.revoked.current.isEmpty)
        _ = try await identity.renew(csrDER: try csr(for: triage), for: triage)
    }
}
