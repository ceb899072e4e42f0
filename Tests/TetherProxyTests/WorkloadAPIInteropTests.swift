import Foundation
import Testing
import TetherMeshIdentity
import X509

/// The Workload API against independent clients: the official py-spiffe
/// client library, then OpenSSL on what it received.
@Suite("SPIFFE Workload API interop")
struct WorkloadAPIInteropTests {
    let script = repositoryRoot.appendingPathComponent("Tests/TetherProxyTests/workload_api_client.py").path

    @Test(arguments: [false, true])
    func pySpiffeAndOpenSSL(intermediate: Bool) async throws {
        try await withWorkloadAPI(intermediate: intermediate) { fixture in
            let out = fixture.directory + "/py"
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
            let log = fixture.directory + "/python.log"
            let rotated = try fixture.mesh.identity()
            let status = try await run(
                ["python3", script, fixture.socketPath, out, fixture.mesh.id.description, "spiffe://example.org/mcp/github"],
                log: log, seconds: 60,
                whileRunning: {
                    // The script's X509Source holds the first SVID: rotate it.
                    guard FileManager.default.fileExists(atPath: out + "/source-ready") else { return false }
                    fixture.identity.publish(rotated)
                    return true
                }
            )
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            switch status {
            case 127: Issue.record("python3 is not installed (/usr/bin/env python3 exited 127); CI installs it:\n\(output)")
            case 2: Issue.record("py-spiffe is missing; run .ci/run or python3 -m pip install spiffe==0.3.2:\n\(output)")
            default: #expect(status == 0, "workload_api_client.py failed:\n\(output)")
            }
            #expect(output.components(separatedBy: "ok: ").count - 1 == 9, "\(output)")

            let serial = try? String(contentsOfFile: out + "/rotated-serial", encoding: .utf8)
            let expected = rotated.svid.leaf.serialNumber.bytes.map { String(format: "%02x", $0) }.joined().drop(while: { $0 == "0" })
            #expect(serial == String(expected), "X509Source ends up with the rotated SVID")

            // OpenSSL verifies the SVID py-spiffe received against the bundle
            // it received, for TLS clients and servers alike.
            let intermediates = out + "/intermediates.pem"
            let pem = (try? String(contentsOfFile: intermediates, encoding: .utf8)) ?? ""
            #expect(pem.contains("BEGIN CERTIFICATE") == intermediate)
            for purpose in [[], ["-purpose", "sslclient"], ["-purpose", "sslserver"]] {
                let untrusted = intermediate ? ["-untrusted", intermediates] : []
                let verifyLog = fixture.directory + "/openssl.log"
                let status = try await run(
                    ["openssl", "verify", "-CAfile", out + "/bundle.pem"] + untrusted + purpose + [out + "/svid.pem"],
                    log: verifyLog, seconds: 20
                )
                let verifyOutput = (try? String(contentsOfFile: verifyLog, encoding: .utf8)) ?? ""
                #expect(status == 0 && verifyOutput.contains("svid.pem: OK"), "openssl verify \(purpose): \(verifyOutput)")
            }
        }
    }
}
