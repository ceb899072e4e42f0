import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import Testing
import TetherCore
import TetherIdentity
import TetherMeshIdentity
import TetherProxy
import TetherXDS
import X509

/// Workload identity between real processes: join-token bootstrap, xDS over
/// mTLS, node identity enforcement and SVID rotation.
@Suite("Workload identity end to end", .serialized)
struct IdentityIntegrationTests {
    let example = repositoryRoot.appendingPathComponent("examples/mesh.yaml").path
    let triage = "spiffe://example.org/agent/triage"

    /// `token create`: the token (stdout) and the CA pin (stderr).
    func joinToken(_ control: ControlPlaneProcess, for id: String) throws -> (token: String, pin: String) {
        let result = try control.cli(["token", "create", "--spiffe-id", id])
        #expect(result.status == 0, "\(result.stderr)")
        let pin = result.stderr.split(whereSeparator: \.isWhitespace).first { $0.hasPrefix("sha256:") }.map(String.init) ?? ""
        return (result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), pin)
    }

    func joiningProxy(_ control: ControlPlaneProcess, token: String, pin: String, waitForAdmin: Bool = true) throws -> ProxyProcess {
        try ProxyProcess(
            xdsPort: control.xdsPort, root: control.root,
            identity: ["--bootstrap", "127.0.0.1:\(control.bootstrapPort)", "--join-token", token, "--ca-hash", pin],
            waitForAdmin: waitForAdmin
        )
    }

    func waitForExample(_ proxy: ProxyProcess) async throws {
        try await proxy.waitUntil("the proxy to be ready with the example") {
            let ready = try await proxy.get("/ready").status == 200
            let count = try await proxy.versions().count
            return ready && count == 7
        }
    }

    @Test func aProxyBootstrapsWithAJoinTokenAndGetsItsConfigOverMTLS() async throws {
        let control = try await offPool { try ControlPlaneProcess() }
        #expect(try control.cli(["apply", "-f", example]).status == 0)
        let (token, pin) = try joinToken(control, for: triage)
        #expect(pin.count == 71)
        let proxy = try await offPool { try self.joiningProxy(control, token: token, pin: pin) }
        try await waitForExample(proxy)

        // Its key never left it except into its own 0600 file.
        var info = stat()
        #expect(stat(proxy.dataDirectory + "/svid.key", &info) == 0 && info.st_mode & 0o077 == 0)
        #expect(!proxy.log.contains(token))
        let svid = try SVIDFiles(directory: proxy.dataDirectory).load()
        #expect(svid?.id.description == triage)

        // The trust bundle arrives over xDS like config.
        #expect(try await proxy.allVersions()["TrustBundle/example.org"] != nil)
        // The config dump shows the identity's public facts, never its key.
        let dumped = try #require(try await proxy.configDump()["identity"] as? [String: Any])
        #expect(dumped["spiffeID"] as? String == triage && dumped["serial"] as? String == svid?.svid.leaf.serialNumber.openSSLText)
        #expect(!(try await proxy.get("/config_dump").body).contains("PRIVATE KEY"))
        // Prometheus metrics on the admin port: SVID expiry, connection, config updates.
        let metrics = try await proxy.get("/metrics").body
        let expiry = Int(svid?.svid.notAfter.timeIntervalSince1970 ?? 0)
        #expect(metrics.contains("tether_proxy_svid_expiry_timestamp_seconds \(expiry)") || metrics.contains("tether_proxy_svid_expiry_timestamp_seconds \(expiry).0"), "\(metrics)")
        #expect(metrics.contains("tether_proxy_xds_connected 1") || metrics.contains("tether_proxy_xds_connected 1.0"), "\(metrics)")
        #expect(metrics.contains(#"tether_proxy_config_updates_total{result="accepted"} 7"#), "\(metrics)")

        let proxies = try control.cli(["proxies"])
        #expect(proxies.stdout.contains(triage) && proxies.stdout.contains("SYNCED"), "\(proxies.stdout)")

        // A restart uses the saved SVID: no token needed, none consumed.
        #expect(proxy.stop() == 0)
        proxy.identityArguments = ["--bootstrap", "127.0.0.1:\(control.bootstrapPort)"]
        try proxy.start()
        try await waitForExample(proxy)
        #expect(proxy.log.contains("using the saved SVID"))

        // A new JWT-SVID signing key changes the bundle; the change reaches the proxy over xDS.
        let bundleVersion = try await proxy.allVersions()["TrustBundle/example.org"]
        #expect(control.terminate() == 0)
        try FileManager.default.removeItem(atPath: control.dataDirectory + "/jwt.key")
        try control.start()
        try await proxy.waitUntil("the new bundle") {
            let version = try await proxy.allVersions()["TrustBundle/example.org"]
            return version != nil && version != bundleVersion
        }
    }

    @Test func aJoinTokenWorksOnceAndOnlyWithTheRightCA() async throws {
        let control = try await offPool { try ControlPlaneProcess() }
        let (token, pin) = try joinToken(control, for: triage)

        // A wrong pin: the proxy refuses the control plane before sending the token…
        let wrongPin = "sha256:" + String(repeating: "0", count: 64)
        let distrustful = try await offPool { try self.joiningProxy(control, token: token, pin: wrongPin, waitForAdmin: false) }
        #expect(try await distrustful.exitStatus() != 0)
        #expect(distrustful.log.contains("the server is not trusted"), "\(distrustful.log)")

        // …so the token is still good with the right CA, here from the bundle file
        // `tether-control bundle` prints.
        let pem = try control.cli(["bundle"])
        #expect(pem.status == 0 && pem.stdout.hasPrefix("-----BEGIN CERTIFICATE-----"), "\(pem)")
        #expect(try control.cli(["bundle", "-o", "ca-hash"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == pin)
        #expect(try control.cli(["bundle", "-o", "spiffe"]).stdout.contains(#""use":"jwt-svid""#))
        let bundleFile = try control.file("bundle.pem", pem.stdout)
        // The token from the environment, out of the process list.
        let first = try ProxyProcess(
            xdsPort: control.xdsPort, root: control.root,
            identity: ["--bootstrap", "127.0.0.1:\(control.bootstrapPort)", "--trust-bundle", bundleFile],
            environment: ["TETHER_JOIN_TOKEN": token]
        )
        try await first.waitUntil("the first proxy to join") { first.log.contains("joined the trust domain") }

        // Replayed: refused, and the replaying proxy exits with the reason.
        let replay = try await offPool { try self.joiningProxy(control, token: token, pin: pin, waitForAdmin: false) }
        #expect(try await replay.exitStatus() != 0)
        #expect(replay.log.contains("unknown or was already used"), "\(replay.log)")
    }

    @Test func aValidSVIDCannotAskForAnotherNodesConfig() async throws {
        let control = try await offPool { try ControlPlaneProcess() }
        #expect(try control.cli(["apply", "-f", example]).status == 0)
        let (token, pin) = try joinToken(control, for: triage)
        let proxy = try await offPool { try self.joiningProxy(control, token: token, pin: pin) }
        try await waitForExample(proxy)
        #expect(proxy.stop() == 0)
        let identity = try #require(try SVIDFiles(directory: proxy.dataDirectory).load())

        // The triage proxy's own SVID, claiming to be the GitHub server's proxy.
        let other = "spiffe://example.org/mcp/github"
        let error = await #expect(throws: RPCError.self) {
            try await deltaStream(port: control.xdsPort, identity: identity, node: other)
        }
        #expect(error?.code == .permissionDenied)
        #expect(error?.message.contains("not the SPIFFE ID of the client certificate") == true, "\(String(describing: error))")

        // Its own node id on the same certificate is served.
        let responses = try await deltaStream(port: control.xdsPort, identity: identity, node: triage)
        #expect(responses > 0)

        // A certificate from another CA does not get past the handshake.
        let foreignCA = try TrustDomainCA.generate(trustDomain: "example.org")
        let key = P256.Signing.PrivateKey()
        let foreign = WorkloadIdentity(
            svid: try X509SVID(chain: [try foreignCA.issue(publicKey: .init(key.publicKey), for: try SPIFFEID(triage))], privateKey: key),
            bundle: identity.bundle
        )
        await #expect(throws: (any Error).self) {
            try await deltaStream(port: control.xdsPort, identity: foreign, node: triage)
        }
        let log = try String(contentsOfFile: control.logPath, encoding: .utf8)
        #expect(log.contains("peer certificate rejected") && log.contains("untrusted"), "\(log)")
    }

    @Test func shortLivedSVIDsRotateWhileStreamsStayUp() async throws {
        let control = try await offPool { try ControlPlaneProcess(arguments: ["--svid-ttl", "30s"]) }
        #expect(try control.cli(["apply", "-f", example]).status == 0)
        let (token, pin) = try joinToken(control, for: triage)
        let proxy = try await offPool { try self.joiningProxy(control, token: token, pin: pin) }
        try await waitForExample(proxy)
        let first = try #require(try SVIDFiles(directory: proxy.dataDirectory).load())

        // Two independent Workload API clients stay connected across the
        // rotations: a raw FetchX509SVID stream, and py-spiffe's X509Source
        // (after it fetched everything once, JWT-SVIDs minted by the control
        // plane included); OpenSSL then verifies what py-spiffe received.
        let socket = proxy.dataDirectory + "/workload.sock"
        let stream = Task { try await x509SVIDSerials(socket: socket, count: 3, seconds: 50) }
        let out = control.root.appendingPathComponent("py-spiffe").path
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let script = repositoryRoot.appendingPathComponent("Tests/TetherProxyTests/workload_api_client.py").path
        let python = Task {
            try await runTool(["python3", script, socket, out, triage, "spiffe://example.org/mcp/github"], log: out + ".log", seconds: 60)
        }

        // Renewal at 15 s ± 3 s: two rotations within 40 s.
        try await proxy.waitUntil("two SVID rotations", seconds: 45) {
            proxy.log.components(separatedBy: "SVID rotated").count - 1 >= 2
        }
        let serials = try await stream.value
        #expect(Set(serials).count == 3, "the open stream delivered the first SVID and both rotations: \(serials)")
        let (status, output) = try await python.value
        #expect(status == 0 && output.components(separatedBy: "ok: ").count - 1 == 9, "py-spiffe against tether-proxy:\n\(output)")
        // At the time py-spiffe received it: with a 30 s TTL it may have expired since.
        let received = try #require(try FileManager.default.attributesOfItem(atPath: out + "/svid.pem")[.modificationDate] as? Date)
        for purpose in [[], ["-purpose", "sslclient"], ["-purpose", "sslserver"]] {
            let verify = try await runTool(
                ["openssl", "verify", "-attime", "\(Int(received.timeIntervalSince1970))", "-CAfile", out + "/bundle.pem"] + purpose + [out + "/svid.pem"],
                log: out + "-openssl.log", seconds: 20
            )
            #expect(verify.status == 0 && verify.output.contains("svid.pem: OK"), "openssl verify \(purpose): \(verify.output)")
        }
        let rotated = try #require(try SVIDFiles(directory: proxy.dataDirectory).load())
        #expect(rotated.svid.leaf.serialNumber != first.svid.leaf.serialNumber)
        #expect(rotated.svid.privateKey.publicKey.rawRepresentation != first.svid.privateKey.publicKey.rawRepresentation, "a fresh key each time")

        // The xDS stream opened at the start still carries changes.
        let before = try await proxy.versions()
        #expect(try control.cli(["apply", "-f", "-"], stdin: try String(contentsOfFile: example, encoding: .utf8).replacingOccurrences(of: "timeout: 30s", with: "timeout: 45s")).status == 0)
        try await proxy.waitUntil("the route change") { try await proxy.versions()["Route/github"] != before["Route/github"] }
        #expect(proxy.log.components(separatedBy: "xDS stream established").count - 1 == 1, "one stream throughout")

        // The first SVID has expired by now; a new handshake must use the current one.
        try await proxy.waitUntil("the first SVID to expire", seconds: 30) { Date() > first.svid.notAfter }
        #expect(control.terminate() == 0)
        try control.start()
        try await proxy.waitUntil("the proxy to reconnect with its current SVID", seconds: 20) {
            proxy.log.components(separatedBy: "xDS stream established").count - 1 == 2
        }
        let log = try String(contentsOfFile: control.logPath, encoding: .utf8)
        #expect(log.contains("xDS stream opened") && !log.contains("peer certificate rejected"), "\(log)")
    }
}

