import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import Synchronization
import Testing
import TetherCore
import TetherIdentity
@testable import TetherMeshIdentity
import X509

/// Answers with the caller's SPIFFE ID and certificate serial, as the
/// server's handshake saw them.
struct EchoPeer: Tether_Identity_V1_Identity.SimpleServiceProtocol {
    func renewX509SVID(request: Tether_Identity_V1_RenewX509SVIDRequest, context: ServerContext) async throws -> Tether_Identity_V1_X509SVIDResponse {
        throw RPCError(code: .unimplemented, message: "")
    }

    func mintJWTSVID(request: Tether_Identity_V1_MintJWTSVIDRequest, context: ServerContext) async throws -> Tether_Identity_V1_MintJWTSVIDResponse {
        let peer = try context.requirePeer()
        let serial = (context.transportSpecific as? HTTP2ServerTransport.Posix.Context)?.peerCertificate?.serialNumber.description ?? ""
        return .with {
            $0.spiffeID = peer.description
            $0.token = serial
        }
    }
}

@Suite("mTLS with the SPIFFE peer verifier")
struct MeshTLSTests {
    let ca = try! TrustDomainCA.generate(trustDomain: "example.org")
    let logger = Logger(label: "test")

    func identity(_ id: String, ca: TrustDomainCA? = nil, ttl: TimeInterval = 3600) throws -> WorkloadIdentity {
        let issuer = ca ?? self.ca
        let key = P256.Signing.PrivateKey()
        let leaf = try issuer.issue(publicKey: .init(key.publicKey), for: try SPIFFEID(id), ttl: ttl)
        return WorkloadIdentity(svid: try X509SVID(chain: [leaf], privateKey: key), bundle: TrustBundle(trustDomain: "example.org", x509Authorities: [self.ca.certificate], jwtAuthorities: []))
    }

    /// Runs a server presenting `server`, verifying clients with `authorize`,
    /// and calls it as `client`; returns what the server saw, or throws.
    func call(
        server: WorkloadIdentityPublisher, client: WorkloadIdentityPublisher,
        authorize: @escaping SPIFFEPeerVerifier.Authorizer = { _ in nil }, calls: Int = 1,
        between: @escaping @Sendable (Int) -> Void = { _ in }
    ) async throws -> [Tether_Identity_V1_MintJWTSVIDResponse] {
        let serverVerifier = SPIFFEPeerVerifier(role: "test-server", logger: logger, bundle: { server.current.bundle }, authorize: authorize)
        let grpcServer = GRPCServer(
            transport: .http2NIOPosix(address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: try MeshTLS.server(identity: server, clientVerifier: serverVerifier)),
            services: [EchoPeer()]
        )
        return try await withThrowingTaskGroup { group in
            group.addTask { try await grpcServer.serve() }
            defer { grpcServer.beginGracefulShutdown() }
            let port = try #require(try await grpcServer.listeningAddress?.ipv4?.port)
            var results: [Tether_Identity_V1_MintJWTSVIDResponse] = []
            for index in 0..<calls {
                between(index)
                let clientVerifier = SPIFFEPeerVerifier(role: "test-client", logger: logger, bundle: { client.current.bundle }, authorize: SPIFFEPeerVerifier.only(server.current.id))
                // A new client each time: a new connection, a new handshake.
                let transport = try HTTP2ClientTransport.Posix(
                    target: .ipv4(address: "127.0.0.1", port: port),
                    transportSecurity: try MeshTLS.client(identity: client, serverVerifier: clientVerifier, bundle: client.current.bundle)
                )
                results.append(try await withGRPCClient(transport: transport) { grpc in
                    var options = CallOptions.defaults
                    // Generous: a handshake on a loaded 2-core machine can take seconds.
                    options.timeout = .seconds(30)
                    return try await Tether_Identity_V1_Identity.Client(wrapping: grpc).mintJWTSVID(.init(), options: options)
                })
            }
            return results
        }
    }

    @Test func bothSidesLearnTheVerifiedPeer() async throws {
        let server = WorkloadIdentityPublisher(try identity("spiffe://example.org/tether/control"))
        let client = WorkloadIdentityPublisher(try identity("spiffe://example.org/agent/triage"))
        let seen = try await call(server: server, client: client)
        #expect(seen.first?.spiffeID == "spiffe://example.org/agent/triage")
    }

    @Test func aRotatedSVIDIsUsedByTheNextHandshake() async throws {
        let server = WorkloadIdentityPublisher(try identity("spiffe://example.org/tether/control"))
        let client = WorkloadIdentityPublisher(try identity("spiffe://example.org/agent/triage"))
        let first = client.current.svid.leaf.serialNumber.description
        let rotated = try identity("spiffe://example.org/agent/triage")
        let seen = try await call(server: server, client: client, calls: 2) { index in
            if index == 1 { client.publish(rotated) }
        }
        #expect(seen.map(\.token) == [first, rotated.svid.leaf.serialNumber.description])
    }

