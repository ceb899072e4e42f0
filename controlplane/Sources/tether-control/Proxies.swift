import ArgumentParser
import Foundation
import TetherControlPlane
import TetherXDS

struct Proxies: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show every proxy's xDS streams and how far each type of config has reached it (with replicas: on every replica).",
        discussion: """
            STATUS per type: SYNCED (the proxy ACKed exactly its current config), STALE (sent and \
            not yet ACKed, or changed since), NACKED (the proxy rejected it; MESSAGE says why and \
            it keeps its last good config), NOT SENT (the proxy has not subscribed).

              tether-control proxies
              tether-control proxies -o json
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, json
    }

    @Option(name: [.customShort("o"), .long], help: "Output format: table or json.")
    var output: Format = .table
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await reportingErrors {
            let response: AdminProtocol.ProxiesResponse = try await connection.client.get("/v1/proxies")
            if output == .json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                encoder.dateEncodingStrategy = .iso8601
                print(String(decoding: try encoder.encode(response.proxies), as: UTF8.self))
                return
            }
            guard !response.proxies.isEmpty else {
                printError("No proxies have connected.")
                return
            }
            // With replicas, which one each stream is on.
            let replicated = response.proxies.contains { $0.replica != nil }
            var rows = [["NODE"] + (replicated ? ["REPLICA"] : []) + ["STREAM", "CONNECTED", "TYPE", "STATUS", "VERSION", "MESSAGE"]]
            for proxy in response.proxies {
                let connected = proxy.disconnectedAt.map { "gone since \($0.formatted(.iso8601))" } ?? proxy.connectedAt.formatted(.iso8601)
                let stream = [proxy.node] + (replicated ? [proxy.replica ?? "-"] : []) + ["\(proxy.stream) (\(proxy.mode.rawValue))", connected]
                for type in proxy.types {
                    rows.append(stream + [type.kind.rawValue, type.state.rawValue, type.version ?? "-", type.message ?? ""])
                }
                if proxy.types.isEmpty {
                    rows.append(stream + ["-", "-", "-", ""])
                }
            }
            print(ResourceTable.align(rows), terminator: "")
        }
    }
}
