import Foundation

/// An enterprise identity provider whose JWTs authenticate the users behind
/// agents.
public struct IdentityProviderSpec: Hashable, Sendable, Codable {
    /// The `iss` claim its tokens carry.
    public var issuer: EndpointURL
    /// Accepted `aud` values; a token must name at least one.
    public var audiences: [String]
    public var jwks: JWKSSource
    /// Signature algorithms accepted; asymmetric families only.
    public var allowedAlgorithms: [JWSAlgorithm]
    /// The claim that names the user (the exchanged token's `sub`).
    public var subjectClaim: String?
    /// Tolerance for `exp`, `nbf` and `iat` (default 30s, at most 5m).
    public var clockSkew: ConfigDuration?

    public static let defaultAlgorithms: [JWSAlgorithm] = [.rs256, .es256]

    public init(
        issuer: EndpointURL, audiences: [String], jwks: JWKSSource, allowedAlgorithms: [JWSAlgorithm] = Self.defaultAlgorithms,
        subjectClaim: String? = nil, clockSkew: ConfigDuration? = nil
    ) {
        self.issuer = issuer
        self.audiences = audiences
        self.jwks = jwks
        self.allowedAlgorithms = allowedAlgorithms
        self.subjectClaim = subjectClaim
        self.clockSkew = clockSkew
    }
}

/// Where an identity provider's signing keys come from.
public enum JWKSSource: Hashable, Sendable {
    /// A JWK Set document, as JSON text.
    case inline(String)
    /// A file holding the JWK Set, read by the process that validates tokens.
    case file(String)
    /// An https URL serving the JWK Set, fetched and cached.
    case url(EndpointURL)
}

extension JWKSSource: Codable {
    enum CodingKeys: String, CodingKey {
        case inline, file, url
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let inline = try container.decodeIfPresent(String.self, forKey: .inline) {
            self = .inline(inline)
        } else if let file = try container.decodeIfPresent(String.self, forKey: .file) {
            self = .file(file)
        } else {
            self = .url(try container.decode(EndpointURL.self, forKey: .url))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .inline(let inline): try container.encode(inline, forKey: .inline)
        case .file(let file): try container.encode(file, forKey: .file)
        case .url(let url): try container.encode(url, forKey: .url)
        }
    }
}

/// JWS algorithms Tether accepts for user tokens and JWT-SVIDs: RSA, RSA-PSS
/// and ECDSA. `none` and the HMAC family are never accepted: a shared secret
/// cannot tell the issuer from anyone who verifies.
public enum JWSAlgorithm: String, CaseIterable, Hashable, Sendable, Codable {
    case rs256 = "RS256", rs384 = "RS384", rs512 = "RS512"
    case ps256 = "PS256", ps384 = "PS384", ps512 = "PS512"
    case es256 = "ES256", es384 = "ES384", es512 = "ES512"
}

extension IdentityProviderSpec {
    init?(reading spec: MappingReader) {
        let issuer = spec.required("issuer", hint: "the iss claim of the provider's tokens, e.g. https://login.example.com") {
            $0.url(.identifier)
        }
        let audiences = spec.required("audiences", hint: "the aud values tokens must carry") { $0.uniqueList { $0.nonEmptyString() } }
        let jwks = spec.required("jwks", hint: "set one of inline, file or url") { node -> JWKSSource? in
            guard let fields = node.mapping() else { return nil }
            defer { fields.finish() }
            let inline = fields.optional("inline") { node -> String? in
                guard let text = node.nonEmptyString() else { return nil }
                if let problem = Self.checkJWKS(text) {
                    node.report(problem)
                    return nil
                }
                return text
            }
            let file = fields.optional("file") { $0.nonEmptyString() }
            let url = fields.optional("url") { $0.url(.tlsUnlessLoopback) }
            let sources = [inline.map(JWKSSource.inline), file.map(JWKSSource.file), url.map(JWKSSource.url)].compactMap { $0 }
            let given = ["inline", "file", "url"].filter(fields.has)
            guard given.count == 1 else {
                if given.count > 1 {
                    fields.report("set exactly one of inline, file or url; found \(given.joined(separator: " and "))")
                } else {
                    fields.report("set one of inline (a JWK Set as JSON), file (a path) or url (https)")
                }
                return nil
            }
            return sources.first
        }
        let algorithms = spec.optional("allowedAlgorithms") { node in
            node.uniqueList { node -> JWSAlgorithm? in
                guard let name = node.string() else { return nil }
                if let algorithm = JWSAlgorithm(rawValue: name) { return algorithm }
                if name.lowercased() == "none" || name.uppercased().hasPrefix("HS") {
                    node.report("\"\(name)\" is never accepted: unsigned and HMAC tokens cannot prove who issued them; use RS, PS or ES algorithms")
                } else {
                    node.report("\"\(name)\" is not a supported algorithm; use one of \(JWSAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return nil
            }
        }
        let subjectClaim = spec.optional("subjectClaim") { $0.nonEmptyString() }
        let clockSkew = spec.optional("clockSkew") { $0.duration(max: .seconds(300)) }
        guard let issuer, let audiences, let jwks else { return nil }
        self.init(issuer: issuer, audiences: audiences, jwks: jwks, allowedAlgorithms: algorithms ?? Self.defaultAlgorithms, subjectClaim: subjectClaim, clockSkew: clockSkew)
    }

    /// Checks that text is a JWK Set whose keys are asymmetric public keys.
    static func checkJWKS(_ text: String) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let keys = object["keys"] as? [[String: Any]]
        else {
            return "is not a JWK Set; expected JSON like {\"keys\": [{\"kty\": \"EC\", ...}]}"
        }
        guard !keys.isEmpty else { return "is a JWK Set with no keys" }
        for (index, key) in keys.enumerated() {
            guard let type = key["kty"] as? String, type == "RSA" || type == "EC" else {
                return "has key \(index) with kty other than RSA or EC; symmetric (oct) keys are never accepted"
            }
            if key["d"] != nil || key["p"] != nil {
                return "has key \(index) with private key material; publish only the public key"
            }
        }
        return nil
    }
}
