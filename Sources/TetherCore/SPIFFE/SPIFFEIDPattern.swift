/// A pattern over SPIFFE IDs, used to say which agents a route or rule covers.
///
/// The trust domain is always literal. Each path segment is literal, `*`
/// (exactly one segment), or — as the last segment only — `**` (one or more
/// segments). `spiffe://example.org/**` therefore matches every workload of
/// the trust domain but not the trust domain's own ID.
///
/// ```swift
/// let agents = try SPIFFEIDPattern("spiffe://example.org/agent/*")
/// agents.matches(try SPIFFEID("spiffe://example.org/agent/triage")) // true
/// ```
public struct SPIFFEIDPattern: Hashable, Sendable, Codable, CustomStringConvertible {
    public enum Segment: Hashable, Sendable {
        case literal(String)
        case any
        case anyRemaining
    }

    public let trustDomain: String
    public let segments: [Segment]
    public let description: String

    public init(_ string: String) throws(SPIFFEIDError) {
        // A pattern is a SPIFFE ID whose wildcard segments are replaced by a
        // placeholder; parsing it that way reuses every rule of the standard.
        let placeholder = "x"
        let prefix = "spiffe://"
        let probe: String
        if string.hasPrefix(prefix) {
            let rest = string.dropFirst(prefix.count)
            let slash = rest.firstIndex(of: "/") ?? rest.endIndex
            let path = rest[slash...]
            let pathSegments = path.isEmpty ? [] : path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
            let replaced = pathSegments.map { ($0 == "*" || $0 == "**") ? placeholder : String($0) }
            probe = prefix + rest[..<slash] + (pathSegments.isEmpty ? "" : "/" + replaced.joined(separator: "/"))
        } else {
            probe = string
        }
        let id = try SPIFFEID(probe)
        let raw = string.dropFirst(prefix.count + id.trustDomain.utf8.count)
        let rawSegments = raw.isEmpty ? [] : raw.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        var segments: [Segment] = []
        for (index, segment) in rawSegments.enumerated() {
            switch segment {
            case "*": segments.append(.any)
            case "**":
                guard index == rawSegments.count - 1 else {
                    throw SPIFFEIDError(.badPattern, "uses \"**\" before the last segment; \"**\" may only end a pattern")
                }
                segments.append(.anyRemaining)
            default:
                if segment.contains("*") {
                    throw SPIFFEIDError(.badPattern, "has \"\(segment)\"; a wildcard must be a whole segment, \"*\" or a final \"**\"")
                }
                segments.append(.literal(String(segment)))
            }
        }
        self.trustDomain = id.trustDomain
        self.segments = segments
        self.description = string
    }

    public func matches(_ id: SPIFFEID) -> Bool {
        guard id.trustDomain == trustDomain else { return false }
        // The ID's segments one by one, without building an array: this
        // runs for every pattern of every rule a call is checked against.
        var rest: Substring? = id.path.isEmpty ? nil : id.path.dropFirst()
        func nextSegment() -> Substring? {
            guard let current = rest else { return nil }
            guard let slash = current.firstIndex(of: "/") else {
                rest = nil
                return current
            }
            rest = current[current.index(after: slash)...]
            return current[..<slash]
        }
        for segment in segments {
            switch segment {
            case .anyRemaining:
                return nextSegment() != nil
            case .any:
                guard nextSegment() != nil else { return false }
            case .literal(let literal):
                guard let next = nextSegment(), next == literal else { return false }
            }
        }
        return nextSegment() == nil
    }

    /// Whether some SPIFFE ID matches both patterns.
    public func overlaps(_ other: SPIFFEIDPattern) -> Bool {
        guard trustDomain == other.trustDomain else { return false }
        var index = 0
        while true {
            let left = index < segments.count ? segments[index] : nil
            let right = index < other.segments.count ? other.segments[index] : nil
            switch (left, right) {
            case (nil, nil):
                return true
            case (.anyRemaining, .some), (.some, .anyRemaining):
                return true
            case (nil, .some), (.some, nil):
                return false
            case (.literal(let a), .literal(let b)) where a != b:
                return false
            default:
                index += 1
            }
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let string = try container.decode(String.self)
        do { self = try SPIFFEIDPattern(string) } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
