import ArgumentParser
import Foundation
import TetherControlPlane
import TetherCore

/// `tether-control`: runs the control plane and operates it.
@main
struct TetherControl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tether-control",
        abstract: "Tether's control plane: stores mesh config and serves it to proxies.",
        discussion: """
            Start the control plane with `tether-control run`, then manage config from another \
            shell. Every change is validated in full and stored as a numbered revision; nothing \
            is ever half-applied.

              tether-control run
              tether-control apply -f examples/mesh.yaml
              tether-control get routes
              tether-control diff -f examples/mesh.yaml
              tether-control history
              tether-control rollback 1
            """,
        subcommands: [
            Run.self, Apply.self, Get.self, Delete.self, Diff.self, Validate.self, History.self, Rollback.self, Proxies.self, Token.self, Explain.self, Revoke.self, Unrevoke.self, Bundle.self, Migrate.self, Operator.self,
        ]
    )
}

/// Where the CLI finds the control plane.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The control plane's data directory; its admin socket is inside. Default: $TETHER_DATA_DIR, else ./tether-data.", valueName: "dir"))
    var dataDir: String = ProcessInfo.processInfo.environment["TETHER_DATA_DIR"] ?? DataDirectory.defaultPath

    @Option(name: .long, help: ArgumentHelp("The admin socket, if not <data-dir>/admin.sock.", valueName: "path"))
    var adminSocket: String?

    @Option(name: .long, help: ArgumentHelp("A replica's remote admin endpoint (its --admin-address), reached with the operator SVID in --operator-dir. Default: $TETHER_ADMIN; without it the local socket is used.", valueName: "host:port"))
    var admin: String = ProcessInfo.processInfo.environment["TETHER_ADMIN"] ?? ""

    @Option(name: .long, help: ArgumentHelp("The operator SVID for --admin (see tether-control operator enroll). Default: $TETHER_OPERATOR_DIR, else ~/.tether/operator.", valueName: "dir"))
    var operatorDir: String = ConnectionOptions.defaultOperatorDirectory

    static var defaultOperatorDirectory: String {
        ProcessInfo.processInfo.environment["TETHER_OPERATOR_DIR"] ?? "\(FileManager.default.homeDirectoryForCurrentUser.path)/.tether/operator"
    }

    var client: AdminClient {
        get throws {
            guard !admin.isEmpty else {
                return AdminClient(socketPath: adminSocket ?? DataDirectory(path: dataDir).adminSocketPath)
            }
            guard let address = try? HostPort(admin) else { throw CLIError("--admin \(admin) is not host:port") }
            return AdminClient(endpoint: .remote(address, operatorDirectory: operatorDir))
        }
    }
}
