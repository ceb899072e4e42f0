import Benchmark
import Foundation
import MicroFixtures
import TetherCore

/// The request side of every POST (`MCPRequestInspector.inspect`, called
/// from `MCPProxyHandler` with the whole body and a header lookup), and the
/// response side of every listing (`MCPListFilter.filter` with the
/// engine's `permits`).
let benchmarks: @Sendable () -> Void = {
    func inspect(_ post: MCPPost, _ benchmark: Benchmark) {
        benchmark.measure { blackHole(MCPRequestInspector.inspect(body: post.body, header: post.header)) }
    }
    // Fail loudly on fixtures the inspector refuses: a benchmark of the error path would mislead.
    for post in [Messages.toolsCall20260728, Messages.toolsCall20251125, Messages.toolsCallLarge20260728] {
        guard case .success = MCPRequestInspector.inspect(body: post.body, header: post.header) else { fatalError("fixture refused: \(post)") }
    }

    Benchmark("inspect tools/call 2026-07-28 (headers checked)", configuration: .hotPath()) { inspect(Messages.toolsCall20260728, $0) }
    Benchmark("inspect tools/call 2025-11-25", configuration: .hotPath()) { inspect(Messages.toolsCall20251125, $0) }
    Benchmark("inspect tools/call 2026-07-28, 4 KiB arguments", configuration: .hotPath()) { inspect(Messages.toolsCallLarge20260728, $0) }

    // A tools/list of 50 tools, filtered for the triage agent on route github:
    // 20 of the 50 are hidden, so the result is re-serialized.
    let engine = Mesh.engine
    let listing = MCPCall(agent: Mesh.agent, claims: Mesh.claims, method: "tools/list")
    let keep: (MCPCall.Target) -> Bool = { engine.permits($0, listing: listing, in: .route("github")) }
    let mixed = Messages.toolsList()
    let readOnly = Messages.toolsList(names: Messages.toolNames.filter { keep(.tool($0)) })
    guard MCPListFilter.filter(response: mixed, method: "tools/list", keep: keep) != nil,
        MCPListFilter.filter(response: readOnly, method: "tools/list", keep: keep) == nil
    else { fatalError("the tools/list fixtures do not filter as expected") }

    Benchmark("filter tools/list, 50 tools, 20 hidden", configuration: .hotPath(.one)) { benchmark in
        benchmark.measure { blackHole(MCPListFilter.filter(response: mixed, method: "tools/list", keep: keep)) }
    }
    Benchmark("filter tools/list, 30 tools, all shown", configuration: .hotPath(.one)) { benchmark in
        benchmark.measure { blackHole(MCPListFilter.filter(response: readOnly, method: "tools/list", keep: keep)) }
    }
}
