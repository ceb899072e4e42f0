import ArgumentParser
import Foundation
import TetherControlPlane

struct History: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List config revisions, newest first.",
        discussion: """
              tether-control history
              tether-control history --limit 5
            """
    )

    @Option(help: "How many revisions to show.")
    var limit = 20
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await reportingErrors {
            let response: AdminProtocol.HistoryResponse = try await connection.client.get("/v1/revisions", query: ["limit": "\(limit)"])
            if response.revisions.isEmpty {
                printError("No revisions yet; apply some config first.")
                return
            }
            var rows = [["REVISION", "CREATED", "AUTHOR", "OPERATION", "CHANGES"]]
            for revision in response.revisions {
                let operation = revision.rollbackTo.map { "rollback to \($0)" } ?? revision.operation.rawValue
                let changes = revision.changes.map { "\($0.id) \($0.action.rawValue)" }.joined(separator: ", ")
                rows.append(["\(revision.number)", revision.createdAt.formatted(.iso8601), revision.author, operation, changes])
            }
            print(ResourceTable.align(rows), terminator: "")
        }
    }
}
