/// The kinds of config an operator applies. The raw value is the `kind:` field.
public enum ResourceKind: String, CaseIterable, Hashable, Comparable, Sendable, Codable {
    case mcpBackend = "MCPBackend"
    case route = "Route"
    case identityProvider = "IdentityProvider"
    case tokenExchange = "TokenExchange"
    case authorizationPolicy = "AuthorizationPolicy"
    case credential = "Credential"
    /// Published by the control plane, never applied (see `TrustBundleSpec`).
    case trustBundle = "TrustBundle"

    /// Resolves what an operator types on the command line: the kind
    /// (`Route`), lowercase, plural, or a short name (`backend`, `idp`, `policy`).
    public init?(commandLineName name: String) {
        let lowered = name.lowercased()
        let singular = lowered.hasSuffix("s") && lowered != "mcpbackends" ? String(lowered.dropLast()) : lowered
        for kind in ResourceKind.allCases {
            if kind.rawValue.lowercased() == singular || kind.rawValue.lowercased() + "s" == lowered || kind.shortNames.contains(singular) {
                self = kind
                return
            }
        }
        return nil
    }

    var shortNames: [String] {
        switch self {
        case .mcpBackend: ["backend", "mcpbackend"]
        case .route: ["route"]
        case .identityProvider: ["idp"]
        case .tokenExchange: ["tokenexchange", "tx"]
        case .authorizationPolicy: ["policy", "policie", "authz"]
        case .credential: ["cred"]
        case .trustBundle: ["bundle", "trustbundle"]
        }
    }

    /// Order in which kinds are listed and applied: referenced kinds first.
    public var order: Int {
        switch self {
        case .credential: 0
        case .identityProvider: 1
        case .tokenExchange: 2
        case .mcpBackend: 3
        case .route: 4
        case .authorizationPolicy: 5
        case .trustBundle: 6
        }
    }

    public static func < (lhs: ResourceKind, rhs: ResourceKind) -> Bool {
        lhs.order < rhs.order
    }
}

/// A resource's identity: kind and name are unique together.
public struct ResourceID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var kind: ResourceKind
    public var name: String

    public init(_ kind: ResourceKind, _ name: String) {
        self.kind = kind
        self.name = name
    }

    public var description: String { "\(kind.rawValue)/\(name)" }

    public static func < (lhs: ResourceID, rhs: ResourceID) -> Bool {
        (lhs.kind, lhs.name) < (rhs.kind, rhs.name)
    }
}

public struct ResourceMetadata: Hashable, Sendable, Codable {
    public var name: String
    public var labels: [String: String]?

    public init(name: String, labels: [String: String]? = nil) {
        self.name = name
        self.labels = labels
    }

    /// Names are DNS-label-like so they are safe in URLs, metrics and logs.
    public static func checkName(_ name: String) -> String? {
        guard !name.isEmpty else { return "must not be empty" }
        guard name.utf8.count <= 63 else { return "is longer than 63 characters" }
        let allowed = name.utf8.allSatisfy { ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
        guard allowed, let first = name.first, let last = name.last, first.isLetter || first.isNumber, last.isLetter || last.isNumber else {
            return "must be lowercase letters, digits, \"-\" and \".\", starting and ending with a letter or digit"
        }
        return nil
    }
}

/// The kind-specific part of a resource.
public enum ResourceSpec: Hashable, Sendable {
    case mcpBackend(MCPBackendSpec)
    case route(RouteSpec)
    case identityProvider(IdentityProviderSpec)
    case tokenExchange(TokenExchangeSpec)
    case authorizationPolicy(AuthorizationPolicySpec)
    case credential(CredentialSpec)
    case trustBundle(TrustBundleSpec)

    public var kind: ResourceKind {
        switch self {
        case .mcpBackend: .mcpBackend
        case .route: .route
        case .identityProvider: .identityProvider
        case .tokenExchange: .tokenExchange
        case .authorizationPolicy: .authorizationPolicy
        case .credential: .credential
        case .trustBundle: .trustBundle
        }
    }
}

/// One piece of mesh config, as operators write it:
///
/// ```yaml
/// apiVersion: tether.dev/v1alpha1
/// kind: Route
/// metadata:
///   name: github
/// spec:
///   agents: ["spiffe://example.org/agent/triage"]
///   path: /github
///   backend: github
/// ```
public struct Resource: Hashable, Sendable {
    public static let apiVersion = "tether.dev/v1alpha1"

