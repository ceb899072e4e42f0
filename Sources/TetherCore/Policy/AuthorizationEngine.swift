/// One MCP call as authorization sees it.
public struct MCPCall: Hashable, Sendable {
    /// What a call names, when its method names something.
    public enum Target: Hashable, Sendable, CustomStringConvertible {
        case tool(String), resource(String), prompt(String)

        public var description: String {
            switch self {
            case .tool(let name): "tool \(name)"
            case .resource(let uri): "resource \(uri)"
            case .prompt(let name): "prompt \(name)"
            }
        }
    }

    /// The calling agent: the proxy's own identity outbound, the peer
    /// certificate's inbound.
    public var agent: SPIFFEID
    /// The user's validated claims, each as a list of strings (a string
    /// claim is a list of one); nil when the call carries no user token,
    /// and then no `claims` condition matches.
    public var claims: [String: [String]]?
    /// The agents that delegated to `agent`, nearest first (from nested
    /// `act` claims); empty for a direct call.
    public var actors: [SPIFFEID]
    /// On the serving side: the user was authenticated, and `claims`
    /// conditions and delegation limits checked, by the calling proxy —
    /// which holds the user's token; this side never sees it. `claims`
    /// conditions then count as met in allow rules and unmet in deny rules,
    /// and delegation limits as met (the calling proxy enforced them).
    public var claimsCheckedByCaller: Bool = false
    /// The JSON-RPC method.
    public var method: String
    public var target: Target?

    public init(agent: SPIFFEID, claims: [String: [String]]? = nil, actors: [SPIFFEID] = [], method: String, target: Target? = nil) {
        self.agent = agent
        self.claims = claims
        self.actors = actors
        self.method = method
        self.target = target
    }
}

/// An authorization decision, as a value: the verdict, the policy and rule
/// that made it (none for the default deny), and a reason fit to show the
/// caller and the operator (names and patterns, never secrets).
public struct AuthorizationDecision: Hashable, Sendable, Codable, CustomStringConvertible {
    public enum Verdict: String, Hashable, Sendable, Codable {
        case allow, deny
    }

    public var verdict: Verdict
    /// The AuthorizationPolicy that decided; nil for the default deny.
    public var policy: String?
    /// The deciding rule's number in that policy's `rules`, counted from 1
    /// as operators count them (and as the reason and `explain` say).
    public var rule: Int?
    public var reason: String

    public var allowed: Bool { verdict == .allow }
    public var description: String { reason }
}

/// Evaluates AuthorizationPolicies for MCP calls — the one implementation
/// the proxies enforce and `tether-control explain` reports.
///
/// The policies guarding a call are those targeting the route it takes and
/// those targeting its backend. **Deny wins**: a matching deny rule denies.
/// Otherwise a matching allow rule (whose policy's delegation limits the
/// call meets) allows. Otherwise the call is denied — also when nothing
/// targets the route or backend at all: secure by default.
///
/// Conditions on tools, resources or prompts concern calls that name one
/// (`tools/call`, `resources/read`, `prompts/get`). On the listing methods
/// (`tools/list`, `resources/list`, `resources/templates/list`,
/// `prompts/list`) an allow rule's item condition is satisfied — the result
/// is then filtered item by item with `permits` — and a deny rule's item
/// condition does not match, so it hides items rather than the whole list.
///
/// ```swift
/// let engine = AuthorizationEngine(resources: view.resources.values.map(\.resource))
/// let decision = engine.decide(MCPCall(agent: id, method: "tools/call", target: .tool("get_issue")), route: "github")
/// ```
/// Where a call is decided: on the route, by the calling agent's proxy, or
/// at the backend, by the serving proxy (which never learns the route).
public enum AuthorizationScope: Hashable, Sendable {
    case route(String)
    case backend(String)
}

public struct AuthorizationEngine: Sendable {
    struct Policy: Sendable {
        var name: String
        var spec: AuthorizationPolicySpec
    }

    let routes: [String: RouteSpec]
    /// Route names by backend, sorted: the serving side's candidates.
    let routesByBackend: [String: [String]]
    let byRoute: [String: [Policy]]
    let byBackend: [String: [Policy]]

