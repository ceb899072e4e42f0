import ArgumentParser
import TetherControlPlane
import TetherCore

struct Diff: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show how files differ from the stored config, as a unified diff.",
        discussion: """
            Exit status, as kubectl diff: 0 no differences, 1 differences, 2 an error. \
            Credential values are never shown; a changed one is marked as changed.

              tether-control diff -f examples/mesh.yaml
            """
    )

    @OptionGroup var sources: SourceOptions
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        var differs = false
        do {
            try await reportingErrors {
                let request = AdminProtocol.ApplyRequest(sources: try sources.read(), dryRun: true)
                let response: AdminProtocol.DiffResponse = try await connection.client.post("/v1/diff", request)
                for entry in response.entries where entry.action != .unchanged {
                    differs = true
                    print(UnifiedDiff.diff(
                        old: entry.stored ?? "",
                        new: entry.proposed ?? "",
                        oldLabel: entry.stored == nil ? "/dev/null" : "stored/\(entry.id) (revision \(response.revision))",
                        newLabel: entry.proposed == nil ? "/dev/null" : "proposed/\(entry.id)"
                    ), terminator: "")
                }
            }
        } catch is ExitCode {
            throw ExitCode(2)
        }
        if differs { throw ExitCode(1) }
    }
}