    public var metadata: ResourceMetadata
    public var spec: ResourceSpec

    public init(name: String, labels: [String: String]? = nil, spec: ResourceSpec) {
        self.metadata = ResourceMetadata(name: name, labels: labels)
        self.spec = spec
    }

    public var kind: ResourceKind { spec.kind }
    public var id: ResourceID { ResourceID(kind, metadata.name) }

    /// The resources this one names; each must exist.
    public var references: [Reference] {
        switch spec {
        case .route(let route):
            var refs = [Reference(field: "spec.backend", target: ResourceID(.mcpBackend, route.backend))]
            if let idp = route.identityProvider {
                refs.append(Reference(field: "spec.identityProvider", target: ResourceID(.identityProvider, idp)))
            }
            if let exchange = route.tokenExchange {
                refs.append(Reference(field: "spec.tokenExchange", target: ResourceID(.tokenExchange, exchange)))
            }
            return refs
        case .tokenExchange(let exchange):
            var refs: [Reference] = []
            if let credential = exchange.credential {
                refs.append(Reference(field: "spec.credential", target: ResourceID(.credential, credential)))
            }
            if let secret = exchange.clientSecret {
                refs.append(Reference(field: "spec.clientSecret", target: ResourceID(.credential, secret)))
            }
            return refs
        case .authorizationPolicy(let policy):
            let routes = (policy.targets.routes ?? []).enumerated().map {
                Reference(field: "spec.targets.routes[\($0.offset)]", target: ResourceID(.route, $0.element))
            }
            let backends = (policy.targets.backends ?? []).enumerated().map {
                Reference(field: "spec.targets.backends[\($0.offset)]", target: ResourceID(.mcpBackend, $0.element))
            }
            return routes + backends
        case .mcpBackend, .identityProvider, .credential, .trustBundle:
            return []
        }
    }

    public struct Reference: Hashable, Sendable {
        public var field: String
        public var target: ResourceID
    }
}

extension Resource: Codable {
    enum CodingKeys: String, CodingKey {
        case apiVersion, kind, metadata, spec
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try container.decode(ResourceKind.self, forKey: .kind)
        metadata = try container.decode(ResourceMetadata.self, forKey: .metadata)
        switch kind {
        case .mcpBackend: spec = .mcpBackend(try container.decode(MCPBackendSpec.self, forKey: .spec))
        case .route: spec = .route(try container.decode(RouteSpec.self, forKey: .spec))
        case .identityProvider: spec = .identityProvider(try container.decode(IdentityProviderSpec.self, forKey: .spec))
        case .tokenExchange: spec = .tokenExchange(try container.decode(TokenExchangeSpec.self, forKey: .spec))
        case .authorizationPolicy: spec = .authorizationPolicy(try container.decode(AuthorizationPolicySpec.self, forKey: .spec))
        case .credential: spec = .credential(try container.decode(CredentialSpec.self, forKey: .spec))
        case .trustBundle: spec = .trustBundle(try container.decode(TrustBundleSpec.self, forKey: .spec))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.apiVersion, forKey: .apiVersion)
        try container.encode(kind, forKey: .kind)
        try container.encode(metadata, forKey: .metadata)
        switch spec {
        case .mcpBackend(let spec): try container.encode(spec, forKey: .spec)
        case .route(let spec): try container.encode(spec, forKey: .spec)
        case .identityProvider(let spec): try container.encode(spec, forKey: .spec)
        case .tokenExchange(let spec): try container.encode(spec, forKey: .spec)
        case .authorizationPolicy(let spec): try container.encode(spec, forKey: .spec)
        case .credential(let spec): try container.encode(spec, forKey: .spec)
        case .trustBundle(let spec): try container.encode(spec, forKey: .spec)
        }
    }
}

extension Resource {
    /// The resource with every secret value removed: what reads return.
    public func redactingSecrets() -> Resource {
        guard case .credential(var credential) = spec else { return self }
        credential.value = nil
        var copy = self
        copy.spec = .credential(credential)
        return copy
    }
}
