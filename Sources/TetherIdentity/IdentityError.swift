/// An identity failure with a stable code and an actionable reason.
public struct IdentityError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable, Codable {
        case invalidCA, invalidRequest, wrongTrustDomain, wrongIdentity, invalidBundle, invalidSVID, storage
    }

    public var code: Code
    public var reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { reason }
}