extension IdentityIntegrationTests {
    /// Existing SPIFFE infrastructure: a proxy that takes its SVID from a
    /// Workload API endpoint instead of a join token (here another proxy's,
    /// standing in for a SPIRE agent) and follows its rotations.
    @Test func aProxyCanTakeItsIdentityFromAWorkloadAPIEndpoint() async throws {
        let control = try await offPool { try ControlPlaneProcess(arguments: ["--svid-ttl", "30s"]) }
        #expect(try control.cli(["apply", "-f", example]).status == 0)
        let (token, pin) = try joinToken(control, for: triage)
        let agent = try await offPool { try self.joiningProxy(control, token: token, pin: pin) }
        try await waitForExample(agent)

        let follower = try ProxyProcess(
            xdsPort: control.xdsPort, root: control.root,
            identity: ["--spiffe-endpoint-socket", "unix://" + agent.dataDirectory + "/workload.sock"]
        )
        try await waitForExample(follower)
        #expect(follower.log.contains("using the SVID from the Workload API"))
        // The endpoint rotates (30 s TTL); the follower picks the new SVID up.
        try await follower.waitUntil("the follower to pick up a rotation", seconds: 30) {
            follower.log.contains("SVID rotated by the Workload API endpoint")
        }
        // …and stays in sync.
        let before = try await follower.versions()
        #expect(try control.cli(["apply", "-f", "-"], stdin: try String(contentsOfFile: example, encoding: .utf8).replacingOccurrences(of: "timeout: 30s", with: "timeout: 50s")).status == 0)
        try await follower.waitUntil("the route change") { try await follower.versions()["Route/github"] != before["Route/github"] }

        // A bad endpoint is a clear startup error.
        let lost = try ProxyProcess(xdsPort: control.xdsPort, root: control.root, identity: ["--spiffe-endpoint-socket", "unix:///nonexistent/agent.sock"], waitForAdmin: false)
        #expect(try await lost.exitStatus() != 0)
        #expect(lost.log.contains("cannot get an SVID from the Workload API"), "\(lost.log)")
    }
}

