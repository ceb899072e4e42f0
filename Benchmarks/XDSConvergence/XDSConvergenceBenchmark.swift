import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization
import TetherXDS

/// Control-plane convergence: one `tether-control` — or `--replicas R` of them
/// on a shared PostgreSQL store — and N simulated proxies (delta ADS streams,
/// each its own SPIFFE ID, all subscribed to every type, spread round-robin
/// over the replicas) in this separate process. Applies `changes` route
/// changes one by one on the first replica and reports how long until every
/// proxy has the new route (each ACKs on receipt), and each replica's RSS
/// and RSS per connected stream.
///
///   tether-xds-bench --control-binary .build/release/tether-control --clients 1000
///   tether-xds-bench --clients 1000 --replicas 3 --store postgres://… --kek FILE
@main
struct XDSConvergenceBenchmark {
    static func main() async throws {
        let arguments = Arguments(CommandLine.arguments.dropFirst())
        let controlBinary = arguments.value("--control-binary") ?? ".build/release/tether-control"
        let clients = Int(arguments.value("--clients") ?? "10") ?? 10
        let changes = Int(arguments.value("--changes") ?? "20") ?? 20
        let streamsPerConnection = Int(arguments.value("--streams-per-connection") ?? "100") ?? 100
        let replicas = Int(arguments.value("--replicas") ?? "1") ?? 1
        var shared: [String] = []
        if let store = arguments.value("--store") {
            shared = ["--store", store, "--key-encryption-key-file", arguments.value("--kek") ?? "kek"]
        } else if replicas > 1 {
            throw BenchmarkError("--replicas needs --store postgres://… and --kek FILE")
        }

        let controls = try (0..<replicas).map { _ in try ControlPlane(binary: controlBinary, store: shared) }
        defer { controls.forEach { $0.stop() } }
        let control = controls[0]
        try control.apply(mesh(timeoutSeconds: 1))
        let baseline = controls.map { $0.rssKiB() }

        let tracker = Tracker(clients: clients)
        let ports = controls.map(\.xdsPort)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for connection in 0..<((clients + streamsPerConnection - 1) / streamsPerConnection) {
                let ids = (connection * streamsPerConnection)..<min(clients, (connection + 1) * streamsPerConnection)
                let port = ports[connection % ports.count]
                group.addTask { try await runConnection(port: port, clients: ids, tracker: tracker) }
            }
            group.addTask {
                defer { tracker.finish() }
                try await tracker.waitForAll(changeCount: 1, timeout: .seconds(120))
                let connected = controls.map { $0.rssKiB() }
                var allAcked: [Double] = []
                var perProxy: [Double] = []
                for change in 1...changes {
                    let start = ContinuousClock.now
                    try control.apply(mesh(timeoutSeconds: change + 1))
                    try await tracker.waitForAll(changeCount: change + 1, timeout: .seconds(60))
                    let arrivals = tracker.arrivals(change: change + 1).map { ($0 - start).seconds * 1000 }
                    allAcked.append(arrivals.max() ?? 0)
                    perProxy += arrivals
                }
                let perStream = Double(zip(connected, baseline).map { $0 - $1 }.reduce(0, +)) / Double(clients)
                let mib = { (values: [Int]) in values.map { String(format: "%.1f", Double($0) / 1024) }.joined(separator: "/") }
                print(String(format: "replicas=%d clients=%d changes=%d all-acked-ms p50=%.1f p99=%.1f max=%.1f per-proxy-ms p50=%.1f p99=%.1f control-rss-mib baseline=%@ connected=%@ per-stream-kib=%.1f",
                    replicas, clients, changes, percentile(allAcked, 0.5), percentile(allAcked, 0.99), allAcked.max() ?? 0,
                    percentile(perProxy, 0.5), percentile(perProxy, 0.99), mib(baseline), mib(connected), perStream))
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// One HTTP/2 connection carrying a delta ADS stream per simulated proxy.
    static func runConnection(port: Int, clients: Range<Int>, tracker: Tracker) async throws {
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
        try await withGRPCClient(transport: transport) { client in
            let ads = Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Client(wrapping: client)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for id in clients {
                    group.addTask { try await runProxy(id, ads: ads, tracker: tracker) }
                }
                try await tracker.waitUntilFinished()
                group.cancelAll()
            }
        }
    }

    static func runProxy(_ id: Int, ads: Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Client<HTTP2ClientTransport.Posix>, tracker: Tracker) async throws {
        let (outgoing, send) = AsyncStream<Envoy_Service_Discovery_V3_DeltaDiscoveryRequest>.makeStream()
        for kind in TetherTypes.pushOrder {
            var request = Envoy_Service_Discovery_V3_DeltaDiscoveryRequest()
            request.node.id = "spiffe://bench.example/agent/a\(id)"
            request.typeURL = TetherTypes.typeURL(kind)
            request.resourceNamesSubscribe = ["*"]
            send.yield(request)
        }
        try await ads.deltaAggregatedResources { writer in
            for await request in outgoing { try await writer.write(request) }
        } onResponse: { response in
            defer { send.finish() }
            for try await message in response.messages {
                if message.typeURL == TetherTypes.typeURL(.route), let route = message.resources.first {
                    tracker.received(client: id, version: route.version)
                }
                var ack = Envoy_Service_Discovery_V3_DeltaDiscoveryRequest()
                ack.typeURL = message.typeURL
                ack.responseNonce = message.nonce
                send.yield(ack)
            }
        }
    }

    static func mesh(timeoutSeconds: Int) -> String {
        """
        apiVersion: tether.dev/v1alpha1
        kind: MCPBackend
        metadata: {name: github}
        spec:
          inMesh: {spiffeID: "spiffe://bench.example/mcp/github", address: "10.0.0.5:15006", upstream: "http://127.0.0.1:8080/mcp"}
        ---
        apiVersion: tether.dev/v1alpha1
        kind: Credential
        metadata: {name: pat}
        spec: {value: bench-secret}
        ---
        apiVersion: tether.dev/v1alpha1
        kind: TokenExchange
        metadata: {name: pat}
        spec: {type: credential, credential: pat}
        ---
        apiVersion: tether.dev/v1alpha1
        kind: Route
        metadata: {name: github}
        spec:
          agents: ["spiffe://bench.example/agent/*"]
          path: /github
          backend: github
          tokenExchange: pat
          timeout: \(timeoutSeconds)s
        ---
        apiVersion: tether.dev/v1alpha1
        kind: AuthorizationPolicy
        metadata: {name: read-only}
        spec:
          targets: {routes: [github]}
          action: allow
          rules: [{methods: [tools/call], tools: ["get_*"]}]
        """
    }
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// Which route versions each simulated proxy has received, and when.
final class Tracker: Sendable {
    struct State {
        /// Per client: the distinct route versions in arrival order, with times.
        var arrivals: [[(version: String, at: ContinuousClock.Instant)]]
        var finished = false
    }

    private let state: Mutex<State>

    init(clients: Int) {
        state = Mutex(State(arrivals: Array(repeating: [], count: clients)))
    }

    func received(client: Int, version: String) {
        state.withLock { state in
            if state.arrivals[client].last?.version != version {
                state.arrivals[client].append((version, .now))
            }
        }
    }

    /// Arrival times of the `change`-th distinct version (1-based) at every client.
    func arrivals(change: Int) -> [ContinuousClock.Instant] {
        state.withLock { $0.arrivals.compactMap { $0.count >= change ? $0[change - 1].at : nil } }
    }

    func waitForAll(changeCount: Int, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while state.withLock({ state in state.arrivals.contains { $0.count < changeCount } }) {
            guard ContinuousClock.now < deadline else {
                let behind = state.withLock { $0.arrivals.filter { $0.count < changeCount }.count }
                throw BenchmarkError("\(behind) proxies did not receive change \(changeCount) in time")
            }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    func finish() {
        state.withLock { $0.finished = true }
    }

    func waitUntilFinished() async throws {
        while !state.withLock({ $0.finished }) {
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// A `tether-control run` with xDS on a free loopback port.
final class ControlPlane: Sendable {
    let binary: String
    let directory: String
    let xdsPort: Int
    let process: Process

    /// `store`: the `--store` arguments of a replica; none for SQLite.
    init(binary: String, store: [String]) throws {
        self.binary = binary
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tether-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        xdsPort = Int.random(in: 20000...40000)
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["run", "--data-dir", directory + "/data", "--insecure-xds", "--xds-address", "127.0.0.1:\(xdsPort)", "--log-level", "warning"] + store
        try process.run()
        for _ in 0..<200 {
            if (try? run(["history"])) != nil { return }
            usleep(50_000)
        }
        throw BenchmarkError("tether-control did not start")
    }

    @discardableResult
    func run(_ arguments: [String], input: String? = nil) throws -> String {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: binary)
        child.arguments = arguments + ["--data-dir", directory + "/data"]
        let output = Pipe(), stdin = Pipe()
        child.standardOutput = output
        child.standardError = output
        child.standardInput = stdin
        try child.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try stdin.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        child.waitUntilExit()
        guard child.terminationStatus == 0 else { throw BenchmarkError(String(decoding: data, as: UTF8.self)) }
        return String(decoding: data, as: UTF8.self)
    }

    func apply(_ yaml: String) throws {
        try run(["apply", "-f", "-"], input: yaml)
    }

    /// Resident set size of the control plane, KiB (VmRSS).
    func rssKiB() -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

struct Arguments {
    var values: [String]
    init(_ values: ArraySlice<String>) { self.values = Array(values) }
    func value(_ name: String) -> String? {
        guard let index = values.firstIndex(of: name), index + 1 < values.count else { return nil }
        return values[index + 1]
    }
}

struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