    public init(resources: some Sequence<Resource>) {
        self.init(index: ResourceIndex(resources))
    }

    public init(index: ResourceIndex) {
        var byRoute: [String: [Policy]] = [:], byBackend: [String: [Policy]] = [:]
        for (name, spec) in index.policies {
            let policy = Policy(name: name, spec: spec)
            for route in spec.targets.routes ?? [] { byRoute[route, default: []].append(policy) }
            for backend in spec.targets.backends ?? [] { byBackend[backend, default: []].append(policy) }
        }
        // Deterministic: by name, so the same config always reports the same rule.
        routes = index.routes
        routesByBackend = Dictionary(grouping: index.routes.keys.sorted(), by: { index.routes[$0]!.backend })
        self.byRoute = byRoute.mapValues { $0.sorted { $0.name < $1.name } }
        self.byBackend = byBackend.mapValues { $0.sorted { $0.name < $1.name } }
    }

    /// The listing methods, and the method that uses one listed item.
    public static let listings: [String: String] = [
        "tools/list": "tools/call", "resources/list": "resources/read",
        "resources/templates/list": "resources/read", "prompts/list": "prompts/get",
    ]

    /// The decision for `call` in `scope`: on its route on the calling side,
    /// which knows the route; at its backend on the serving side, which does
    /// not, and allows a call that one of the routes bringing this agent to
    /// the backend would allow.
    public func decide(_ call: MCPCall, in scope: AuthorizationScope) -> AuthorizationDecision {
        switch scope {
        case .route(let name): decide(call, route: name)
        case .backend(let name): decide(call, backend: name)
        }
    }

    /// Whether an item of a listing result may stay in it: whether the
    /// caller may use it (call the tool, read the resource, get the prompt).
    public func permits(_ item: MCPCall.Target, listing call: MCPCall, in scope: AuthorizationScope) -> Bool {
        decide(use(item, listing: call), in: scope).allowed
    }

    /// Whether `agent` may open or end a session in `scope` (the GET event
    /// stream, the DELETE): these carry no call, and each call on the session
    /// is still decided on its own. On a route: whether it serves the agent;
    /// at a backend: whether some route brings the agent there.
    public func mayOpenSession(_ agent: SPIFFEID, in scope: AuthorizationScope) -> Bool {
        switch scope {
        case .route(let name): routes[name]?.serves(agent) ?? false
        case .backend(let name): (routesByBackend[name] ?? []).contains { routes[$0]!.serves(agent) }
        }
    }

    /// An unknown route is denied.
    private func decide(_ call: MCPCall, route name: String) -> AuthorizationDecision {
        guard let route = routes[name] else {
            return AuthorizationDecision(verdict: .deny, policy: nil, rule: nil, reason: "there is no route \(name)")
        }
        guard route.serves(call.agent) else {
            return AuthorizationDecision(verdict: .deny, policy: nil, rule: nil, reason: "route \(name) is not for agent \(call.agent)")
        }
        let policies = (byRoute[name] ?? []) + (byBackend[route.backend] ?? [])
        return evaluate(call, policies: policies, scope: { "route \(name) or backend \(route.backend)" })
    }

    private func decide(_ call: MCPCall, backend: String) -> AuthorizationDecision {
        let candidates = (routesByBackend[backend] ?? []).filter { routes[$0]!.serves(call.agent) }
        guard !candidates.isEmpty else {
            return AuthorizationDecision(verdict: .deny, policy: nil, rule: nil, reason: "no route brings agent \(call.agent) to backend \(backend)")
        }
        var first: AuthorizationDecision?
        for route in candidates {
            let decision = decide(call, route: route)
            if decision.allowed { return decision }
            first = first ?? decision
        }
        return first!
    }

    func use(_ item: MCPCall.Target, listing call: MCPCall) -> MCPCall {
        var use = call
        use.method = Self.listings[call.method] ?? call.method
        use.target = item
        return use
    }

