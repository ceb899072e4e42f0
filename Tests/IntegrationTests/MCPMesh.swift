import Foundation
import TetherTestSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The official MCP Python SDK's server (`mcp_peer.py server`) on a free
/// loopback port. Killed when released.
final class MCPServerProcess: @unchecked Sendable {
    // @unchecked: set once in init, read-only after.
    let port: Int
    let logPath: String
    private let process: Process

    /// `tls`: serve HTTPS with this certificate and key (PEM files).
    /// `role`: "server", or "token-service" with its `extra` arguments.
    init(root: URL, tls: (certificate: String, key: String)? = nil, role: String = "server", extra: [String] = []) throws {
        port = freePort()
        logPath = root.appendingPathComponent("mcp-server-\(port).log").path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", mcpPeerScript, role, "--port", "\(port)"] + (tls.map { ["--tls-cert", $0.certificate, "--tls-key", $0.key] } ?? []) + extra
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while !isListening(port) {
            guard process.isRunning, Date() < deadline else {
                throw IntegrationError("the MCP SDK server did not start: \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")")
            }
            usleep(50_000)
        }
    }

    deinit { stop() }

    /// Kills the server (a backend gone down).
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
}

/// Runs blocking work (waiting for a process or a socket) on a Dispatch
/// thread, never on one of the few threads Swift concurrency runs every test
/// on: blocking those starves unrelated tests (2 on a 2-core machine).
func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}

let mcpPeerScript = repositoryRoot.appendingPathComponent("Tests/IntegrationTests/mcp_peer.py").path

/// A whole mesh on loopback: a control plane, an MCP SDK server behind its
/// serving proxy (spiffe://example.org/mcp/github), and an agent's proxy
/// (spiffe://example.org/agent/triage) whose outbound listener routes
/// `/github` to it over mTLS HTTP/2.
final class MCPMesh: @unchecked Sendable {
    // @unchecked: set once in init, read-only after.
    let control: ControlPlaneProcess
    let server: MCPServerProcess
    let agentProxy: ProxyProcess
    let serverProxy: ProxyProcess
    static let agent = "spiffe://example.org/agent/triage"
    static let serving = "spiffe://example.org/mcp/github"

    /// The agent's MCP endpoint.
    var url: String { "http://127.0.0.1:\(agentProxy.outboundPort)/github" }

    init(proxyArguments: [String] = []) async throws {
        // Process starts wait for their ports: off the concurrency pool.
        let control = try await offPool { try ControlPlaneProcess() }
        self.control = control
        server = try await offPool { try MCPServerProcess(root: control.root) }
        serverProxy = try await offPool { try Self.join(control, Self.serving, arguments: proxyArguments) }
        agentProxy = try await offPool { try Self.join(control, Self.agent, arguments: proxyArguments) }
        let file = try control.file("mesh.yaml", config(allowAdd: true))
        let applied = try await offPool { try control.cli(["apply", "-f", file]) }
        guard applied.status == 0 else { throw IntegrationError("apply failed: \(applied.stderr)") }
        for proxy in [agentProxy, serverProxy] {
            try await proxy.waitUntil("the proxy to be ready with the mesh config", seconds: 20) {
                let ready = try await proxy.get("/ready").status == 200
                let versions = try await proxy.versions()
                return ready && versions["AuthorizationPolicy/github-no-writes"] != nil && versions["AuthorizationPolicy/github-tools"] != nil
            }
        }
    }

    /// A proxy for `id`, joined with a token from `control`; `replicas` is its `--control`.
    static func join(_ control: ControlPlaneProcess, _ id: String, arguments: [String], replicas: String? = nil) throws -> ProxyProcess {
        let created = try control.cli(["token", "create", "--spiffe-id", id])
        let pin = created.stderr.split(whereSeparator: \.isWhitespace).first { $0.hasPrefix("sha256:") }.map(String.init) ?? ""
        return try ProxyProcess(
            xdsPort: control.xdsPort, root: control.root,
            identity: ["--bootstrap", "127.0.0.1:\(control.bootstrapPort)", "--join-token", created.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "--ca-hash", pin],
            arguments: ["--token-service", "127.0.0.1:\(control.tokenPort)"] + arguments, control: replicas
        )
    }

    /// The mesh config; `allowAdd` decides whether the agent may call `add`.
    func config(allowAdd: Bool, routeTimeout: String? = nil) -> String {
        Self.config(serverProxy: serverProxy, serverPort: server.port, allowAdd: allowAdd, routeTimeout: routeTimeout)
    }