extension IdentityIntegrationTests {
    @Test func aRevokedProxyIsCutOffAndLetBackIn() async throws {
        let control = try await offPool { try ControlPlaneProcess() }
        #expect(try control.cli(["apply", "-f", example]).status == 0)
        let (token, pin) = try joinToken(control, for: triage)
        let proxy = try await offPool { try self.joiningProxy(control, token: token, pin: pin) }
        try await waitForExample(proxy)

        let revoked = try control.cli(["revoke", triage, "--reason", "host compromised"])
        #expect(revoked.status == 0 && revoked.stdout.contains("host compromised"), "\(revoked)")
        func controlLog() -> String { (try? String(contentsOfFile: control.logPath, encoding: .utf8)) ?? "" }
        // Its open stream ends; its reconnects fail the handshake.
        try await proxy.waitUntil("the stream to be closed and the reconnect refused", seconds: 20) {
            controlLog().contains("the node was revoked") && controlLog().contains("is revoked")
        }
        #expect(try control.cli(["revoke", "--list"]).stdout.contains(triage))
        let again = try control.cli(["token", "create", "--spiffe-id", triage])
        #expect(again.status != 0 && again.stderr.contains("is revoked"), "\(again)")

        // Let back in: it reconnects with the SVID it has.
        #expect(try control.cli(["unrevoke", triage]).status == 0)
        try await proxy.waitUntil("the proxy to reconnect", seconds: 30) {
            proxy.log.components(separatedBy: "xDS stream established").count - 1 >= 2
        }
    }
}

