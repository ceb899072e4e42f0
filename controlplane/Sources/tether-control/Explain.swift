import ArgumentParser
import Foundation
import TetherControlPlane
import TetherCore

struct Explain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Say whether an MCP call would be allowed, and which policy rule decides.",
        discussion: """
            Evaluates the stored config with the same code the proxies run. Exit status, as \
            kubectl auth can-i: 0 allowed, 1 denied, 2 an error.

              tether-control explain --agent spiffe://example.org/agent/triage \\
                --claim groups=engineering --route github --method tools/call --tool get_issue
              tether-control explain --agent spiffe://example.org/agent/triage \\
                --actor spiffe://example.org/agent/supervisor --route github --method tools/list
            """
    )

    @Option(help: ArgumentHelp("The calling agent's SPIFFE ID.", valueName: "id"))
    var agent: String
    @Option(help: ArgumentHelp("A user claim (repeat; repeat a name for a list claim such as groups). Without any, the call has no user.", valueName: "name=value"))
    var claim: [String] = []
    @Option(help: ArgumentHelp("An agent that delegated to --agent, nearest first (repeat).", valueName: "id"))
    var actor: [String] = []
    @Option(help: ArgumentHelp("The route the call takes.", valueName: "name"))
    var route: String
    @Option(help: ArgumentHelp("The JSON-RPC method, e.g. tools/call.", valueName: "method"))
    var method: String
    @Option(help: ArgumentHelp("The tool, for tools/call.", valueName: "name"))
    var tool: String?
    @Option(help: ArgumentHelp("The resource URI, for resources/read.", valueName: "uri"))
    var resource: String?
    @Option(help: ArgumentHelp("The prompt, for prompts/get.", valueName: "name"))
    var prompt: String?
    @Option(name: .shortAndLong, help: "Output: text or json.")
    var output: String = "text"
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        var allowed = false
        do {
            try await reportingErrors {
                var claims: [String: [String]] = [:]
                for item in claim {
                    guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                        throw CLIError("--claim \(item) is not name=value")
                    }
                    claims[String(item[..<equals]), default: []].append(String(item[item.index(after: equals)...]))
                }
                guard output == "text" || output == "json" else { throw CLIError("-o \(output): use text or json") }
                let request = AdminProtocol.ExplainRequest(
                    agent: agent, claims: claim.isEmpty ? nil : claims, actors: actor, route: route, method: method, tool: tool, resource: resource, prompt: prompt
                )
                let response: AdminProtocol.ExplainResponse = try await connection.client.post("/v1/explain", request)
                allowed = response.decision.allowed
                if output == "json" {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                    print(String(decoding: try encoder.encode(response), as: UTF8.self))
                } else {
                    print("\(allowed ? "ALLOW" : "DENY")  \(response.decision.reason) (revision \(response.revision))")
                }
            }
        } catch is ExitCode {
            throw ExitCode(2)
        }
        if !allowed { throw ExitCode(1) }
    }
}