    /// The mesh config for a serving proxy in front of the SDK server on `serverPort`.
    static func config(serverProxy: ProxyProcess, serverPort: Int, allowAdd: Bool, routeTimeout: String? = nil) -> String {
        """
        apiVersion: tether.dev/v1alpha1
        kind: MCPBackend
        metadata: {name: github}
        spec:
          inMesh:
            spiffeID: \(Self.serving)
            address: 127.0.0.1:\(serverProxy.inboundPort)
            upstream: http://127.0.0.1:\(serverPort)/mcp
        ---
        apiVersion: tether.dev/v1alpha1
        kind: Route
        metadata: {name: github}
        spec:
          agents: ["\(Self.agent)"]
          path: /github
          backend: github\(routeTimeout.map { "\n  timeout: \($0)" } ?? "")
        ---
        apiVersion: tether.dev/v1alpha1
        kind: AuthorizationPolicy
        metadata: {name: github-tools}
        spec:
          targets: {routes: [github]}
          action: allow
          rules:
            - agents: ["\(Self.agent)"]
              methods: [initialize, ping, server/discover, "notifications/*", tools/list]
            - agents: ["\(Self.agent)"]
              methods: [tools/call]
              tools: [echo, slow_count, pause, delete_repo\(allowAdd ? ", add" : "")]
        ---
        apiVersion: tether.dev/v1alpha1
        kind: AuthorizationPolicy
        metadata: {name: github-no-writes}
        spec:
          targets: {backends: [github]}
          action: deny
          rules:
            - methods: [tools/call]
              tools: ["delete_*"]
        """
    }

    /// The users' IdentityProvider, `corp-sso`, with the test provider's keys (one document).
    static func corpSSO(_ idp: TestIdentityProvider) -> String {
        """
        {apiVersion: tether.dev/v1alpha1, kind: IdentityProvider, metadata: {name: corp-sso}, spec: {issuer: "\(idp.issuer)", \
        audiences: [tether-agents], jwks: {inline: '\(idp.jwks)'}, allowedAlgorithms: [ES256, RS256], subjectClaim: email}}
        """
    }

    /// Runs the SDK's client (`mcp_peer.py client`) against `url`.
    func sdkClient(generation: String, calls: [(String, String)], url: String? = nil) async throws -> [String: Any] {
        let arguments = ["python3", mcpPeerScript, "client", "--url", url ?? self.url, "--generation", generation]
            + calls.flatMap { ["--call", $0.0, "--args", $0.1] }
        let result = try await runTool(arguments, log: control.root.appendingPathComponent("client-\(UUID().uuidString.prefix(8)).log").path, seconds: 60)
        let line = result.output.split(separator: "\n").last { $0.hasPrefix("{") } ?? ""
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw IntegrationError("the SDK client printed no JSON (exit \(result.status)): \(result.output)\nagent proxy:\n\(agentProxy.log)\nserving proxy:\n\(serverProxy.log)")
        }
        return object
    }
}

/// One raw HTTP exchange with the outbound listener.
struct RawResponse {
    var status: Int
    var headers: [String: String]
    var body: String

    /// The JSON-RPC error code in the body, if any.
    var errorCode: Int? {
        let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        return (object?["error"] as? [String: Any])?["code"] as? Int
    }
}

/// An MCP 2026-07-28 (stateless) request body with the `_meta` the SDK
/// server requires.
func modernRequest(id: Int, method: String, params: [String: Any] = [:]) -> Data {
    var params = params
    params["_meta"] = [
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": ["name": "tether-tests", "version": "1"],
        "io.modelcontextprotocol/clientCapabilities": [String: Any](),
    ] as [String: Any]
    let object: [String: Any] = ["jsonrpc": "2.0", "id": id, "method": method, "params": params]
    return try! JSONSerialization.data(withJSONObject: object)
}

/// POSTs `body` with the 2026-07-28 headers (`Mcp-Method`, `Mcp-Name`
/// unless overridden).
func post(_ url: String, body: Data, method: String, name: String? = nil, headers: [String: String] = [:]) async throws -> RawResponse {
    var request = URLRequest(url: URL(string: url)!)
    request.httpMethod = "POST"
    request.httpBody = body
    request.timeoutInterval = 30
    request.setValue("application/json", forHTTPHeaderField: "Content-Type")
    request.setValue("application/json, text/event-stream", forHTTPHeaderField: "Accept")
    request.setValue("2026-07-28", forHTTPHeaderField: "MCP-Protocol-Version")
    request.setValue(method, forHTTPHeaderField: "Mcp-Method")
    if let name { request.setValue(name, forHTTPHeaderField: "Mcp-Name") }
    for (field, value) in headers { request.setValue(value, forHTTPHeaderField: field) }
    let (data, response) = try await URLSession.shared.data(for: request)
    let http = response as? HTTPURLResponse
    var fields: [String: String] = [:]
    for (key, value) in http?.allHeaderFields ?? [:] { fields["\(key)".lowercased()] = "\(value)" }
    return RawResponse(status: http?.statusCode ?? 0, headers: fields, body: String(decoding: data, as: UTF8.self))
}
