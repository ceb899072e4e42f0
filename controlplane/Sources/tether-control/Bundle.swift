import ArgumentParser
import Foundation
import TetherControlPlane

struct Bundle: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the trust domain's bundle: what proxies and other SPIFFE systems trust.",
        discussion: """
            Public keys only. As PEM for tether-proxy --trust-bundle, as a SPIFFE bundle (JWK Set \
            with x509-svid and jwt-svid keys) for federation, or the CA pin for --ca-hash.

              tether-control bundle > bundle.pem
              tether-control bundle -o spiffe
              tether-control bundle -o ca-hash
            """
    )

    @Option(name: .shortAndLong, help: "Output: pem, spiffe or ca-hash.")
    var output = "pem"
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await reportingErrors {
            guard ["pem", "spiffe", "ca-hash"].contains(output) else { throw CLIError("-o \(output): use pem, spiffe or ca-hash") }
            let response: AdminProtocol.BundleResponse = try await connection.client.get("/v1/bundle")
            switch output {
            case "spiffe": print(response.spiffeBundle)
            case "ca-hash": print(response.caHash)
            default: print(response.pem, terminator: "")
            }
        }
    }
}
