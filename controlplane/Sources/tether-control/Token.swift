import ArgumentParser
import Foundation
import TetherControlPlane
import TetherCore

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage join tokens, with which a proxy obtains its first SVID.",
        subcommands: [Create.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a single-use join token for one SPIFFE ID.",
            discussion: """
                Prints the token once on stdout; only its hash is stored. It is consumed by its \
                first use, even one that fails (expired, or a request for another identity). \
                stderr shows the CA pin (--ca-hash) for proxies that have no bundle file.

                  tether-control token create --spiffe-id spiffe://tether.local/agent/triage
                  tether-control token create --spiffe-id spiffe://tether.local/mcp/github --ttl 30m
                """
        )

        @Option(help: ArgumentHelp("The SPIFFE ID the token's holder will get.", valueName: "id"))
        var spiffeID: String
        @Option(help: ArgumentHelp("How long the token may be used.", valueName: "duration"))
        var ttl = "10m"
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await reportingErrors {
                guard let duration = try? ConfigDuration(parsing: ttl) else {
                    throw CLIError("--ttl \(ttl) is not a duration; write e.g. 10m or 1h")
                }
                let request = AdminProtocol.TokenRequest(spiffeID: spiffeID, ttlSeconds: Double(duration.milliseconds) / 1000)
                let response: AdminProtocol.TokenResponse = try await connection.client.post("/v1/tokens", request)
                print(response.token)
                printError("join token for \(response.spiffeID), single use, expires \(response.expiresAt.formatted(.iso8601))")
                if response.spiffeID.contains("/operator/") {
                    printError("enroll with: TETHER_JOIN_TOKEN=<token> tether-control operator enroll --bootstrap <bootstrap host:port> --ca-hash \(response.caHash)")
                } else {
                    printError("bootstrap with: TETHER_JOIN_TOKEN=<token> tether-proxy run --control <xds host:port> --bootstrap <bootstrap host:port> --ca-hash \(response.caHash)")
                }
            }
        }
    }
}
