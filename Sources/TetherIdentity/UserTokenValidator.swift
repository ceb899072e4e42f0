import Foundation
import JWTKit
import TetherCore

/// A user's validated bearer token: who the user is and every claim, as
/// authorization reads them.
public struct UserToken: Sendable {
    /// The user (the identity provider's `subjectClaim`, `sub` by default).
    public var subject: String
    /// Each claim as a list of strings (a string claim is a list of one;
    /// numbers and booleans as their JSON text; objects left out).
    public var claims: [String: [String]]
    public var issuer: String
    public var expiresAt: Date
    /// The agents that acted for the user, nearest first, from the nested
    /// `act` claim (RFC 8693 §4.1) of a token the built-in token service
    /// issued to an agent that was itself called by another.
    public var actors: [String] = []
    /// The token as presented (for exchanges: never logged, never forwarded).
    public var raw: String
}

/// Why a user token is refused; the reason is fit for the caller (a
/// `WWW-Authenticate` error description) and the log, and never quotes the
/// token.
public struct TokenRejection: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case malformed, tooLarge, algorithm, unknownKey, signature, issuer, audience, expired, notYetValid, issuedInFuture, subject
    }

    public var code: Code
    public var reason: String
    public var description: String { reason }

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }
}

/// Validates users' bearer tokens (JWS, RFC 7519 with the RFC 8725
/// practices) for one IdentityProvider: size, an allowed asymmetric
/// algorithm (never `none`, never HMAC — so an RSA public key can never be
/// used as an HMAC secret), a `kid` naming a key of the provider's JWK Set,
/// the signature (jwt-kit), `iss`, `aud`, and `exp` / `nbf` / `iat` within
/// the provider's clock skew.
///
/// ```swift
/// let validator = try await UserTokenValidator(name: "corp-sso", spec: spec, jwks: jwksJSON)
/// switch await validator.validate(bearer) { case .success(let user): … case .failure(let why): … }
/// ```
public struct UserTokenValidator: Sendable {
    /// Larger tokens are refused unread (headers this big are an attack or a mistake).
    public static let maximumSize = 16 * 1024

    public let name: String
    public let spec: IdentityProviderSpec
    /// The key ids of the JWK Set.
    public let keyIDs: Set<String>
    let keys: JWTKeyCollection

    /// - Parameter jwks: the provider's JWK Set document: RSA and EC public
    ///   keys only (a symmetric key would verify tokens anyone holding it
    ///   can mint; jwt-kit cannot even read one).
    public init(name: String, spec: IdentityProviderSpec, jwks: String) async throws(IdentityError) {
        self.name = name
        self.spec = spec
        let set: JWKS
        do {
            set = try JSONDecoder().decode(JWKS.self, from: Data(jwks.utf8))
        } catch {
            throw IdentityError(.invalidBundle, "the JWK Set of IdentityProvider \(name) is not valid JSON Web Key Set JSON")
        }
        let members = ((try? JSONSerialization.jsonObject(with: Data(jwks.utf8))) as? [String: Any])?["keys"] as? [[String: Any]] ?? []
        guard !members.contains(where: { $0["d"] != nil }) else {
            throw IdentityError(.invalidBundle, "the JWK Set of IdentityProvider \(name) holds a private key; publish only the public keys")
        }
        let keys = JWTKeyCollection()
        var ids = Set<String>()
        for key in set.keys {
            guard key.keyType == .rsa || key.keyType == .ecdsa else {
                throw IdentityError(.invalidBundle, "the JWK Set of IdentityProvider \(name) holds a \(key.keyType.rawValue) key; only RSA and EC public keys are accepted")
            }
            guard let kid = key.keyIdentifier?.string else {
                throw IdentityError(.invalidBundle, "a key in the JWK Set of IdentityProvider \(name) has no kid")
            }
            do {
                try await keys.add(jwk: key)
            } catch {
                throw IdentityError(.invalidBundle, "key \(kid) of IdentityProvider \(name) cannot be used: \(error)")
            }
            ids.insert(kid)
        }
        self.keys = keys
        keyIDs = ids
    }

