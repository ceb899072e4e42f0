import Crypto
import Foundation
import GRPCCore
import SwiftProtobuf
import Testing
import TetherCore
import TetherIdentity
import TetherMeshIdentity
import TetherProxy
import X509

/// The Workload API through a real gRPC client on a real Unix socket.
@Suite("SPIFFE Workload API")
struct WorkloadAPIServiceTests {
    let audience = "spiffe://example.org/mcp/github"

    @Test func everyCallNeedsTheSecurityHeader() async throws {
        try await withWorkloadAPI { fixture in
            for metadata: Metadata in [[:], ["workload.spiffe.io": "True"], ["workload.spiffe.io": "1"]] {
                try await fixture.withClient { client in
                    var jwt = Workload_JWTSVIDRequest()
                    jwt.audience = [audience]
                    var validate = Workload_ValidateJWTSVIDRequest()
                    validate.audience = audience
                    validate.svid = "x.y.z"
                    let codes = [
                        await rpcErrorCode {
                            try await client.fetchX509SVID(.init(), metadata: metadata) { for try await _ in $0.messages { break } }
                        },
                        await rpcErrorCode {
                            try await client.fetchX509Bundles(.init(), metadata: metadata) { for try await _ in $0.messages { break } }
                        },
                        await rpcErrorCode { _ = try await client.fetchJWTSVID(jwt, metadata: metadata) },
                        await rpcErrorCode {
                            try await client.fetchJWTBundles(.init(), metadata: metadata) { for try await _ in $0.messages { break } }
                        },
                        await rpcErrorCode { _ = try await client.validateJWTSVID(validate, metadata: metadata) },
                    ]
                    #expect(codes == Array(repeating: .invalidArgument, count: 5), "metadata \(metadata)")
                }
            }
            // The message says what is missing.
            try await fixture.withClient { client in
                do {
                    _ = try await client.fetchJWTSVID(.init())
                    Issue.record("FetchJWTSVID without the header succeeded")
                } catch let error as RPCError {
                    #expect(error.message.contains("workload.spiffe.io"))
                }
            }
        }
    }

    @Test(arguments: [false, true])
    func fetchX509SVIDSendsTheIdentityAtOnce(intermediate: Bool) async throws {
        try await withWorkloadAPI(intermediate: intermediate) { fixture in
            let response = try await withTimeout("the first X509SVIDResponse") {
                try await fixture.withClient { client in
                    try await client.fetchX509SVID(.init(), metadata: securityHeader) { response in
                        for try await message in response.messages { return message }
                        throw TestFailure("the stream ended without a message")
                    }
                }
            }
            let current = fixture.identity.current
            #expect(response.svids.count == 1)
            #expect(response.crl.isEmpty && response.federatedBundles.isEmpty)
            let svid = try #require(response.svids.first)
            #expect(svid.spiffeID == "spiffe://example.org/agent/triage")
            #expect(svid.hint.isEmpty)

            let chain = try certificates(svid.x509Svid)
            #expect(chain.count == (intermediate ? 2 : 1), "leaf first, then the intermediates")
            #expect(chain == current.svid.chain)
            #expect(try uriSANs(chain[0]) == ["spiffe://example.org/agent/triage"])
            if intermediate {
                #expect(chain[1] == fixture.mesh.intermediates[0])
                #expect(chain[0].issuer == chain[1].subject)
            }

            // Unencrypted PKCS#8 (PrivateKeyInfo: version 0, then an
            // AlgorithmIdentifier), not SEC1 (version 1, then an OCTET STRING).
            let key = Array(svid.x509SvidKey)
            let body = key[1] == 0x81 ? key[3...] : key[2...]
            #expect(Array(body.prefix(4)) == [0x02, 0x01, 0x00, 0x30], "PKCS#8 PrivateKeyInfo")
            let privateKey = try P256.Signing.PrivateKey(derRepresentation: svid.x509SvidKey)
            #expect(chain[0].publicKey == Certificate.PublicKey(privateKey.publicKey), "the key belongs to the leaf")

            #expect(try certificates(svid.bundle) == [fixture.mesh.root], "the bundle holds the roots, not the intermediates")
        }
    }

