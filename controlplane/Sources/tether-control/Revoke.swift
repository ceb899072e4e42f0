import ArgumentParser
import Foundation
import TetherControlPlane
import TetherCore

struct Revoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cut a workload off the mesh's control connection, or list who is.",
        discussion: """
            A revoked SPIFFE ID gets no join, SVID renewal or JWT-SVID, its xDS handshakes are \
            refused and its open xDS streams end at once. Its current SVID stays valid for peers \
            until it expires (at most --svid-ttl). Undo with tether-control unrevoke.

              tether-control revoke spiffe://example.org/agent/triage --reason "host compromised"
              tether-control revoke --list
            """
    )

    @Argument(help: ArgumentHelp("The SPIFFE ID to revoke.", valueName: "spiffe-id"))
    var spiffeID: String?
    @Option(help: "Why, for the record.")
    var reason: String?
    @Flag(help: "List revoked identities.")
    var list = false
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await reportingErrors {
            let response: AdminProtocol.RevocationsResponse
            if list {
                response = try await connection.client.get("/v1/revocations")
            } else {
                guard let spiffeID else { throw CLIError("name the SPIFFE ID to revoke, or pass --list") }
                response = try await connection.client.post("/v1/revocations", AdminProtocol.RevocationRequest(spiffeID: spiffeID, revoked: true, reason: reason))
                printError("revoked \(spiffeID)")
            }
            for entry in response.revoked {
                print("\(entry.spiffeID)\t\(entry.revokedAt.formatted(.iso8601))\t\(entry.revokedBy)\t\(entry.reason ?? "-")")
            }
        }
    }
}

struct Unrevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Let a revoked workload back in (it rejoins with its SVID if still valid, else a new join token).",
        discussion: """
              tether-control unrevoke spiffe://example.org/agent/triage
            """
    )

    @Argument(help: ArgumentHelp("The SPIFFE ID to let back in.", valueName: "spiffe-id"))
    var spiffeID: String
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await reportingErrors {
            let _: AdminProtocol.RevocationsResponse = try await connection.client.post(
                "/v1/revocations", AdminProtocol.RevocationRequest(spiffeID: spiffeID, revoked: false, reason: nil)
            )
            printError("unrevoked \(spiffeID)")
        }
    }
}
