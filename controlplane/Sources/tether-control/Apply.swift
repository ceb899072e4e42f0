import ArgumentParser
import TetherControlPlane

struct Apply: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create or update resources from files.",
        discussion: """
            Validates every document first (all errors are reported, with file, line and field) \
            and then stores all of them as one new revision — or, on any error, changes nothing.

              tether-control apply -f examples/mesh.yaml
              tether-control apply -f config/ --dry-run
              cat route.yaml | tether-control apply -f -
            """
    )

    @OptionGroup var sources: SourceOptions
    @Flag(help: "Validate against the stored state and show what would change, without changing it.")
    var dryRun = false
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await reportingErrors {
            let request = AdminProtocol.ApplyRequest(sources: try sources.read(), dryRun: dryRun)
            let response: AdminProtocol.ChangeResponse = try await connection.client.post("/v1/apply", request)
            printChanges(response)
        }
    }
}

/// `Kind/name action` per resource, kubectl-style, then the new revision.
func printChanges(_ response: AdminProtocol.ChangeResponse) {
    for change in response.changes {
        print("\(change.id) \(change.action.rawValue)\(response.dryRun ? " (dry run)" : "")")
    }
    if let revision = response.revision {
        print("revision \(revision)")
    }
}
