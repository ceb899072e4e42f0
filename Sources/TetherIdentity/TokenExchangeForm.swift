import Foundation

/// An RFC 8693 token-exchange request in its wire form, the
/// `application/x-www-form-urlencoded` body of a token request (RFC 6749
/// §3.2): one definition of its fields, written by the proxy (to the
/// built-in token service or an external one) and read by the control
/// plane's token service.
///
/// ```swift
/// let body = TokenExchangeForm(subjectToken: userJWT, audience: "https://mcp.example.com", scopes: ["repo"]).body
/// let received = TokenExchangeForm(body: request.body)   // received.subjectToken, .audience, …
/// ```
public struct TokenExchangeForm: Sendable, Equatable {
    public static let grantType = "urn:ietf:params:oauth:grant-type:token-exchange"
    public static let jwtTokenType = "urn:ietf:params:oauth:token-type:jwt"
    public static let accessTokenType = "urn:ietf:params:oauth:token-type:access_token"
    public static let idTokenType = "urn:ietf:params:oauth:token-type:id_token"

    public struct Field: Sendable, Equatable {
        public var name: String
        public var value: String
    }

    /// In order; a name given twice counts once, the first time (RFC 6749
    /// §3.2 forbids repeating a parameter).
    public private(set) var fields: [Field]

    /// A client's request: a token for `audience` in exchange for the
    /// user's JWT, optionally naming the acting party with its own JWT.
    public init(subjectToken: String, audience: String, scopes: [String], actorToken: String? = nil) {
        fields = [
            Field(name: "grant_type", value: Self.grantType),
            Field(name: "subject_token", value: subjectToken),
            Field(name: "subject_token_type", value: Self.jwtTokenType),
            Field(name: "audience", value: audience),
        ]
        if !scopes.isEmpty { fields.append(Field(name: "scope", value: scopes.joined(separator: " "))) }
        if let actorToken {
            fields += [Field(name: "actor_token", value: actorToken), Field(name: "actor_token_type", value: Self.jwtTokenType)]
        }
    }

    /// What a token endpoint received.
    public init(body: Data) {
        var components = URLComponents()
        // In a form, `+` is a space.
        components.percentEncodedQuery = String(decoding: body, as: UTF8.self).replacingOccurrences(of: "+", with: "%20")
        fields = (components.queryItems ?? []).map { Field(name: $0.name, value: $0.value ?? "") }
    }

    /// The encoded body.
    public var body: String {
        var components = URLComponents()
        components.queryItems = fields.map { URLQueryItem(name: $0.name, value: $0.value) }
        // `+` in a token would read as a space in a form: encode it.
        return (components.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B")
    }

    public subscript(name: String) -> String? { fields.first { $0.name == name }?.value }

    public var grantType: String? { self["grant_type"] }
    public var subjectToken: String? { self["subject_token"] }
    public var subjectTokenType: String? { self["subject_token_type"] }
    /// `audience`, or else `resource` (RFC 8693 §2.1 allows either).
    public var audience: String? { self["audience"] ?? self["resource"] }
    public var scopes: [String] { (self["scope"] ?? "").split(separator: " ").map(String.init) }
    public var actorToken: String? { self["actor_token"] }
    public var actorTokenType: String? { self["actor_token_type"] }
}