/// Holds a FetchX509SVID stream open on the proxy's Workload API until it
/// has seen `count` different SVIDs; returns their serials in order.
func x509SVIDSerials(socket: String, count: Int, seconds: Int) async throws -> [String] {
    let transport = try HTTP2ClientTransport.Posix(target: .unixDomainSocket(path: socket), transportSecurity: .plaintext)
    return try await withGRPCClient(transport: transport) { client in
        var options = CallOptions.defaults
        options.timeout = .seconds(seconds)
        return try await Workload_SpiffeWorkloadAPI.Client(wrapping: client).fetchX509SVID(
            Workload_X509SVIDRequest(), metadata: ["workload.spiffe.io": "true"], options: options
        ) { response in
            var serials: [String] = []
            for try await message in response.messages {
                let identity = try WorkloadAPIMessages.identity(from: message)
                let serial = identity.svid.leaf.serialNumber.description
                if serials.last != serial { serials.append(serial) }
                if serials.count == count { break }
            }
            return serials
        }
    }
}

/// Opens a delta ADS stream as `node` with `identity` over mTLS, sends the
/// first request, and returns how many responses arrived before it closed
/// its side; throws what the server answers.
func deltaStream(port: Int, identity: WorkloadIdentity, node: String) async throws -> Int {
    let publisher = WorkloadIdentityPublisher(identity)
    let logger = Logger(label: "test")
    let verifier = SPIFFEPeerVerifier(role: "test-client", logger: logger, bundle: { identity.bundle })
    let transport = try HTTP2ClientTransport.Posix(
        target: .ipv4(address: "127.0.0.1", port: port),
        transportSecurity: try MeshTLS.client(identity: publisher, serverVerifier: verifier, bundle: identity.bundle)
    )
    return try await withGRPCClient(transport: transport) { client in
        let ads = Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Client(wrapping: client)
        let request = Envoy_Service_Discovery_V3_DeltaDiscoveryRequest.with {
            $0.node.id = node
            $0.typeURL = TetherTypes.typeURL(.route)
            $0.resourceNamesSubscribe = ["*"]
        }
        var options = CallOptions.defaults
        options.timeout = .seconds(10)
        return try await ads.deltaAggregatedResources(options: options) { writer in
            try await writer.write(request)
        } onResponse: { response in
            var count = 0
            for try await _ in response.messages {
                count += 1
                break
            }
            return count
        }
    }
}
