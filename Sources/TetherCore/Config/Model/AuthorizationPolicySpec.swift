/// Allows or denies MCP calls on routes or backends. Rules are alternatives:
/// a policy applies to a call when any rule matches, and a rule matches when
/// every condition it sets matches (each list is "any of"). Deny wins over
/// allow; a target with policies denies what no allow rule covers.
public struct AuthorizationPolicySpec: Hashable, Sendable, Codable {
    public enum Action: String, CaseIterable, Hashable, Sendable, Codable {
        case allow, deny
    }

    public struct Targets: Hashable, Sendable, Codable {
        /// Route names; the policy is enforced by the calling agent's proxy.
        public var routes: [String]?
        /// MCPBackend names; enforced for every caller of the backend.
        public var backends: [String]?
    }

    public struct Rule: Hashable, Sendable, Codable {
        /// The calling agent's SPIFFE ID.
        public var agents: [SPIFFEIDPattern]?
        /// User claims: each named claim must have one of the listed values
        /// (for list claims such as `groups`, one element must).
        public var claims: [String: [String]]?
        /// JSON-RPC methods, e.g. `tools/call`, `tools/*`.
        public var methods: [NamePattern]?
        /// Tool names (for `tools/call` and in `tools/list` results).
        public var tools: [NamePattern]?
        /// Resource URIs (for `resources/read` and in `resources/list`).
        public var resources: [NamePattern]?
        /// Prompt names (for `prompts/get` and in `prompts/list`).
        public var prompts: [NamePattern]?
    }

    public struct Delegation: Hashable, Sendable, Codable {
        /// How many agents may stand between the user and the call: 1 allows a
        /// direct call only, 2 one supervisor before it, and so on.
        public var maxDepth: Int?
        /// At least one actor in the chain must match.
        public var requiredActors: [SPIFFEIDPattern]?
    }

    public var targets: Targets
    public var action: Action
    public var rules: [Rule]
    public var delegation: Delegation?

    /// Every method an MCP client or server may send, both generations
    /// (2025-11-25 and 2026-07-28); method patterns must match at least one.
    public static let knownMethods: [String] = [
        "initialize", "ping", "server/discover",
        "tools/list", "tools/call",
        "resources/list", "resources/read", "resources/templates/list", "resources/subscribe", "resources/unsubscribe",
        "prompts/list", "prompts/get",
        "completion/complete", "logging/setLevel",
        "tasks/get", "tasks/list", "tasks/result", "tasks/cancel",
        "notifications/initialized", "notifications/cancelled", "notifications/progress",
        "notifications/roots/list_changed", "notifications/message",
    ]
}

extension AuthorizationPolicySpec {
    init?(reading spec: MappingReader) {
        let targets = spec.required("targets", hint: "name the routes and/or backends this policy guards") { node -> Targets? in
            guard let fields = node.mapping() else { return nil }
            defer { fields.finish() }
            let routes = fields.optional("routes") { $0.uniqueList { $0.resourceName() } }
            let backends = fields.optional("backends") { $0.uniqueList { $0.resourceName() } }
            if !fields.has("routes") && !fields.has("backends") {
                fields.report("set routes, backends or both")
                return nil
            }
            return Targets(routes: routes, backends: backends)
        }
        let action = spec.required("action", hint: "allow or deny") { node -> Action? in
            guard let text = node.string() else { return nil }
            guard let action = Action(rawValue: text) else {
                node.report("\"\(text)\" is not an action; use allow or deny")
                return nil
            }
            return action
        }
        let rules = spec.required("rules", hint: "list at least one rule") { $0.list { Rule(reading: $0) } }
        let delegation = spec.optional("delegation") { node -> Delegation? in
            guard let fields = node.mapping() else { return nil }
            defer { fields.finish() }
            let maxDepth = fields.optional("maxDepth") { $0.int(in: 1...16) }
            let required = fields.optional("requiredActors") { $0.uniqueList { $0.spiffeIDPattern() } }
            if !fields.has("maxDepth") && !fields.has("requiredActors") {
                fields.report("set maxDepth, requiredActors or both, or remove delegation")
            }
            return Delegation(maxDepth: maxDepth, requiredActors: required)
        }
        guard let targets, let action, let rules else { return nil }
        self.init(targets: targets, action: action, rules: rules, delegation: delegation)
    }
}

extension AuthorizationPolicySpec.Rule {
    init?(reading node: NodeReader) {
        guard let fields = node.mapping() else { return nil }
        defer { fields.finish() }
        agents = fields.optional("agents") { $0.uniqueList { $0.spiffeIDPattern() } }
        claims = fields.optional("claims") { node -> [String: [String]]? in
            guard let claims = node.mapping() else { return nil }
            var result: [String: [String]] = [:]
            for name in claims.keys {
                result[name] = claims.optional(name) { node -> [String]? in
                    // A single value may be written without brackets.
                    if case .scalar = node.node, let value = node.string() { return [value] }
                    return node.uniqueList { $0.string() }
                }
            }
            if result.isEmpty { node.report("name at least one claim, e.g. groups: [sre]") }
            return result
        }
        methods = fields.optional("methods") { node in
            node.uniqueList { node -> NamePattern? in
                guard let pattern = node.namePattern() else { return nil }
                guard AuthorizationPolicySpec.knownMethods.contains(where: pattern.matches) else {
                    node.report("\"\(pattern)\" matches no MCP method; e.g. tools/call, tools/list, resources/read, prompts/get, or tools/*")
                    return nil
                }
                return pattern
            }
        }
        tools = fields.optional("tools") { $0.uniqueList { $0.namePattern() } }
        resources = fields.optional("resources") { $0.uniqueList { $0.namePattern() } }
        prompts = fields.optional("prompts") { $0.uniqueList { $0.namePattern() } }
        let conditions = ["agents", "claims", "methods", "tools", "resources", "prompts"]
        if !conditions.contains(where: fields.has) {
            fields.report("a rule needs at least one condition (\(conditions.joined(separator: ", "))); to match every call write methods: [\"*\"]")
        }
    }
}
