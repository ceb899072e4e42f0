/// Sends an agent's MCP calls on a path of its outbound listener to a backend,
/// authenticating the user and translating their token on the way.
public struct RouteSpec: Hashable, Sendable, Codable {
    /// Agents (by SPIFFE ID pattern) whose proxies receive this route.
    public var agents: [SPIFFEIDPattern]

    /// Whether this route serves `agent`: its proxy receives the route, and
    /// calls from that agent are decided on it.
    public func serves(_ agent: SPIFFEID) -> Bool {
        agents.contains { $0.matches(agent) }
    }
    /// Path on the outbound listener, e.g. `/github`; calls to it and below go
    /// to the backend.
    public var path: String
    /// Name of the MCPBackend.
    public var backend: String
    /// Name of the IdentityProvider that validates the user's bearer token.
    public var identityProvider: String?
    /// Name of the TokenExchange that mints the upstream token.
    public var tokenExchange: String?
    /// Upper bound for one request (a streamed response may last longer
    /// between events).
    public var timeout: ConfigDuration?

    public init(agents: [SPIFFEIDPattern], path: String, backend: String, identityProvider: String? = nil, tokenExchange: String? = nil, timeout: ConfigDuration? = nil) {
        self.agents = agents
        self.path = path
        self.backend = backend
        self.identityProvider = identityProvider
        self.tokenExchange = tokenExchange
        self.timeout = timeout
    }

    static func checkPath(_ path: String) -> String? {
        guard path.hasPrefix("/") else { return "must start with \"/\"" }
        guard path == "/" || !path.hasSuffix("/") else { return "must not end with \"/\" (it matches everything below it anyway)" }
        guard !path.contains("?"), !path.contains("#") else { return "must not contain a query or fragment" }
        guard !path.contains("//") else { return "must not contain empty segments (\"//\")" }
        let allowed = path.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "/-._~".unicodeScalars.contains($0)) }
        guard allowed else { return "may only contain letters, digits and / - . _ ~" }
        let segments = path.split(separator: "/")
        guard !segments.contains(where: { $0 == "." || $0 == ".." }) else { return "must not contain \".\" or \"..\" segments" }
        return nil
    }
}

extension RouteSpec {
    init?(reading spec: MappingReader) {
        let agents = spec.required("agents", hint: "list the SPIFFE ID patterns of the agents that use this route") {
            $0.uniqueList { $0.spiffeIDPattern() }
        }
        let path = spec.required("path", hint: "the outbound listener path, e.g. /github") { node -> String? in
            guard let path = node.string() else { return nil }
            if let problem = Self.checkPath(path) {
                node.report("\"\(path)\" \(problem)")
                return nil
            }
            return path
        }
        let backend = spec.required("backend", hint: "the name of an MCPBackend") { $0.resourceName() }
        let identityProvider = spec.optional("identityProvider") { $0.resourceName() }
        let tokenExchange = spec.optional("tokenExchange") { $0.resourceName() }
        let timeout = spec.optional("timeout") { $0.duration(max: .seconds(3600)) }
        guard let agents, let path, let backend else { return nil }
        self.init(agents: agents, path: path, backend: backend, identityProvider: identityProvider, tokenExchange: tokenExchange, timeout: timeout)
    }
}

extension NodeReader {
    /// A reference to another resource by name.
    func resourceName() -> String? {
        guard let name = string() else { return nil }
        if let problem = ResourceMetadata.checkName(name) {
            report("\"\(name)\" is not a valid resource name: it \(problem)")
            return nil
        }
        return name
    }
}
