/// A duration written the way operators write them: `500ms`, `30s`, `10m`,
/// `1h30m`, `24h`. Units are ms, s, m, h; no fractions, no days (they hide
/// daylight-saving surprises). Stored and printed in the shortest exact form.
public struct ConfigDuration: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
    public let milliseconds: Int64

    public init(milliseconds: Int64) {
        self.milliseconds = milliseconds
    }

    public static func seconds(_ seconds: Int64) -> ConfigDuration {
        ConfigDuration(milliseconds: seconds * 1000)
    }

    public init(parsing text: String) throws(DurationError) {
        guard !text.isEmpty else { throw DurationError(reason: "is empty; write e.g. 30s, 10m or 1h") }
        guard !text.contains(where: \.isWhitespace) else {
            throw DurationError(reason: "contains spaces; write the units together, e.g. 10m or 1h30m")
        }
        var total: Int64 = 0
        var rest = Substring(text)
        var lastUnitRank = Int.max
        while !rest.isEmpty {
            let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
            guard !digits.isEmpty, let value = Int64(digits) else {
                throw DurationError(reason: "is not a duration; write a number followed by a unit (ms, s, m, h), e.g. 30s or 1h30m")
            }
            rest = rest.dropFirst(digits.count)
            let unit = rest.prefix(while: { $0.isLetter })
            rest = rest.dropFirst(unit.count)
            let (factor, rank): (Int64, Int)
            switch unit {
            case "h": (factor, rank) = (3_600_000, 3)
            case "m": (factor, rank) = (60_000, 2)
            case "s": (factor, rank) = (1000, 1)
            case "ms": (factor, rank) = (1, 0)
            case "":
                throw DurationError(reason: "has a number without a unit; add one of ms, s, m, h (e.g. \(digits)s)")
            default:
                throw DurationError(reason: "has unknown unit \"\(unit)\"; use ms, s, m or h")
            }
            guard rank < lastUnitRank else {
                throw DurationError(reason: "repeats or misorders units; write larger units first, each once (e.g. 1h30m)")
            }
            lastUnitRank = rank
            let (product, overflow1) = value.multipliedReportingOverflow(by: factor)
            let (sum, overflow2) = total.addingReportingOverflow(product)
            guard !overflow1, !overflow2, sum <= 10 * 365 * 24 * 3_600_000 else {
                throw DurationError(reason: "is longer than ten years")
            }
            total = sum
        }
        self.milliseconds = total
    }

    public var description: String {
        if milliseconds == 0 { return "0s" }
        var rest = milliseconds
        var text = ""
        for (unit, factor) in [("h", Int64(3_600_000)), ("m", 60_000), ("s", 1000), ("ms", 1)] where rest >= factor {
            text += "\(rest / factor)\(unit)"
            rest %= factor
        }
        return text
    }

    public static func < (lhs: ConfigDuration, rhs: ConfigDuration) -> Bool {
        lhs.milliseconds < rhs.milliseconds
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let string = try container.decode(String.self)
        do { self = try ConfigDuration(parsing: string) } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.reason)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

public struct DurationError: Error, Hashable, Sendable {
    public let reason: String
}