    /// A long-lived client (the proxy's identity client) whose connection
    /// the server ends presents, when it reconnects, the SVID current then.
    @Test func aLongLivedClientReconnectsWithTheRotatedSVID() async throws {
        let server = WorkloadIdentityPublisher(try identity("spiffe://example.org/tether/control"))
        let client = WorkloadIdentityPublisher(try identity("spiffe://example.org/agent/triage"))
        let serverVerifier = SPIFFEPeerVerifier(role: "test-server", logger: logger, bundle: { server.current.bundle })
        // Connections live 1 s: the server ends them, the client reconnects.
        let grpcServer = GRPCServer(
            transport: .http2NIOPosix(
                address: .ipv4(host: "127.0.0.1", port: 0),
                transportSecurity: try MeshTLS.server(identity: server, clientVerifier: serverVerifier),
                config: .defaults {
                    $0.connection.maxAge = .seconds(1)
                    $0.connection.maxGraceTime = .seconds(5)
                }
            ),
            services: [EchoPeer()]
        )
        let clientVerifier = SPIFFEPeerVerifier(role: "test-client", logger: logger, bundle: { client.current.bundle })
        try await withThrowingTaskGroup { group in
            group.addTask { try await grpcServer.serve() }
            defer { grpcServer.beginGracefulShutdown() }
            let port = try #require(try await grpcServer.listeningAddress?.ipv4?.port)
            let transport = try HTTP2ClientTransport.Posix(
                target: .ipv4(address: "127.0.0.1", port: port),
                transportSecurity: try MeshTLS.client(identity: client, serverVerifier: clientVerifier, bundle: client.current.bundle)
            )
            try await withGRPCClient(transport: transport) { grpc in
                var options = CallOptions.defaults
                options.timeout = .seconds(10)
                options.waitForReady = true
                let api = Tether_Identity_V1_Identity.Client(wrapping: grpc)
                // A call can meet a connection's GOAWAY (max age); the next one reconnects.
                func serialSeen(attempts: Int = 5) async throws -> String {
                    do {
                        return try await api.mintJWTSVID(.init(), options: options).token
                    } catch where attempts > 1 {
                        try await Task.sleep(for: .milliseconds(200))
                        return try await serialSeen(attempts: attempts - 1)
                    }
                }
                let before = try await serialSeen()
                #expect(before == client.current.svid.leaf.serialNumber.description)
                let rotated = try identity("spiffe://example.org/agent/triage")
                client.publish(rotated)
                try await Task.sleep(for: .seconds(2))
                let after = try await serialSeen()
                #expect(after == rotated.svid.leaf.serialNumber.description, "the reconnect presented the rotated SVID")
            }
        }
    }

    @Test func aClientFromAnotherCAIsRefusedWithItsReason() async throws {
        let server = WorkloadIdentityPublisher(try identity("spiffe://example.org/tether/control"))
        let stranger = try TrustDomainCA.generate(trustDomain: "example.org")
        let client = WorkloadIdentityPublisher(try identity("spiffe://example.org/agent/triage", ca: stranger))
        await #expect(throws: (any Error).self) { try await call(server: server, client: client) }
    }

    @Test func theAuthorizerHasTheLastWord() async throws {
        let server = WorkloadIdentityPublisher(try identity("spiffe://example.org/tether/control"))
        let client = WorkloadIdentityPublisher(try identity("spiffe://example.org/agent/triage"))
        let rejections = Mutex<[SVIDRejection]>([])
        var verifier = SPIFFEPeerVerifier(role: "test", logger: logger, bundle: { server.current.bundle }, authorize: SPIFFEPeerVerifier.only(try SPIFFEID("spiffe://example.org/agent/other")))
        verifier.onReject = { rejection in rejections.withLock { $0.append(rejection) } }
        let verdict = await verifier.verify(client.current.svid.chain)
        guard case .failure(let rejection) = verdict else { Issue.record("accepted"); return }
        #expect(rejection.code == .notAuthorized && rejection.reason.contains("agent/other"))
        await #expect(throws: (any Error).self) {
            try await call(server: server, client: client, authorize: { _ in "not on the list" })
        }
    }

    @Test func theServerMustBeWhoTheClientExpects() async throws {
        // The client only accepts .../tether/control; this server is an agent.
        let impostor = WorkloadIdentityPublisher(try identity("spiffe://example.org/agent/impostor"))
        let client = WorkloadIdentityPublisher(try identity("spiffe://example.org/agent/triage"))
        let verifier = SPIFFEPeerVerifier(role: "test", logger: logger, bundle: { client.current.bundle }, authorize: SPIFFEPeerVerifier.only(ControlPlaneIdentity.id(trustDomain: "example.org")))
        guard case .failure(let rejection) = await verifier.verify(impostor.current.svid.chain) else { Issue.record("accepted"); return }
        #expect(rejection.code == .notAuthorized)
    }
}

@Suite("Workload API message encoding")
struct WorkloadAPIMessagesTests {
    @Test func anIdentityRoundTripsThroughFetchX509SVIDsEncoding() throws {
        let root = try TrustDomainCA.generate(trustDomain: "example.org")
        let key = P256.Signing.PrivateKey()
        let leaf = try root.issue(publicKey: .init(key.publicKey), for: try SPIFFEID("spiffe://example.org/agent/triage"))
        let other = try TrustDomainCA.generate(trustDomain: "example.org")
        // A chain of two and a bundle of two: concatenated DER both ways.
        let identity = WorkloadIdentity(
            svid: try X509SVID(chain: [leaf, root.certificate], privateKey: key),
            bundle: TrustBundle(trustDomain: "example.org", x509Authorities: [root.certificate, other.certificate], jwtAuthorities: [])
        )
        let message = WorkloadAPIMessages.x509SVIDResponse(identity)
        #expect(message.svids.count == 1 && message.svids[0].spiffeID == "spiffe://example.org/agent/triage")
        let back = try WorkloadAPIMessages.identity(from: message)
        #expect(back.svid.chain == identity.svid.chain)
        #expect(back.bundle.x509Authorities == identity.bundle.x509Authorities)
        #expect(back.svid.privateKey.rawRepresentation == key.rawRepresentation)

        var truncated = message
        truncated.svids[0].x509Svid = message.svids[0].x509Svid.dropLast(5)
        #expect(throws: IdentityError.self) { try WorkloadAPIMessages.identity(from: truncated) }
        #expect(throws: IdentityError.self) { try WorkloadAPIMessages.identity(from: Workload_X509SVIDResponse()) }
    }
}
