import ArgumentParser
import TetherControlPlane
import TetherCore

struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete resources by kind and name, or those defined in files.",
        discussion: """
            Refused, changing nothing, while other resources still reference what you delete.

              tether-control delete route github
              tether-control delete -f examples/mesh.yaml
            """
    )

    @Argument(help: "The kind of the resource.")
    var kind: String?
    @Argument(help: "The names of the resources to delete.")
    var names: [String] = []
    @OptionGroup var sources: SourceOptions
    @Flag(help: "Show what would be deleted without deleting it.")
    var dryRun = false
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await reportingErrors {
            var ids: [ResourceID] = []
            if let kind {
                guard let resolved = ResourceKind(commandLineName: kind) else {
                    throw CLIError("unknown kind \"\(kind)\"; use one of \(ResourceKind.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                guard !names.isEmpty else { throw CLIError("name the \(resolved.rawValue) to delete, e.g. delete \(kind) NAME") }
                ids = names.map { ResourceID(resolved, $0) }
            }
            guard ids.isEmpty != sources.filename.isEmpty else {
                throw CLIError("give either KIND NAME... or -f FILE, not both and not neither")
            }
            let request = AdminProtocol.DeleteRequest(ids: ids, sources: sources.filename.isEmpty ? [] : try sources.read(), dryRun: dryRun)
            let response: AdminProtocol.ChangeResponse = try await connection.client.post("/v1/delete", request)
            printChanges(response)
        }
    }
}