    public func validate(_ token: String, now: Date = Date()) async -> Result<UserToken, TokenRejection> {
        guard token.utf8.count <= Self.maximumSize else {
            return .failure(TokenRejection(.tooLarge, "the token is \(token.utf8.count) bytes; at most \(Self.maximumSize) are accepted"))
        }
        guard let jws = CompactJWS(token) else {
            return .failure(TokenRejection(.malformed, "the token is not a JWS in compact serialization"))
        }
        let (header, payload) = (jws.header, jws.payload)
        let allowed = spec.allowedAlgorithms.map(\.rawValue)
        guard let algorithm = header["alg"] as? String, allowed.contains(algorithm) else {
            return .failure(TokenRejection(.algorithm, "the token's alg \(header["alg"].map { "\($0)" } ?? "(none)") is not one IdentityProvider \(name) accepts (\(allowed.joined(separator: ", ")))"))
        }
        guard let kid = header["kid"] as? String, keyIDs.contains(kid) else {
            return .failure(TokenRejection(.unknownKey, "the token's kid \(header["kid"].map { "\($0)" } ?? "(none)") names no key of IdentityProvider \(name)"))
        }
        do {
            _ = try await keys.verify(token, as: SignatureOnly.self)
        } catch {
            return .failure(TokenRejection(.signature, "the token's signature does not verify with key \(kid) of IdentityProvider \(name)"))
        }
        guard let issuer = payload["iss"] as? String, issuer == spec.issuer.description else {
            return .failure(TokenRejection(.issuer, "the token's issuer is not \(spec.issuer)"))
        }
        let audiences = (payload["aud"] as? [String]) ?? [(payload["aud"] as? String)].compactMap { $0 }
        guard audiences.contains(where: spec.audiences.contains) else {
            return .failure(TokenRejection(.audience, "the token is not for any of the audiences IdentityProvider \(name) accepts (\(spec.audiences.joined(separator: ", ")))"))
        }
        let skew = TimeInterval((spec.clockSkew ?? .seconds(30)).milliseconds) / 1000
        guard let exp = (payload["exp"] as? NSNumber)?.doubleValue else {
            return .failure(TokenRejection(.expired, "the token has no exp"))
        }
        let expiry = Date(timeIntervalSince1970: exp)
        guard expiry.addingTimeInterval(skew) > now else {
            return .failure(TokenRejection(.expired, "the token expired at \(expiry.formatted(.iso8601))"))
        }
        if let nbf = (payload["nbf"] as? NSNumber)?.doubleValue, Date(timeIntervalSince1970: nbf) > now.addingTimeInterval(skew) {
            return .failure(TokenRejection(.notYetValid, "the token is not valid before \(Date(timeIntervalSince1970: nbf).formatted(.iso8601))"))
        }
        if let iat = (payload["iat"] as? NSNumber)?.doubleValue, Date(timeIntervalSince1970: iat) > now.addingTimeInterval(skew) {
            return .failure(TokenRejection(.issuedInFuture, "the token was issued in the future (\(Date(timeIntervalSince1970: iat).formatted(.iso8601)))"))
        }
        let subjectClaim = spec.subjectClaim ?? "sub"
        guard let subject = payload[subjectClaim] as? String, !subject.isEmpty else {
            return .failure(TokenRejection(.subject, "the token has no \(subjectClaim) claim naming the user"))
        }
        var actors: [String] = []
        var act = payload["act"] as? [String: Any]
        while let current = act, let actor = current["sub"] as? String, actors.count < 32 {
            actors.append(actor)
            act = current["act"] as? [String: Any]
        }
        return .success(UserToken(subject: subject, claims: Self.claims(payload), issuer: issuer, expiresAt: expiry, actors: actors, raw: token))
    }

    /// Claims as authorization conditions read them.
    static func claims(_ payload: [String: Any]) -> [String: [String]] {
        func text(_ value: Any) -> String? {
            switch value {
            case let string as String: string
            case let number as NSNumber: number.isJSONBoolean ? (number.boolValue ? "true" : "false") : number.stringValue
            default: nil
            }
        }
        var claims: [String: [String]] = [:]
        for (name, value) in payload {
            if let list = value as? [Any] {
                claims[name] = list.compactMap(text)
            } else if let single = text(value) {
                claims[name] = [single]
            }
        }
        return claims
    }

    /// The claims are checked by hand above; jwt-kit checks the signature.
    private struct SignatureOnly: JWTPayload {
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }
}
