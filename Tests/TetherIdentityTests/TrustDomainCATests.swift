import Crypto
import Foundation
import SwiftASN1
import Testing
import TetherCore
@testable import TetherIdentity
import X509

@Suite("Trust domain CA and X.509-SVIDs")
struct TrustDomainCATests {
    let ca = try! TrustDomainCA.generate(trustDomain: "example.org")
    let triage = try! SPIFFEID("spiffe://example.org/agent/triage")

    @Test func theCAIsASigningCertificatePerTheStandard() throws {
        let certificate = ca.certificate
        #expect(try certificate.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 1))
        #expect(certificate.extensions[oid: .X509ExtensionID.basicConstraints]?.critical == true)
        let usage = try #require(try certificate.extensions.keyUsage)
        #expect(usage.keyCertSign && usage.cRLSign)
        #expect(certificate.extensions[oid: .X509ExtensionID.keyUsage]?.critical == true)
        // A signing certificate may carry the trust domain's ID, never a path.
        #expect(try SVIDValidator.spiffeID(of: certificate).get().description == "spiffe://example.org")
        #expect(certificate.publicKey == Certificate.PublicKey(try #require(P256.Signing.PublicKey(certificate.publicKey))))
    }

    @Test func issuedSVIDsSatisfyEveryX509SVIDRule() throws {
        let key = P256.Signing.PrivateKey()
        let now = Date()
        let svid = try ca.issue(publicKey: Certificate.PublicKey(key.publicKey), for: triage, ttl: 3600, now: now)

        // Exactly one URI SAN: the SPIFFE ID.
        let names = Array(try #require(try svid.extensions.subjectAlternativeNames))
        #expect(names == [.uniformResourceIdentifier("spiffe://example.org/agent/triage")])
        // Leaf: cA=false, critical.
        #expect(try svid.extensions.basicConstraints == .notCertificateAuthority)
        #expect(svid.extensions[oid: .X509ExtensionID.basicConstraints]?.critical == true)
        // keyUsage: critical, digitalSignature, no keyCertSign/cRLSign.
        let usage = try #require(try svid.extensions.keyUsage)
        #expect(usage.digitalSignature && !usage.keyCertSign && !usage.cRLSign)
        #expect(svid.extensions[oid: .X509ExtensionID.keyUsage]?.critical == true)
        // EKU: serverAuth and clientAuth.
        let eku = Array(try #require(try svid.extensions.extendedKeyUsage))
        #expect(Set(eku) == [.serverAuth, .clientAuth])
        // Random serial of at least 64 bits, positive.
        #expect(svid.serialNumber.bytes.count >= 8)
        #expect(svid.serialNumber.bytes.first! & 0x80 == 0)
        // Backdated, and the requested lifetime.
        #expect(abs(svid.notValidBefore.timeIntervalSince(now) + TrustDomainCA.backdate) < 1)
        #expect(abs(svid.notValidAfter.timeIntervalSince(now) - 3600) < 1)
        // Signed by the CA, with key identifiers linking them.
        #expect(svid.issuer == ca.certificate.subject)
        #expect(try svid.extensions.authorityKeyIdentifier?.keyIdentifier == ca.certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
        #expect(ca.certificate.publicKey.isValidSignature(svid.signature, for: svid))
        #expect(svid.publicKey == Certificate.PublicKey(key.publicKey))
        // Two SVIDs never share a serial.
        let other = try ca.issue(publicKey: Certificate.PublicKey(key.publicKey), for: triage)
        #expect(other.serialNumber != svid.serialNumber)
    }

    @Test func anSVIDNeverOutlivesItsCA() throws {
        let shortCA = try TrustDomainCA.generate(trustDomain: "example.org", validity: 60)
        let svid = try shortCA.issue(publicKey: Certificate.PublicKey(P256.Signing.PrivateKey().publicKey), for: triage, ttl: 3600)
        #expect(svid.notValidAfter == shortCA.certificate.notValidAfter)
    }

    @Test func issuanceIsRefusedOutsideTheTrustDomain() throws {
        let key = Certificate.PublicKey(P256.Signing.PrivateKey().publicKey)
        #expect(throws: IdentityError.self) { try ca.issue(publicKey: key, for: try SPIFFEID("spiffe://other.org/agent")) }
        #expect(throws: IdentityError.self) { try ca.issue(publicKey: key, for: try SPIFFEID("spiffe://example.org")) }
    }

    @Test func csrsAreCheckedForTheirSignatureAndIdentity() throws {
        let key = P256.Signing.PrivateKey()
        let csr = try CertificateSigningRequest(
            version: .v1,
            subject: DistinguishedName { CommonName("triage") },
            privateKey: Certificate.PrivateKey(key),
            attributes: CertificateSigningRequest.Attributes([
                .init(ExtensionRequest(extensions: Certificate.Extensions { SubjectAlternativeNames([.uniformResourceIdentifier(triage.description)]) }))
            ])
        )
        let svid = try ca.issue(csr: csr, for: triage)
        #expect(try SVIDValidator.spiffeID(of: svid).get() == triage)
        // A CSR asking for another identity than the token's is refused.
        #expect(throws: IdentityError.self) { try ca.issue(csr: csr, for: try SPIFFEID("spiffe://example.org/agent/other")) }
    }
}

@Suite("Peer certificate validation")
struct SVIDValidatorTests {
    static let ca = try! TrustDomainCA.generate(trustDomain: "example.org")
    static let foreignCA = try! TrustDomainCA.generate(trustDomain: "example.org")
    static let otherDomain = try! TrustDomainCA.generate(trustDomain: "other.org")
    static let id = "spiffe://example.org/agent/triage"

    var validator: SVIDValidator { SVIDValidator(trustDomain: "example.org", bundle: [Self.ca.certificate]) }

    @Test func aValidSVIDIsAccepted() async throws {
        let svid = try Self.ca.issue(publicKey: Certificate.PublicKey(P256.Signing.PrivateKey().publicKey), for: try SPIFFEID(Self.id))
        #expect(try await validator.validate(chain: [svid]).get().description == Self.id)
    }

    struct BadCase: Sendable, CustomTestStringConvertible {
        var name: String
        var code: SVIDRejection.Code
        var make: @Sendable () throws -> Certificate
        var testDescription: String { name }
    }

    static let badCases: [BadCase] = [
        BadCase(name: "wrong trust domain", code: .wrongTrustDomain) {
            try otherDomain.issue(publicKey: freshKey(), for: try SPIFFEID("spiffe://other.org/agent/triage"))
        },
        BadCase(name: "expired", code: .expired) {
            try ca.issue(publicKey: freshKey(), for: try SPIFFEID(id), ttl: 60, now: Date() - 3600)
        },
        BadCase(name: "not yet valid", code: .notYetValid) {
            try ca.issue(publicKey: freshKey(), for: try SPIFFEID(id), ttl: 3600, now: Date() + 600)
        },
        BadCase(name: "two URI SANs", code: .multipleURISANs) {
            try forge(sans: [.uniformResourceIdentifier(id), .uniformResourceIdentifier("spiffe://example.org/agent/other")])
        },
        BadCase(name: "no URI SAN", code: .noURISAN) {
            try forge(sans: [.dnsName("triage.example.org")])
        },
        BadCase(name: "leaf with cA=true", code: .leafIsCA) {
            try forge(basicConstraints: .isCertificateAuthority(maxPathLength: nil))
        },
        BadCase(name: "missing keyUsage", code: .missingKeyUsage) {
            try forge(keyUsage: nil)
        },
        BadCase(name: "keyUsage that may sign certificates", code: .badKeyUsage) {
            try forge(keyUsage: KeyUsage(digitalSignature: true, keyCertSign: true))
        },
        BadCase(name: "signed by an unknown CA", code: .untrusted) {
            try foreignCA.issue(publicKey: freshKey(), for: try SPIFFEID(id))
        },
        BadCase(name: "non-SPIFFE URI", code: .notSPIFFE) {
            try forge(sans: [.uniformResourceIdentifier("https://example.org/agent/triage")])
        },
    ]

    @Test("bad peer certificates are rejected with their reason", arguments: badCases)
    func rejected(_ testCase: BadCase) async throws {
        let certificate = try testCase.make()
        let result = await validator.validate(chain: [certificate])
        guard case .failure(let rejection) = result else {
            Issue.record("\(testCase.name) was accepted")
            return
        }
        #expect(rejection.code == testCase.code, "\(rejection.reason)")
        #expect(!rejection.reason.isEmpty)
    }

    @Test func noCertificateIsRejected() async {
        guard case .failure(let rejection) = await validator.validate(chain: []) else {
            Issue.record("an empty chain was accepted")
            return
        }
        #expect(rejection.code == .noCertificate)
    }

    static func freshKey() -> Certificate.PublicKey {
        Certificate.PublicKey(P256.Signing.PrivateKey().publicKey)
    }

    /// A leaf signed by the real CA but breaking one rule.
    static func forge(
        sans: [GeneralName] = [.uniformResourceIdentifier(id)],
        basicConstraints: BasicConstraints = .notCertificateAuthority,
        keyUsage: KeyUsage? = KeyUsage(digitalSignature: true)
    ) throws -> Certificate {
        let extensions = try Certificate.Extensions {
            Critical(basicConstraints)
            if let keyUsage { Critical(keyUsage) }
            try ExtendedKeyUsage([.serverAuth, .clientAuth])
            SubjectAlternativeNames(sans)
        }
        return try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: freshKey(),
            notValidBefore: Date() - 10,
            notValidAfter: Date() + 3600,
            issuer: ca.certificate.subject,
            subject: DistinguishedName { OrganizationName("Tether") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: ca.privateKey
        )
    }
}

@Suite("Certificate serial numbers as operators read them")
struct SerialNumberTextTests {
    @Test func leadingZerosOfEachByteAreKeptAsOpenSSLPrintsThem() {
        let serial = Certificate.SerialNumber(bytes: [0x46, 0x06, 0xb3, 0x00, 0x0f])
        #expect(serial.openSSLText == "46:06:b3:00:0f")
    }
}