    @Test func aRotationReachesTheOpenStream() async throws {
        try await withWorkloadAPI { fixture in
            let rotated = try fixture.mesh.identity()
            let (first, second) = try await withTimeout("the rotated SVID on the open stream") {
                try await fixture.withClient { client in
                    try await client.fetchX509SVID(.init(), metadata: securityHeader) { response in
                        var messages = response.messages.makeAsyncIterator()
                        let first = try await messages.next()
                        fixture.identity.publish(rotated)
                        let second = try await messages.next()
                        return (first, second)
                    }
                }
            }
            let firstLeaf = try certificates(try #require(first?.svids.first).x509Svid)[0]
            let secondLeaf = try certificates(try #require(second?.svids.first).x509Svid)[0]
            #expect(firstLeaf.serialNumber != secondLeaf.serialNumber)
            #expect(secondLeaf.serialNumber == rotated.svid.leaf.serialNumber)
            #expect(try P256.Signing.PrivateKey(derRepresentation: try #require(second?.svids.first).x509SvidKey).publicKey.rawRepresentation
                == rotated.svid.privateKey.publicKey.rawRepresentation)
        }
    }

    @Test func bundleStreamsResendOnlyWhenTheBundleChanges() async throws {
        try await withWorkloadAPI { fixture in
            let mesh = fixture.mesh
            let otherRoot = try TrustDomainCA.generate(trustDomain: TestMesh.trustDomain).certificate
            let otherKey = try await JWTSVIDIssuer(trustDomain: TestMesh.trustDomain, key: P256.Signing.PrivateKey()).authority
            var grown = mesh.bundle
            grown.x509Authorities.append(otherRoot)
            grown.jwtAuthorities.append(otherKey)
            let svidOnly = try mesh.identity()
            let bundleToo = try mesh.identity(bundle: grown)

            let (x509, jwt) = try await withTimeout("both bundle streams to see the new bundle") {
                try await fixture.withClient { client in
                    try await client.fetchX509Bundles(.init(), metadata: securityHeader) { x509Response in
                        try await client.fetchJWTBundles(.init(), metadata: securityHeader) { jwtResponse in
                            var x509Messages = x509Response.messages.makeAsyncIterator()
                            var jwtMessages = jwtResponse.messages.makeAsyncIterator()
                            let x509First = try #require(try await x509Messages.next())
                            let jwtFirst = try #require(try await jwtMessages.next())
                            // A new SVID with the same bundle sends nothing on
                            // these streams: the next message is the new bundle.
                            fixture.identity.publish(svidOnly)
                            fixture.identity.publish(bundleToo)
                            let x509Second = try #require(try await x509Messages.next())
                            let jwtSecond = try #require(try await jwtMessages.next())
                            return ([x509First, x509Second], [jwtFirst, jwtSecond])
                        }
                    }
                }
            }
            let key = "spiffe://example.org"
            #expect(x509.map { Array($0.bundles.keys) } == [[key], [key]])
            #expect(try certificates(try #require(x509[0].bundles[key])) == [mesh.root])
            #expect(try certificates(try #require(x509[1].bundles[key])) == [mesh.root, otherRoot])
            #expect(x509.allSatisfy { $0.crl.isEmpty })

            #expect(jwt.map { Array($0.bundles.keys) } == [[key], [key]])
            func kids(_ response: Workload_JWTBundlesResponse) throws -> [String] {
                let document = try JSONSerialization.jsonObject(with: try #require(response.bundles[key])) as? [String: Any]
                let keys = try #require(document?["keys"] as? [[String: Any]])
                #expect(keys.allSatisfy { $0["use"] as? String == "jwt-svid" && $0["kty"] as? String == "EC" }, "JWT keys only")
                return keys.compactMap { $0["kid"] as? String }
            }
            #expect(try kids(jwt[0]) == [mesh.issuer.kid])
            #expect(try kids(jwt[1]) == [mesh.issuer.kid, otherKey.kid])
        }
    }

    @Test func fetchJWTSVID() async throws {
        try await withWorkloadAPI { fixture in
            let id = fixture.mesh.id
            @Sendable func request(_ audience: [String], spiffeID: String = "") -> Workload_JWTSVIDRequest {
                var request = Workload_JWTSVIDRequest()
                request.audience = audience
                request.spiffeID = spiffeID
                return request
            }
            let response = try await fixture.withClient { client in
                #expect(await rpcErrorCode { _ = try await client.fetchJWTSVID(request([]), metadata: securityHeader) } == .invalidArgument)
                #expect(await rpcErrorCode { _ = try await client.fetchJWTSVID(request([""]), metadata: securityHeader) } == .invalidArgument)
                #expect(await rpcErrorCode {
                    _ = try await client.fetchJWTSVID(request([audience], spiffeID: "spiffe://example.org/agent/other"), metadata: securityHeader)
                } == .permissionDenied)
                #expect(await rpcErrorCode {
                    _ = try await client.fetchJWTSVID(request([audience], spiffeID: "not a spiffe id"), metadata: securityHeader)
                } == .invalidArgument)
                let explicit = try await client.fetchJWTSVID(request([audience], spiffeID: id.description), metadata: securityHeader)
                #expect(explicit.svids.map(\.spiffeID) == [id.description])
                return try await client.fetchJWTSVID(request([audience, "second"]), metadata: securityHeader)
            }
            let svid = try #require(response.svids.first)
            #expect(response.svids.count == 1)
            #expect(svid.spiffeID == id.description)
            let validator = JWTSVIDValidator(bundle: fixture.identity.current.bundle)
            let validated = try await validator.validate(svid.svid, audience: audience).get()
            #expect(validated.id == id)
            #expect(try await validator.validate(svid.svid, audience: "second").get().id == id)

