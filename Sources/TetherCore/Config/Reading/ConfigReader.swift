import Yams

/// Per-document state shared by the readers of one resource: where
/// diagnostics go and where each field was found.
final class ReadContext {
    let file: String
    var resource: String?
    var diagnostics: [ConfigDiagnostic] = []
    var locations: [String: SourceLocation] = [:]

    init(file: String) {
        self.file = file
    }

    func location(of node: Node) -> SourceLocation? {
        node.mark.map { SourceLocation(file: file, line: $0.line, column: $0.column) }
    }

    func report(_ message: String, at node: Node?, field: String) {
        let location = node.flatMap(location(of:))
        diagnostics.append(ConfigDiagnostic(location: location, resource: resource, field: field, message: message))
    }
}

/// Reads one YAML node as a typed value, reporting (not throwing) every
/// problem so that all errors of a file come out at once. A `nil` result means
/// a diagnostic was recorded.
struct NodeReader {
    let node: Node
    let path: String
    let context: ReadContext

    init(node: Node, path: String, context: ReadContext) {
        self.node = node
        self.path = path
        self.context = context
        if let location = context.location(of: node) {
            context.locations[path] = location
        }
    }

    func report(_ message: String) {
        context.report(message, at: node, field: path)
    }

    var kindDescription: String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar:
            switch node.tagName {
            case .int: return "a number"
            case .float: return "a number"
            case .bool: return "true/false"
            case .null: return "nothing (null)"
            default: return "a string"
            }
        }
    }

    func string() -> String? {
        guard case .scalar(let scalar) = node, node.tagName == .str else {
            if case .scalar = node {
                report("expected a string, found \(kindDescription); quote the value if it is meant as text")
            } else {
                report("expected a string, found \(kindDescription)")
            }
            return nil
        }
        return scalar.string
    }

    func nonEmptyString() -> String? {
        guard let value = string() else { return nil }
        guard !value.isEmpty else {
            report("must not be empty")
            return nil
        }
        return value
    }

    func int(in range: ClosedRange<Int>) -> Int? {
        guard case .scalar(let scalar) = node, node.tagName == .int, let value = Int(scalar.string) else {
            report("expected a whole number, found \(kindDescription)")
            return nil
        }
        guard range.contains(value) else {
            report("\(value) is out of range; use a value from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return value
    }

    /// A string converted by `parse`, whose error reason completes the
    /// sentence "VALUE ...".
    func parsed<T, E: Error>(_ parse: (String) throws(E) -> T, reason: (E) -> String) -> T? {
        guard let text = string() else { return nil }
        do {
            return try parse(text)
        } catch {
            report("\"\(text)\" \(reason(error))")
            return nil
        }
    }

    func spiffeID() -> SPIFFEID? {
        parsed({ (text) throws(SPIFFEIDError) in try SPIFFEID(text) }, reason: { "is not a valid SPIFFE ID: it \($0.reason)" })
    }

    func spiffeIDPattern() -> SPIFFEIDPattern? {
        parsed({ (text) throws(SPIFFEIDError) in try SPIFFEIDPattern(text) }, reason: { "is not a valid SPIFFE ID pattern: it \($0.reason)" })
    }

    func namePattern() -> NamePattern? {
        parsed({ (text) throws(NamePatternError) in try NamePattern(text) }, reason: { "is not a valid name pattern: it \($0.reason)" })
    }

    func duration(max: ConfigDuration? = nil) -> ConfigDuration? {
        guard let value = parsed({ (text) throws(DurationError) in try ConfigDuration(parsing: text) }, reason: { "\($0.reason)" }) else {
            return nil
        }
        if let max, value > max {
            report("\(value) is longer than the maximum of \(max)")
            return nil
        }
        if value.milliseconds == 0 {
            report("must be longer than zero")
            return nil
        }
        return value
    }

    func url(_ rules: EndpointURL.Rules) -> EndpointURL? {
        parsed({ (text) throws(EndpointURLError) in try EndpointURL(text, rules: rules) }, reason: { "is not a valid URL here: \($0.reason)" })
    }

    /// A list whose elements are each read by `element`; `nil` if this is not
    /// a list, elements that fail are dropped (their diagnostics recorded).
    func list<T>(nonEmpty: Bool = true, _ element: (NodeReader) -> T?) -> [T]? {
        guard case .sequence(let sequence) = node else {
            report("expected a list, found \(kindDescription); write it as [a, b] or as lines starting with \"- \"")
            return nil
        }
        if nonEmpty && sequence.isEmpty {
            report("must list at least one item")
            return nil
        }
        var values: [T] = []
        for (index, item) in sequence.enumerated() {
            if let value = element(NodeReader(node: item, path: "\(path)[\(index)]", context: context)) {
                values.append(value)
            }
        }
        return values.count == sequence.count ? values : nil
    }

    /// A list of strings with duplicates reported.
    func uniqueList<T: Hashable>(_ element: (NodeReader) -> T?) -> [T]? {
        guard let values = list(element) else { return nil }
        var seen = Set<T>()
        for (index, value) in values.enumerated() where !seen.insert(value).inserted {
            NodeReader(node: sequenceItem(index), path: "\(path)[\(index)]", context: context)
                .report("repeats an earlier entry; remove the duplicate")
            return nil
        }
        return values
    }

    private func sequenceItem(_ index: Int) -> Node {
        if case .sequence(let sequence) = node, index < sequence.count { return sequence[index] }
        return node
    }

    func mapping() -> MappingReader? {
        guard case .mapping(let mapping) = node else {
            report("expected a mapping (key: value lines), found \(kindDescription)")
            return nil
        }
        return MappingReader(mapping: mapping, node: node, path: path, context: context)
    }

    /// A mapping from string keys to string values (labels, claim values).
    func stringMap(_ value: (NodeReader) -> String?) -> [String: String]? {
        guard let reader = mapping() else { return nil }
        var result: [String: String] = [:]
        var ok = true
        for key in reader.keys {
            if let text = reader.optional(key, value) { result[key] = text } else { ok = false }
        }
        return ok ? result : nil
    }
}

/// Reads the fields of one mapping. Every field read is remembered;
/// `finish()` reports the rest as unknown, suggesting the nearest known name.
final class MappingReader {
    let node: Node
    let path: String
    let context: ReadContext
    private var values: [String: Node] = [:]
    private var keyNodes: [String: Node] = [:]
    private(set) var keys: [String] = []
    private var known: [String] = []

    init(mapping: Node.Mapping, node: Node, path: String, context: ReadContext) {
        self.node = node
        self.path = path
        self.context = context
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key, key.tagName == .str else {
                context.report("mapping keys must be field names (strings)", at: key, field: path)
                continue
            }
            if values[scalar.string] != nil {
                context.report("field \"\(scalar.string)\" appears twice; keep one", at: key, field: child(scalar.string))
                continue
            }
            values[scalar.string] = value
            keyNodes[scalar.string] = key
            keys.append(scalar.string)
        }
    }

    func child(_ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    func has(_ key: String) -> Bool {
        if let value = values[key], value.tagName != .null { return true }
        return false
    }

    /// The field's reader, or nil when absent or explicitly null.
    func field(_ key: String) -> NodeReader? {
        known.append(key)
        guard let value = values[key], value.tagName != .null else { return nil }
        return NodeReader(node: value, path: child(key), context: context)
    }

    func optional<T>(_ key: String, _ read: (NodeReader) -> T?) -> T? {
        field(key).flatMap(read)
    }

    /// Reads a required field; reports it missing with `hint` as what to write.
    func required<T>(_ key: String, hint: String = "", _ read: (NodeReader) -> T?) -> T? {
        guard let reader = field(key) else {
            context.report("missing required field \"\(key)\"\(hint.isEmpty ? "" : "; \(hint)")", at: node, field: child(key))
            return nil
        }
        return read(reader)
    }

    func report(_ message: String, field key: String? = nil) {
        let at = key.flatMap { keyNodes[$0] } ?? node
        context.report(message, at: at, field: key.map(child) ?? path)
    }

    /// Reports every field that was never asked for.
    func finish() {
        for key in keys where !known.contains(key) {
            var message = "unknown field \"\(key)\""
            if let suggestion = Self.nearest(to: key, in: known) {
                message += "; did you mean \"\(suggestion)\"?"
            } else if !known.isEmpty {
                message += "; known fields here: \(known.joined(separator: ", "))"
            }
            context.report(message, at: keyNodes[key], field: child(key))
        }
    }

    static func nearest(to word: String, in candidates: [String]) -> String? {
        let scored = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(2, word.count / 3) else { return nil }
        return best.0
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return a.isEmpty ? b.count : previous[b.count]
    }
}

extension Node {
    /// The resolved YAML tag (`str`, `int`, `null`, …).
    var tagName: Tag.Name { Tag.Name(rawValue: tag.rawValue) }
}
