/// A glob over MCP tool, prompt and resource names: `*` matches any run of
/// characters (including none), `?` exactly one; everything else is literal
/// and case-sensitive, as MCP names are.
///
/// ```swift
/// let readOnly = try NamePattern("get_*")
/// readOnly.matches("get_issue") // true
/// ```
public struct NamePattern: Hashable, Sendable, Codable, CustomStringConvertible {
    public let description: String
    private let characters: [Character]
    /// The common shapes, matched without copying the name.
    private let shape: Shape

    private enum Shape: Hashable, Sendable {
        case anything
        case exact
        case prefix(String)
        case glob
    }

    public init(_ string: String) throws(NamePatternError) {
        guard !string.isEmpty else {
            throw NamePatternError(reason: "is empty; use \"*\" to match every name")
        }
        guard string.count <= 1024 else {
            throw NamePatternError(reason: "is longer than 1024 characters")
        }
        if let bad = string.unicodeScalars.first(where: { $0.properties.generalCategory == .control || $0 == " " }) {
            throw NamePatternError(reason: "contains \(bad == " " ? "a space" : "a control character"); MCP names have neither")
        }
        self.description = string
        self.characters = Array(string)
        let wildcards = characters.filter { $0 == "*" || $0 == "?" }
        shape = if wildcards.isEmpty {
            .exact
        } else if string == "*" {
            .anything
        } else if wildcards == ["*"], characters.last == "*" {
            .prefix(String(string.dropLast()))
        } else {
            .glob
        }
    }

    public func matches(_ name: String) -> Bool {
        switch shape {
        case .anything: return true
        case .exact: return name == description
        case .prefix(let prefix): return name.hasPrefix(prefix)
        case .glob: return globMatches(Array(name))
        }
    }

    private func globMatches(_ name: [Character]) -> Bool {
        // Iterative glob matching with single-star backtracking: linear in
        // practice, never exponential.
        var p = 0, n = 0
        var star = -1, resume = 0
        while n < name.count {
            if p < characters.count, characters[p] == "?" || characters[p] == name[n] {
                p += 1
                n += 1
            } else if p < characters.count, characters[p] == "*" {
                star = p
                resume = n
                p += 1
            } else if star >= 0 {
                p = star + 1
                resume += 1
                n = resume
            } else {
                return false
            }
        }
        while p < characters.count, characters[p] == "*" { p += 1 }
        return p == characters.count
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let string = try container.decode(String.self)
        do { self = try NamePattern(string) } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.reason)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

public struct NamePatternError: Error, Hashable, Sendable {
    public let reason: String
}