            // Tokens never reach the logs.
            #expect(!fixture.logs.all.contains { $0.contains(svid.svid) || $0.contains(svid.svid.split(separator: ".")[2]) })
        }
    }

    @Test func aMintingFailureIsUnavailable() async throws {
        struct ControlPlaneDown: Error, CustomStringConvertible {
            var description: String { "the control plane is unreachable" }
        }
        try await withWorkloadAPI(mint: { _, _ in throw ControlPlaneDown() }) { fixture in
            try await fixture.withClient { client in
                var request = Workload_JWTSVIDRequest()
                request.audience = [audience]
                do {
                    _ = try await client.fetchJWTSVID(request, metadata: securityHeader)
                    Issue.record("FetchJWTSVID succeeded without a minter")
                } catch let error as RPCError {
                    #expect(error.code == .unavailable)
                    #expect(error.message.contains("the control plane is unreachable"))
                }
            }
        }
    }

    @Test func validateJWTSVID() async throws {
        try await withWorkloadAPI { fixture in
            let mesh = fixture.mesh
            let token = try await mesh.mint([audience])
            let stranger = try await JWTSVIDIssuer(trustDomain: TestMesh.trustDomain, key: P256.Signing.PrivateKey())
            let forged = try await stranger.mint(for: mesh.id, audience: [audience])
            let expired = try await mesh.issuer.mint(for: mesh.id, audience: [audience], ttl: 60, now: Date() - 120)
            @Sendable func request(_ svid: String, _ audience: String) -> Workload_ValidateJWTSVIDRequest {
                var request = Workload_ValidateJWTSVIDRequest()
                request.svid = svid
                request.audience = audience
                return request
            }
            try await fixture.withClient { client in
                let response = try await client.validateJWTSVID(request(token, audience), metadata: securityHeader)
                #expect(response.spiffeID == mesh.id.description)
                #expect(response.claims.fields["sub"]?.stringValue == mesh.id.description)
                // A single audience may travel as a string (RFC 7519, 4.1.3).
                let aud = try #require(response.claims.fields["aud"])
                #expect(aud.listValue.values.map(\.stringValue) == [audience] || aud.stringValue == audience, "\(aud)")
                let exp = try #require(response.claims.fields["exp"]?.numberValue)
                #expect(exp > Date().timeIntervalSince1970)
                #expect(response.claims.fields["iat"]?.numberValue != nil)

                for (svid, audience, what) in [
                    (token, "spiffe://example.org/mcp/other", "another audience"),
                    ("garbage", audience, "garbage"),
                    ("a.b.c", audience, "not JSON"),
                    (forged, audience, "a key not in the bundle"),
                    (expired, audience, "expired"),
                    ("", audience, "no token"),
                    (token, "", "no audience"),
                ] {
                    let code = await rpcErrorCode { _ = try await client.validateJWTSVID(request(svid, audience), metadata: securityHeader) }
                    #expect(code == .invalidArgument, "\(what)")
                }
                do {
                    _ = try await client.validateJWTSVID(request(token, "spiffe://example.org/mcp/other"), metadata: securityHeader)
                } catch let error as RPCError {
                    #expect(error.message.contains("spiffe://example.org/mcp/other"), "the reason says which audience")
                }
            }
            #expect(!fixture.logs.all.contains { $0.contains(token) })
        }
    }

    @Test func gracefulShutdownEndsOpenStreams() async throws {
        try await withWorkloadAPI { fixture in
            let ended = try await withTimeout("the streams to end after graceful shutdown") {
                try await fixture.withClient { client in
                    try await client.fetchX509SVID(.init(), metadata: securityHeader) { svids in
                        try await client.fetchJWTBundles(.init(), metadata: securityHeader) { bundles in
                            var svidMessages = svids.messages.makeAsyncIterator()
                            var bundleMessages = bundles.messages.makeAsyncIterator()
                            _ = try await svidMessages.next()
                            _ = try await bundleMessages.next()
                            // The publisher stays open: the server alone ends the streams.
                            await fixture.group.triggerGracefulShutdown()
                            let svidEnd = try await svidMessages.next()
                            let bundleEnd = try await bundleMessages.next()
                            return svidEnd == nil && bundleEnd == nil
                        }
                    }
                }
            }
            #expect(ended, "both streams end with OK")
        }
    }

    /// What `WorkloadAPIServer` does on graceful shutdown, on its own: the
    /// NIO transport also cancels open RPCs when it quiesces, but the
    /// service does not rely on that.
    @Test func endStreamsEndsOpenAndLaterStreams() async throws {
        try await withWorkloadAPI { fixture in
            let (ended, later) = try await withTimeout("the streams to end after endStreams()") {
                try await fixture.withClient { client in
                    let ended = try await client.fetchX509SVID(.init(), metadata: securityHeader) { response in
                        var messages = response.messages.makeAsyncIterator()
                        _ = try await messages.next()
                        fixture.service.endStreams()
                        return try await messages.next() == nil
                    }
                    // A stream opened afterwards still gets the current state first.
                    let later = try await client.fetchX509SVID(.init(), metadata: securityHeader) { response in
                        var count = 0
                        for try await _ in response.messages { count += 1 }
                        return count
                    }
                    return (ended, later)
                }
            }
            #expect(ended)
            #expect(later == 1)
            #expect(fixture.logs.all.contains { $0.contains("Workload API stream ended") && $0.contains("endStreams") })
        }
    }

    @Test func closingThePublisherEndsStreams() async throws {
        try await withWorkloadAPI { fixture in
            let ended = try await withTimeout("the stream to end when the publisher closes") {
                try await fixture.withClient { client in
                    try await client.fetchX509Bundles(.init(), metadata: securityHeader) { response in
                        var messages = response.messages.makeAsyncIterator()
                        _ = try await messages.next()
                        fixture.identity.close()
                        return try await messages.next() == nil
                    }
                }
            }
            #expect(ended)
        }
    }

    @Test func aClientThatGoesAwayEndsItsStream() async throws {
        try await withWorkloadAPI { fixture in
            for _ in 0..<3 {
                try await withTimeout("one message") {
                    try await fixture.withClient { client in
                        try await client.fetchX509SVID(.init(), metadata: securityHeader) { response in
                            for try await _ in response.messages { break }
                        }
                    }
                }
            }
            // Each stream's handler noticed and returned (it logs on the way out).
            try await withTimeout("the server to notice") {
                while fixture.logs.all.filter({ $0.contains("Workload API stream ended") && $0.contains("the RPC was cancelled") }).count < 3 {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
        }
    }

    @Test func theSocketIsPrivateAndLogsHoldNoKeys() async throws {
        try await withWorkloadAPI { fixture in
            var info = stat()
            #expect(lstat(fixture.socketPath, &info) == 0)
            #expect(info.st_mode & S_IFMT == S_IFSOCK)
            #expect(info.st_mode & 0o777 == 0o600)
            _ = try await fixture.withClient { client in
                try await client.fetchX509SVID(.init(), metadata: securityHeader) { response in
                    for try await _ in response.messages { break }
                }
            }
            let key = fixture.identity.current.svid.privateKeyPEM
            let keyBase64 = Data(fixture.identity.current.svid.privateKeyPKCS8DER).base64EncodedString()
            #expect(!fixture.logs.all.contains { $0.contains(key) || $0.contains(keyBase64) })
            #expect(fixture.logs.all.contains { $0.contains("listening") && $0.contains("workload-api") })
        }
    }

    @Test func aStaleSocketIsReplacedButNothingElse() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let logger = LogRecorder().logger
        let mesh = try await TestMesh()
        @Sendable func server(_ path: String) throws -> WorkloadAPIServer {
            let service = WorkloadAPIService(identity: WorkloadIdentityPublisher(try mesh.identity()), mintJWTSVID: { _ in "" }, logger: logger)
            return WorkloadAPIServer(socketPath: path, service: service, logger: logger)
        }

        // Not a socket: left alone.
        let file = directory + "/file.sock"
        #expect(FileManager.default.createFile(atPath: file, contents: Data("keep me".utf8)))
        await #expect(throws: ProxyError.self) { try await server(file).run() }
        #expect(FileManager.default.contents(atPath: file) == Data("keep me".utf8))

        // A socket nobody listens on (a crashed proxy's): replaced.
        try await withWorkloadAPI(beforeStart: { path in
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            #expect(bound == 0 && FileManager.default.fileExists(atPath: path), "a stale socket file")
        }) { fixture in
            _ = try await withTimeout("a message from the restarted server") {
                try await fixture.withClient { client in
                    try await client.fetchX509Bundles(.init(), metadata: securityHeader) { response in
                        for try await _ in response.messages { break }
                    }
                }
            }
            // A second server refuses a socket that is in use.
            await #expect(throws: ProxyError.self) { try await server(fixture.socketPath).run() }
        }
    }
}
