/// Random JSON-RPC-ish documents for differential testing: valid ones built
/// from random values (with the member names the reader cares about, escaped
/// spellings, duplicates and awkward numbers), and byte-level mutations of
/// them that are mostly invalid.
struct DocumentGenerator {
    private var random: SeededGenerator

    init(seed: UInt64) {
        random = SeededGenerator(seed: seed)
    }

    mutating func document() -> [UInt8] {
        let body =
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<6: message()
            case 6..<8: array(depth: 1, element: { $0.maybeMessage() })
            default: scalar()
            }
        return Array((space() + body + space()).utf8)
    }

    /// One to three random edits: truncation, deletion, insertion, replacement,
    /// duplication of a slice, a swap, or a comma before a closing bracket
    /// (which random edits alone hardly ever make).
    mutating func mutated(_ document: [UInt8]) -> [UInt8] {
        var bytes = document
        for _ in 0..<Int.random(in: 1...3, using: &random) where !bytes.isEmpty {
            let index = Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<7, using: &random) {
            case 0: bytes.removeSubrange(index...)
            case 1: bytes.remove(at: index)
            case 2: bytes.insert(pick(Self.interestingBytes), at: index)
            case 3: bytes[index] = pick(Self.interestingBytes)
            case 4: bytes.insert(contentsOf: bytes[index..<min(bytes.count, index + Int.random(in: 1...8, using: &random))], at: index)
            case 5: bytes.swapAt(index, Int.random(in: 0..<bytes.count, using: &random))
            default:
                let closers = bytes.indices.filter { bytes[$0] == UInt8(ascii: "]") || bytes[$0] == UInt8(ascii: "}") }
                if let closer = closers.randomElement(using: &random) {
                    bytes.insert(UInt8(ascii: ","), at: closer)
                }
            }
        }
        return bytes
    }

    private static let interestingBytes: [UInt8] =
        Array("{}[],:\"\\0123456789.eE+-tfnuax \t\n".utf8)
        + [0x00, 0x01, 0x1F, 0x7F, 0x80, 0xBF, 0xC0, 0xC3, 0xE2, 0xED, 0xF0, 0xF4, 0xF5, 0xFF]

    // MARK: - Messages

    private mutating func message() -> String {
        var members: [String] = []
        for _ in 0..<Int.random(in: 0...7, using: &random) {
            let member =
                switch Int.random(in: 0..<8, using: &random) {
                case 0: (name("jsonrpc"), Bool.random(using: &random) ? #""2.0""# : value(depth: 2))
                case 1: (name("id"), identifier())
                case 2: (name("method"), Bool.random(using: &random) ? string() : value(depth: 2))
                case 3: (name("params"), Bool.random(using: &random) ? params() : value(depth: 2))
                case 4: (name("result"), value(depth: 2))
                case 5: (name("error"), value(depth: 2))
                case 6: (name(pick(["name", "uri", "methods", "i", "ID"])), value(depth: 2))
                default: (string(), value(depth: 2))
                }
            members.append(member.0 + space() + ":" + space() + member.1)
        }
        return "{" + space() + members.joined(separator: space() + "," + space()) + space() + "}"
    }

    private mutating func maybeMessage() -> String {
        Int.random(in: 0..<4, using: &random) == 0 ? value(depth: 2) : message()
    }

    private mutating func params() -> String {
        var members: [String] = []
        for _ in 0..<Int.random(in: 0...4, using: &random) {
            let member =
                switch Int.random(in: 0..<4, using: &random) {
                case 0: (name("name"), Bool.random(using: &random) ? string() : value(depth: 3))
                case 1: (name("uri"), Bool.random(using: &random) ? string() : value(depth: 3))
                case 2: (name("arguments"), object(depth: 3))
                default: (string(), value(depth: 3))
                }
            members.append(member.0 + ":" + member.1)
        }
        return "{" + members.joined(separator: ",") + "}"
    }

    /// A member name, sometimes with one of its characters escaped.
    private mutating func name(_ name: String) -> String {
        guard Int.random(in: 0..<4, using: &random) == 0 else { return "\"\(name)\"" }
        var characters = name.unicodeScalars.map { String($0) }
        let index = Int.random(in: 0..<characters.count, using: &random)
        characters[index] = "\\u" + hex(UInt16(characters[index].unicodeScalars.first!.value))
        return "\"" + characters.joined() + "\""
    }

    private mutating func identifier() -> String {
        switch Int.random(in: 0..<4, using: &random) {
        case 0: String(Int64.random(in: -1000...1000, using: &random))
        case 1: number()
        case 2: string()
        default: scalar()
        }
    }

    // MARK: - Values

    private mutating func value(depth: Int) -> String {
        switch Int.random(in: 0..<10, using: &random) {
        case 0 where depth < 5: array(depth: depth + 1, element: { $0.value(depth: depth + 1) })
        case 1 where depth < 5: object(depth: depth + 1)
        default: scalar()
        }
    }

    private mutating func array(depth: Int, element: (inout DocumentGenerator) -> String) -> String {
        let elements = (0..<Int.random(in: 0...4, using: &random)).map { _ in element(&self) }
        return "[" + space() + elements.joined(separator: space() + "," + space()) + space() + "]"
    }

    private mutating func object(depth: Int) -> String {
        let members = (0..<Int.random(in: 0...3, using: &random)).map { _ in string() + ":" + value(depth: depth) }
        return "{" + members.joined(separator: ",") + "}"
    }

    private mutating func scalar() -> String {
        switch Int.random(in: 0..<6, using: &random) {
        case 0: pick(["null", "true", "false"])
        case 1, 2: number()
        default: string()
        }
    }

    private mutating func number() -> String {
        switch Int.random(in: 0..<4, using: &random) {
        case 0:
            return pick([
                "0", "-0", "1.0", "1e2", "1E+2", "100e-2", "-0.0", "9007199254740993", "9223372036854775807",
                "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "18446744073709551616",
                "1e18", "1e19", "0.5", "1e400", "123456789012345678901234567890", "1e-400",
            ])
        case 1:
            return String(Int64.random(in: .min ... .max, using: &random))
        default:
            var number = Bool.random(using: &random) ? "-" : ""
            number += Int.random(in: 0..<5, using: &random) == 0 ? "0" : String(Int.random(in: 1...999_999, using: &random))
            if Bool.random(using: &random) {
                number += "." + digits(count: Int.random(in: 1...4, using: &random))
            }
            if Bool.random(using: &random) {
                number += pick(["e", "E"]) + pick(["", "+", "-"]) + digits(count: Int.random(in: 1...2, using: &random))
            }
            return number
        }
    }

    private mutating func digits(count: Int) -> String {
        String((0..<count).map { _ in pick(Array("0123456789")) })
    }

    /// A string literal mixing plain text, every kind of escape, and raw
    /// multi-byte characters.
    private mutating func string() -> String {
        var text = "\""
        for _ in 0..<Int.random(in: 0...8, using: &random) {
            let piece =
                switch Int.random(in: 0..<8, using: &random) {
                case 0: pick(["\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"])
                case 1: "\\u" + hex(UInt16.random(in: 0...0xD7FF, using: &random))
                case 2: "\\u" + hex(UInt16.random(in: 0xD800...0xDBFF, using: &random)) + "\\u" + hex(UInt16.random(in: 0xDC00...0xDFFF, using: &random))
                case 3: pick(["é", "€", "😀", "\u{7F}", "日本", "\u{10FFFF}"])
                default: pick(["a", "name", "uri", "tools/call", " ", "0", "{", "[", ":", ","])
                }
            text += piece
        }
        return text + "\""
    }

    private mutating func space() -> String {
        Int.random(in: 0..<3, using: &random) == 0 ? pick([" ", "\n", "\t", "\r\n  "]) : ""
    }

    private mutating func hex(_ unit: UInt16) -> String {
        let digits = String(unit, radix: 16, uppercase: Bool.random(using: &random))
        return String(repeating: "0", count: 4 - digits.count) + digits
    }

    private mutating func pick<Element>(_ choices: [Element]) -> Element {
        choices.randomElement(using: &random)!
    }
}
