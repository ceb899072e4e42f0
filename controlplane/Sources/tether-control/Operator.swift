import ArgumentParser
import Foundation
import Logging
import TetherControlPlane
import TetherCore
import TetherIdentity
import TetherMeshIdentity

struct Operator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "An operator's SVID, for the remote admin endpoint.",
        subcommands: [Enroll.self]
    )

    struct Enroll: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Get an operator SVID with a join token; the key is generated here and never leaves this machine.",
            discussion: """
                On the control plane: tether-control token create --spiffe-id spiffe://TD/operator/alice. \\
                Then, as the operator: enroll, and point the CLI at a replica's --admin-address. \\
                The CLI renews the SVID over the admin endpoint when it is past half its lifetime.

                  TETHER_JOIN_TOKEN=<token> tether-control operator enroll --bootstrap cp.example:15013 --ca-hash sha256:… --operator-dir ~/.tether/operator
                  tether-control --admin cp.example:15015 --operator-dir ~/.tether/operator history
                """
        )

        @Option(help: ArgumentHelp("A replica's bootstrap address.", valueName: "host:port"))
        var bootstrap: String

        @Option(help: ArgumentHelp("The join token (default: $TETHER_JOIN_TOKEN).", valueName: "token"))
        var joinToken: String?

        @Option(help: ArgumentHelp("Pin of the control plane's CA public key, as printed by tether-control token create.", valueName: "sha256:hex"))
        var caHash: String

        @Option(help: ArgumentHelp("Where to keep the operator SVID (created 0700). Default: $TETHER_OPERATOR_DIR, else ~/.tether/operator.", valueName: "dir"))
        var operatorDir: String = ConnectionOptions.defaultOperatorDirectory

        func run() async throws {
            try await reportingErrors {
                guard let address = try? HostPort(bootstrap) else { throw CLIError("--bootstrap \(bootstrap) is not host:port") }
                guard let token = joinToken ?? ProcessInfo.processInfo.environment["TETHER_JOIN_TOKEN"], !token.isEmpty else {
                    throw CLIError("give the join token with --join-token or TETHER_JOIN_TOKEN")
                }
                guard caHash.hasPrefix("sha256:"), caHash.count == 71, caHash.dropFirst(7).allSatisfy(\.isHexDigit) else {
                    throw CLIError("--ca-hash \(caHash) is not sha256:<64 hex digits>; copy it from tether-control token create")
                }
                guard (try? FileManager.default.createDirectory(atPath: operatorDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])) != nil else {
                    throw CLIError("cannot create --operator-dir \(operatorDir)")
                }
                let identity: WorkloadIdentity
                do {
                    identity = try await IdentityBootstrap.join(bootstrap: address, token: token, trust: .caHash(caHash.lowercased()), logger: Logger(label: "tether-control"))
                    try SVIDFiles(directory: operatorDir).save(identity)
                } catch let error as IdentityError {
                    throw CLIError(error.reason)
                }
                print("enrolled as \(identity.id) until \(identity.svid.notAfter.formatted(.iso8601)); SVID in \(operatorDir)")
            }
        }
    }
}
