/// How a proxy obtains the token it sends upstream in place of the user's.
public struct TokenExchangeSpec: Hashable, Sendable, Codable {
    public enum ExchangeType: String, CaseIterable, Hashable, Sendable, Codable {
        /// tether-control's own RFC 8693 token service.
        case builtin
        /// An external RFC 8693 token service.
        case rfc8693
        /// A JWT-SVID of the calling agent for the backend's audience.
        case jwtSVID = "jwt-svid"
        /// A vaulted credential (e.g. a PAT) the agent never sees.
        case credential
    }

    public var type: ExchangeType
    /// The audience of the minted token (builtin, rfc8693, jwt-svid).
    public var audience: String?
    /// Scopes to request; the issued scope is this set narrowed by policy.
    public var scopes: [String]?
    /// Lifetime of minted tokens; never longer than the user's token.
    public var ttl: ConfigDuration?
    /// rfc8693: the token endpoint.
    public var endpoint: EndpointURL?
    /// rfc8693: the OAuth client ID Tether authenticates as.
    public var clientID: String?
    /// rfc8693: name of the Credential holding the client secret.
    public var clientSecret: String?
    /// credential: name of the Credential sent upstream.
    public var credential: String?
    /// credential: the request header that carries it (default Authorization).
    public var header: String?
    /// credential: the scheme before the value (default Bearer; "" for none).
    public var scheme: String?

    /// JWT-SVIDs live at most this long (SPIFFE practice: minutes).
    public static let maximumJWTSVIDTTL = ConfigDuration.seconds(300)

    /// Which fields each type takes, for the "not used by this type" check.
    static func fields(for type: ExchangeType) -> Set<String> {
        switch type {
        case .builtin: ["audience", "scopes", "ttl"]
        case .rfc8693: ["audience", "scopes", "ttl", "endpoint", "clientID", "clientSecret"]
        case .jwtSVID: ["audience", "ttl"]
        case .credential: ["credential", "header", "scheme"]
        }
    }

    static func required(for type: ExchangeType) -> [String] {
        switch type {
        case .builtin, .jwtSVID: ["audience"]
        case .rfc8693: ["audience", "endpoint", "clientID", "clientSecret"]
        case .credential: ["credential"]
        }
    }
}

extension TokenExchangeSpec {
    init?(reading spec: MappingReader) {
        let type = spec.required("type", hint: "one of \(ExchangeType.allCases.map(\.rawValue).joined(separator: ", "))") { node -> ExchangeType? in
            guard let text = node.string() else { return nil }
            guard let type = ExchangeType(rawValue: text) else {
                node.report("\"\(text)\" is not a token exchange type; use one of \(ExchangeType.allCases.map(\.rawValue).joined(separator: ", "))")
                return nil
            }
            return type
        }
        let audience = spec.optional("audience") { $0.nonEmptyString() }
        let scopes = spec.optional("scopes") { node in
            node.uniqueList { node -> String? in
                guard let scope = node.nonEmptyString() else { return nil }
                // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
                guard scope.unicodeScalars.allSatisfy({ $0.value == 0x21 || (0x23...0x5B).contains($0.value) || (0x5D...0x7E).contains($0.value) }) else {
                    node.report("\"\(scope)\" is not a valid OAuth scope: no spaces, quotes or backslashes")
                    return nil
                }
                return scope
            }
        }
        let ttl = spec.optional("ttl") { $0.duration(max: .seconds(24 * 3600)) }
        let endpoint = spec.optional("endpoint") { $0.url(.tlsUnlessLoopback) }
        let clientID = spec.optional("clientID") { $0.nonEmptyString() }
        let clientSecret = spec.optional("clientSecret") { $0.resourceName() }
        let credential = spec.optional("credential") { $0.resourceName() }
        let header = spec.optional("header") { node -> String? in
            guard let name = node.nonEmptyString() else { return nil }
            let token = "!#$%&'*+-.^_`|~"
            guard name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || token.unicodeScalars.contains($0)) }) else {
                node.report("\"\(name)\" is not a valid HTTP header name")
                return nil
            }
            return name
        }
        let scheme = spec.optional("scheme") { $0.string() }
        guard let type else { return nil }
        let allowed = Self.fields(for: type)
        let all = ["audience", "scopes", "ttl", "endpoint", "clientID", "clientSecret", "credential", "header", "scheme"]
        for field in all where spec.has(field) && !allowed.contains(field) {
            spec.report("\"\(field)\" is not used by type \(type.rawValue); remove it (\(type.rawValue) takes \(allowed.sorted().joined(separator: ", ")))", field: field)
        }
        for field in Self.required(for: type) where !spec.has(field) {
            spec.report("missing required field \"\(field)\" for type \(type.rawValue)")
        }
        if type == .jwtSVID, let ttl, ttl > Self.maximumJWTSVIDTTL {
            spec.report("a JWT-SVID lives at most \(Self.maximumJWTSVIDTTL); lower ttl", field: "ttl")
        }
        self.init(type: type, audience: audience, scopes: scopes, ttl: ttl, endpoint: endpoint, clientID: clientID, clientSecret: clientSecret, credential: credential, header: header, scheme: scheme)
    }
}
