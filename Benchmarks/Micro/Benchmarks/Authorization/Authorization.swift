import Benchmark
import MicroFixtures
import TetherCore

/// `AuthorizationEngine.decide` as the proxy calls it once per MCP call:
/// outbound by route, inbound by backend (which also finds the routes that
/// bring the caller there). The engine is compiled once, as on an xDS update.
let benchmarks: @Sendable () -> Void = {
    let engine = Mesh.engine
    func call(_ tool: String, agent: SPIFFEID = Mesh.agent) -> MCPCall {
        MCPCall(agent: agent, claims: Mesh.claims, method: "tools/call", target: .tool(tool))
    }
    let allowed = call("get_issue"), denied = call("delete_repository"), unmatched = call("run_workflow")
    // The verdicts the benchmarks are named after, checked once.
    guard engine.decide(allowed, in: .route("github")).allowed,
        engine.decide(denied, in: .route("github")).policy == "no-destructive",
        !engine.decide(unmatched, in: .route("github")).allowed, engine.decide(unmatched, in: .route("github")).policy == nil,
        engine.decide(allowed, in: .backend("github")).allowed
    else { fatalError("the benchmark mesh does not decide as expected") }

    Benchmark("decide route: allowed (get_issue)", configuration: .hotPath()) { benchmark in
        benchmark.measure { blackHole(engine.decide(allowed, in: .route("github"))) }
    }
    Benchmark("decide route: denied by deny rule (delete_*)", configuration: .hotPath()) { benchmark in
        benchmark.measure { blackHole(engine.decide(denied, in: .route("github"))) }
    }
    Benchmark("decide route: default deny (no rule matches)", configuration: .hotPath()) { benchmark in
        benchmark.measure { blackHole(engine.decide(unmatched, in: .route("github"))) }
    }
    Benchmark("decide backend (inbound): allowed", configuration: .hotPath()) { benchmark in
        benchmark.measure { blackHole(engine.decide(allowed, in: .backend("github"))) }
    }
}
