/// A SPIFFE ID, parsed and checked against the SPIFFE ID standard
/// (spiffe/standards, SPIFFE-ID.md §2): scheme `spiffe`, a lowercase trust
/// domain of `[a-z0-9.-_]`, no userinfo, port, query or fragment, path segments
/// of `[A-Za-z0-9.-_]` that are neither empty nor `.`/`..`, no trailing slash,
/// at most 2048 bytes in all and 255 bytes of trust domain.
///
/// ```swift
/// let id = try SPIFFEID("spiffe://example.org/agent/triage")
/// id.trustDomain // "example.org"
/// id.path        // "/agent/triage"
/// ```
public struct SPIFFEID: Hashable, Sendable, Codable, CustomStringConvertible {
    public let trustDomain: String
    /// The path, with its leading slash; empty for the trust domain's own ID.
    public let path: String

    public static let maximumLength = 2048
    public static let maximumTrustDomainLength = 255

    public init(_ string: String) throws(SPIFFEIDError) {
        guard string.utf8.count <= Self.maximumLength else {
            throw SPIFFEIDError(.tooLong, "is \(string.utf8.count) bytes long; a SPIFFE ID is at most \(Self.maximumLength)")
        }
        let prefix = "spiffe://"
        guard string.hasPrefix(prefix) else {
            if string.lowercased().hasPrefix(prefix) {
                throw SPIFFEIDError(.badScheme, "the scheme must be lowercase \"spiffe://\"")
            }
            throw SPIFFEIDError(.badScheme, "must start with \"spiffe://\" followed by a trust domain")
        }
        let rest = string.dropFirst(prefix.count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let trustDomain = String(rest[..<slash])
        let path = String(rest[slash...])
        try Self.checkTrustDomain(trustDomain)
        try Self.checkPath(path)
        self.trustDomain = trustDomain
        self.path = path
    }

    public var description: String { "spiffe://\(trustDomain)\(path)" }

    /// Path segments, without the leading slash.
    public var segments: [Substring] {
        path.isEmpty ? [] : path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let string = try container.decode(String.self)
        do { self = try SPIFFEID(string) } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    static func checkTrustDomain(_ trustDomain: String) throws(SPIFFEIDError) {
        guard !trustDomain.isEmpty else {
            throw SPIFFEIDError(.emptyTrustDomain, "has no trust domain; write spiffe://TRUST-DOMAIN/path")
        }
        guard trustDomain.utf8.count <= maximumTrustDomainLength else {
            throw SPIFFEIDError(.tooLong, "has a trust domain longer than \(maximumTrustDomainLength) bytes")
        }
        if trustDomain.contains("@") {
            throw SPIFFEIDError(.badTrustDomain, "must not contain userinfo (\"@\") in the trust domain")
        }
        if trustDomain.contains(":") {
            throw SPIFFEIDError(.badTrustDomain, "must not contain a port (\":\") in the trust domain")
        }
        if trustDomain.contains("?") || trustDomain.contains("#") {
            throw SPIFFEIDError(.queryOrFragment, "must not contain a query (\"?\") or fragment (\"#\")")
        }
        for byte in trustDomain.utf8 where !isTrustDomainByte(byte) {
            let character = String(decoding: [byte], as: UTF8.self)
            throw SPIFFEIDError(.badTrustDomain, "has \"\(character)\" in the trust domain; only lowercase letters, digits, \".\", \"-\" and \"_\" are allowed")
        }
    }

    static func checkPath(_ path: String) throws(SPIFFEIDError) {
        guard !path.isEmpty else { return }
        if path.contains("?") || path.contains("#") {
            throw SPIFFEIDError(.queryOrFragment, "must not contain a query (\"?\") or fragment (\"#\")")
        }
        if path.hasSuffix("/") {
            throw SPIFFEIDError(.badPath, "must not end with \"/\"")
        }
        for segment in path.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            if segment.isEmpty {
                throw SPIFFEIDError(.badPath, "has an empty path segment (\"//\")")
            }
            if segment == "." || segment == ".." {
                throw SPIFFEIDError(.badPath, "has a \"\(segment)\" path segment; relative segments are not allowed")
            }
            for byte in segment.utf8 where !isPathByte(byte) {
                let character = String(decoding: [byte], as: UTF8.self)
                throw SPIFFEIDError(.badPath, "has \"\(character)\" in the path; only letters, digits, \".\", \"-\" and \"_\" are allowed")
            }
        }
    }

    static func isTrustDomainByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }

    static func isPathByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return true
        default: return isTrustDomainByte(byte)
        }
    }
}

/// Why a string is not a SPIFFE ID (or pattern); `reason` completes a sentence
/// that starts with the offending value.
public struct SPIFFEIDError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case badScheme, emptyTrustDomain, badTrustDomain, badPath, queryOrFragment, tooLong, badPattern
    }

    public let code: Code
    public let reason: String

    init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { reason }
}