    /// `scope` names where the policies were looked up, for the default
    /// deny's reason only (built when needed: this runs on every call).
    func evaluate(_ call: MCPCall, policies: [Policy], scope: () -> String) -> AuthorizationDecision {
        for policy in policies where policy.spec.action == .deny {
            if let index = policy.spec.rules.firstIndex(where: { matches($0, call, action: .deny) }) {
                return AuthorizationDecision(verdict: .deny, policy: policy.name, rule: index + 1, reason: "denied by AuthorizationPolicy \(policy.name), rule \(index + 1)")
            }
        }
        var delegationRefusal: AuthorizationDecision?
        for policy in policies where policy.spec.action == .allow {
            guard let index = policy.spec.rules.firstIndex(where: { matches($0, call, action: .allow) }) else { continue }
            // On the serving side the chain, like the claims, was checked by the calling proxy.
            if !call.claimsCheckedByCaller, let problem = delegationProblem(policy.spec.delegation, call) {
                delegationRefusal = delegationRefusal ?? AuthorizationDecision(
                    verdict: .deny, policy: policy.name, rule: index + 1, reason: "AuthorizationPolicy \(policy.name) would allow it, but \(problem)"
                )
                continue
            }
            return AuthorizationDecision(verdict: .allow, policy: policy.name, rule: index + 1, reason: "allowed by AuthorizationPolicy \(policy.name), rule \(index + 1)")
        }
        if let delegationRefusal { return delegationRefusal }
        let what = [call.method, call.target?.description].compactMap { $0 }.joined(separator: " ")
        return AuthorizationDecision(verdict: .deny, policy: nil, rule: nil, reason: "no AuthorizationPolicy on \(scope()) allows \(what) for \(call.agent)")
    }

    func matchesWithoutClaims(_ rule: AuthorizationPolicySpec.Rule, _ call: MCPCall, action: AuthorizationPolicySpec.Action) -> Bool {
        var rule = rule
        rule.claims = nil
        return matches(rule, call, action: action)
    }

    func matches(_ rule: AuthorizationPolicySpec.Rule, _ call: MCPCall, action: AuthorizationPolicySpec.Action) -> Bool {
        if let agents = rule.agents, !agents.contains(where: { $0.matches(call.agent) }) { return false }
        if let required = rule.claims {
            if call.claims == nil, call.claimsCheckedByCaller { return action == .allow && matchesWithoutClaims(rule, call, action: action) }
            guard let claims = call.claims else { return false }
            for (name, values) in required {
                guard let present = claims[name], present.contains(where: values.contains) else { return false }
            }
        }
        if let methods = rule.methods, !methods.contains(where: { $0.matches(call.method) }) { return false }
        let listing = Self.listings[call.method]
        func item(_ patterns: [NamePattern]?, kind: String, name: String?) -> Bool {
            guard let patterns else { return true }
            if let name { return patterns.contains { $0.matches(name) } }
            // A listing: allow rules let it through (items are filtered), deny rules hide items instead.
            return listing == kind && action == .allow
        }
        var tool: String?, resource: String?, prompt: String?
        switch call.target {
        case .tool(let name)?: tool = name
        case .resource(let uri)?: resource = uri
        case .prompt(let name)?: prompt = name
        case nil: break
        }
        return item(rule.tools, kind: "tools/call", name: tool)
            && item(rule.resources, kind: "resources/read", name: resource)
            && item(rule.prompts, kind: "prompts/get", name: prompt)
    }

    /// Why the delegation chain exceeds the policy's limits, or nil.
    func delegationProblem(_ delegation: AuthorizationPolicySpec.Delegation?, _ call: MCPCall) -> String? {
        guard let delegation else { return nil }
        let depth = call.actors.count + 1
        if let maxDepth = delegation.maxDepth, depth > maxDepth {
            return "the delegation chain is \(depth) agents deep and it allows at most \(maxDepth)"
        }
        if let required = delegation.requiredActors, !call.actors.contains(where: { actor in required.contains { $0.matches(actor) } }) {
            return "no agent in the delegation chain matches its requiredActors"
        }
        return nil
    }
}
