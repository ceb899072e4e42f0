import ArgumentParser
import Foundation
import TetherControlPlane
import TetherCore

struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show stored resources (credential values are never shown).",
        discussion: """
            KIND is a kind (Route), its plural (routes), a short name (backend, idp, policy, \
            cred) or `all`.

              tether-control get routes
              tether-control get route github -o yaml
              tether-control get all -o json
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, yaml, json
    }

    @Argument(help: "The kind to list, or `all`.")
    var kind: String
    @Argument(help: "A resource name, to show just that one.")
    var name: String?
    @Option(name: [.customShort("o"), .long], help: "Output format: table, yaml or json.")
    var output: Format = .table
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await reportingErrors {
            var query: [String: String] = [:]
            if kind.lowercased() != "all" {
                guard let resolved = ResourceKind(commandLineName: kind) else {
                    throw CLIError("unknown kind \"\(kind)\"; use one of \(ResourceKind.allCases.map(\.rawValue).joined(separator: ", ")) or all")
                }
                query["kind"] = resolved.rawValue
            } else if name != nil {
                throw CLIError("give a kind to look up a resource by name, e.g. get route \(name!)")
            }
            if let name { query["name"] = name }
            let response: AdminProtocol.GetResponse = try await connection.client.get("/v1/resources", query: query)
            switch output {
            case .yaml:
                print(ConfigEncoding.yaml(response.resources), terminator: "")
            case .json:
                print(ConfigEncoding.json(response.resources, single: name != nil), terminator: "")
            case .table:
                if response.resources.isEmpty {
                    printError("No resources found.")
                    return
                }
                print(ResourceTable.render(response.resources, revisions: response.resourceRevisions, showKind: query["kind"] == nil), terminator: "")
            }
        }
    }
}

/// Aligned columns, one row a resource, with a few telling fields per kind.
enum ResourceTable {
    static func render(_ resources: [Resource], revisions: [String: Int64], showKind: Bool) -> String {
        var output = ""
        let groups = Dictionary(grouping: resources, by: \.kind).sorted { $0.key < $1.key }
        for (index, (kind, items)) in groups.enumerated() {
            var rows = [(showKind ? ["KIND"] : []) + ["NAME"] + columns(kind) + ["REVISION"]]
            for resource in items {
                rows.append((showKind ? [kind.rawValue] : []) + [resource.metadata.name] + values(resource) + [revisions[resource.id.description].map(String.init) ?? "-"])
            }
            if index > 0 { output += "\n" }
            output += align(rows)
        }
        return output
    }

    static func columns(_ kind: ResourceKind) -> [String] {
        switch kind {
        case .mcpBackend: ["TYPE", "TARGET"]
        case .route: ["PATH", "BACKEND", "AGENTS"]
        case .identityProvider: ["ISSUER", "JWKS"]
        case .tokenExchange: ["TYPE", "AUDIENCE"]
        case .authorizationPolicy: ["ACTION", "TARGETS", "RULES"]
        case .credential: ["DESCRIPTION"]
        case .trustBundle: ["TRUST DOMAIN"]
        }
    }

    static func values(_ resource: Resource) -> [String] {
        switch resource.spec {
        case .mcpBackend(.inMesh(let backend)): ["in-mesh", "\(backend.spiffeID) @ \(backend.address)"]
        case .mcpBackend(.external(let backend)): ["external", backend.url.description]
        case .route(let route): [route.path, route.backend, route.agents.map(\.description).joined(separator: ",")]
        case .identityProvider(let idp):
            switch idp.jwks {
            case .inline: [idp.issuer.description, "inline"]
            case .file(let path): [idp.issuer.description, path]
            case .url(let url): [idp.issuer.description, url.description]
            }
        case .tokenExchange(let exchange): [exchange.type.rawValue, exchange.audience ?? "-"]
        case .authorizationPolicy(let policy):
            [
                policy.action.rawValue,
                ((policy.targets.routes ?? []).map { "route/\($0)" } + (policy.targets.backends ?? []).map { "backend/\($0)" }).joined(separator: ","),
                "\(policy.rules.count)",
            ]
        case .credential(let credential): [credential.description ?? "-"]
        case .trustBundle(let bundle): [bundle.trustDomain]
        }
    }

    static func align(_ rows: [[String]]) -> String {
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "   ")
        }.joined(separator: "\n") + "\n"
    }
}
