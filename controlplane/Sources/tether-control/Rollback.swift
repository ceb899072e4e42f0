import ArgumentParser
import TetherControlPlane

struct Rollback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore the config exactly as it was at a revision, as a new revision.",
        discussion: """
            History is kept: the rollback is itself a revision, so it can be rolled back too.

              tether-control history
              tether-control rollback 3
            """
    )

    @Argument(help: "The revision to restore.")
    var revision: Int64
    @Flag(help: "Show what would change without changing it.")
    var dryRun = false
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await reportingErrors {
            let response: AdminProtocol.ChangeResponse = try await connection.client.post("/v1/rollback", AdminProtocol.RollbackRequest(revision: revision, dryRun: dryRun))
            if response.changes.allSatisfy({ $0.action == .unchanged }) && !dryRun {
                print("already at the state of revision \(revision); nothing changed")
                return
            }
            printChanges(response)
        }
    }
}
