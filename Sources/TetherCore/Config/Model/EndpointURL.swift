import Foundation

/// An absolute http(s) URL from operator config, checked for the mistakes
/// that matter in a mesh: credentials in the URL (they would leak into logs),
/// fragments, and plaintext to anything but loopback.
public struct EndpointURL: Hashable, Sendable, Codable, CustomStringConvertible {
    public enum Rules: Sendable {
        /// https anywhere; http only to a loopback host. For anything Tether
        /// connects to.
        case tlsUnlessLoopback
        /// Any http(s) URL. For identifiers that are compared, not dialled
        /// (an issuer).
        case identifier
    }

    public let description: String
    public let scheme: String
    public let host: String
    public let port: Int
    public let path: String

    public init(_ string: String, rules: Rules) throws(EndpointURLError) {
        guard let components = URLComponents(string: string), let scheme = components.scheme else {
            throw EndpointURLError(reason: "write an absolute URL such as https://host:port/path")
        }
        guard scheme == "http" || scheme == "https" else {
            throw EndpointURLError(reason: "the scheme must be http or https, not \"\(scheme)\"")
        }
        guard let host = components.host, !host.isEmpty else {
            throw EndpointURLError(reason: "it has no host")
        }
        guard components.user == nil, components.password == nil else {
            throw EndpointURLError(reason: "it embeds credentials; put them in a Credential resource instead")
        }
        guard components.fragment == nil else {
            throw EndpointURLError(reason: "it has a fragment (\"#...\"), which is never sent to a server")
        }
        let port = components.port ?? (scheme == "https" ? 443 : 80)
        guard (1...65535).contains(port) else {
            throw EndpointURLError(reason: "port \(port) is out of range 1-65535")
        }
        let bareHost = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        if rules == .tlsUnlessLoopback, scheme == "http", !Self.isLoopback(bareHost) {
            throw EndpointURLError(reason: "plaintext http is only allowed to loopback (127.0.0.0/8, ::1, localhost); use https")
        }
        self.description = string
        self.scheme = scheme
        self.host = bareHost
        self.port = port
        self.path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
    }

    public var isLoopback: Bool { Self.isLoopback(host) }

    public static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4, octets.allSatisfy({ UInt8($0) != nil }) else { return false }
        return octets[0] == "127"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let string = try container.decode(String.self)
        do { self = try EndpointURL(string, rules: .identifier) } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.reason)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

public struct EndpointURLError: Error, Hashable, Sendable {
    public let reason: String
}

/// `host:port` or `[ipv6]:port`, for listener and inbound addresses.
public struct HostPort: Hashable, Sendable, Codable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(_ string: String) throws(EndpointURLError) {
        let hostPart: Substring
        let portPart: Substring
        if string.hasPrefix("[") {
            guard let close = string.firstIndex(of: "]"), string[string.index(after: close)...].hasPrefix(":") else {
                throw EndpointURLError(reason: "write an IPv6 address as [address]:port")
            }
            hostPart = string[string.index(after: string.startIndex)..<close]
            portPart = string[string.index(close, offsetBy: 2)...]
        } else {
            guard let colon = string.lastIndex(of: ":") else {
                throw EndpointURLError(reason: "has no port; write host:port")
            }
            hostPart = string[..<colon]
            portPart = string[string.index(after: colon)...]
            if hostPart.contains(":") {
                throw EndpointURLError(reason: "looks like an IPv6 address; write it as [address]:port")
            }
        }
        guard !hostPart.isEmpty else { throw EndpointURLError(reason: "has no host; write host:port") }
        guard hostPart.allSatisfy({ $0.isLetter || $0.isNumber || ".-_:".contains($0) }) else {
            throw EndpointURLError(reason: "has characters that are not allowed in a host name")
        }
        guard let port = Int(portPart), (1...65535).contains(port) else {
            throw EndpointURLError(reason: "has port \"\(portPart)\"; use a number from 1 to 65535")
        }
        self.host = String(hostPart)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let string = try container.decode(String.self)
        do { self = try HostPort(string) } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.reason)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
