import Yams

/// Operator config text and the name to report it under (a path, or `-`).
public struct ConfigSource: Hashable, Sendable, Codable {
    public var name: String
    public var text: String

    public init(name: String, text: String) {
        self.name = name
        self.text = text
    }
}

/// A resource read from a source, with where each of its fields was.
public struct ParsedResource: Hashable, Sendable {
    public var resource: Resource
    public var location: SourceLocation?
    /// Field path (`spec.rules[0].agents`) → where it was written.
    public var fieldLocations: [String: SourceLocation]

    public init(resource: Resource, location: SourceLocation? = nil, fieldLocations: [String: SourceLocation] = [:]) {
        self.resource = resource
        self.location = location
        self.fieldLocations = fieldLocations
    }

    /// A diagnostic about one of this resource's fields.
    public func diagnostic(field: String, _ message: String) -> ConfigDiagnostic {
        ConfigDiagnostic(
            location: fieldLocations[field] ?? location,
            resource: resource.id.description,
            field: field,
            message: message
        )
    }
}

/// Parses Kubernetes-style config: YAML with any number of `---` documents,
/// JSON (one object, or an array of them), each a resource with `apiVersion`,
/// `kind`, `metadata` and `spec`.
///
/// ```swift
/// let resources = try ConfigParser.parse([ConfigSource(name: "mesh.yaml", text: yaml)])
/// ```
public enum ConfigParser {
    /// Every resource of every source, or every problem found in them.
    public static func parse(_ sources: [ConfigSource]) throws(ConfigValidationError) -> [ParsedResource] {
        var resources: [ParsedResource] = []
        var diagnostics: [ConfigDiagnostic] = []
        for source in sources {
            let (parsed, problems) = parse(source)
            resources += parsed
            diagnostics += problems
        }
        guard diagnostics.isEmpty else { throw ConfigValidationError(diagnostics) }
        return resources
    }

    /// One source's resources and diagnostics; a document with problems
    /// yields no resource.
    public static func parse(_ source: ConfigSource) -> ([ParsedResource], [ConfigDiagnostic]) {
        var documents: [Node] = []
        do {
            // Not `compose_all`: its sequence stops silently at an error.
            let parser = try Parser(yaml: source.text)
            while let document = try parser.nextRoot() {
                documents.append(document)
            }
        } catch let error as YamlError {
            return ([], [syntaxDiagnostic(error, source: source)])
        } catch {
            return ([], [ConfigDiagnostic(location: nil, resource: nil, field: nil, message: "cannot be read as YAML or JSON")].map {
                var diagnostic = $0
                diagnostic.location = SourceLocation(file: source.name, line: 1, column: 1)
                return diagnostic
            })
        }
        var resources: [ParsedResource] = []
        var diagnostics: [ConfigDiagnostic] = []
        for document in documents {
            // A JSON array (or YAML list) of resources is a batch of documents.
            let items: [Node]
            if case .sequence(let sequence) = document { items = Array(sequence) } else { items = [document] }
            for item in items where item.tagName != .null {
                let context = ReadContext(file: source.name)
                let resource = read(item, context: context)
                if let resource, context.diagnostics.isEmpty {
                    resources.append(ParsedResource(resource: resource, location: context.location(of: item), fieldLocations: context.locations))
                }
                diagnostics += context.diagnostics
            }
        }
        return (resources, diagnostics)
    }

    static func read(_ node: Node, context: ReadContext) -> Resource? {
        guard let document = NodeReader(node: node, path: "", context: context).mapping() else { return nil }
        defer { document.finish() }
        let kind = document.required("kind", hint: "one of \(ResourceKind.allCases.map(\.rawValue).joined(separator: ", "))") { node -> ResourceKind? in
            guard let text = node.string() else { return nil }
            guard let kind = ResourceKind(rawValue: text) else {
                let suggestion = MappingReader.nearest(to: text, in: ResourceKind.allCases.map(\.rawValue))
                node.report("\"\(text)\" is not a Tether kind; " + (suggestion.map { "did you mean \"\($0)\"?" } ?? "use one of \(ResourceKind.allCases.map(\.rawValue).joined(separator: ", "))"))
                return nil
            }
            return kind
        }
        let metadata = document.required("metadata", hint: "give at least metadata.name") { node -> ResourceMetadata? in
            guard let fields = node.mapping() else { return nil }
            defer { fields.finish() }
            let name = fields.required("name", hint: "a lowercase name such as github-readonly") { node -> String? in
                guard let name = node.string() else { return nil }
                if let problem = ResourceMetadata.checkName(name) {
                    node.report("\"\(name)\" \(problem)")
                    return nil
                }
                return name
            }
            let labels = fields.optional("labels") { $0.stringMap { $0.string() } }
            guard let name else { return nil }
            return ResourceMetadata(name: name, labels: labels)
        }
        context.resource = "\(kind?.rawValue ?? "<unknown kind>")/\(metadata?.name ?? "<unnamed>")"
        // Diagnostics recorded before the resource was known get its label too.
        for index in context.diagnostics.indices where context.diagnostics[index].resource == nil {
            context.diagnostics[index].resource = context.resource
        }
        _ = document.required("apiVersion", hint: "write apiVersion: \(Resource.apiVersion)") { node -> String? in
            guard let version = node.string() else { return nil }
            guard version == Resource.apiVersion else {
                node.report("\"\(version)\" is not supported; this version of Tether reads \(Resource.apiVersion)")
                return nil
            }
            return version
        }
        let spec = document.required("spec") { node -> ResourceSpec? in
            guard let kind, let fields = node.mapping() else { return nil }
            defer { fields.finish() }
            switch kind {
            case .mcpBackend: return MCPBackendSpec(reading: fields).map(ResourceSpec.mcpBackend)
            case .route: return RouteSpec(reading: fields).map(ResourceSpec.route)
            case .identityProvider: return IdentityProviderSpec(reading: fields).map(ResourceSpec.identityProvider)
            case .tokenExchange: return TokenExchangeSpec(reading: fields).map(ResourceSpec.tokenExchange)
            case .authorizationPolicy: return AuthorizationPolicySpec(reading: fields).map(ResourceSpec.authorizationPolicy)
            case .credential: return CredentialSpec(reading: fields).map(ResourceSpec.credential)
            case .trustBundle: return TrustBundleSpec(reading: fields).map(ResourceSpec.trustBundle)
            }
        }
        guard let metadata, let spec else { return nil }
        return Resource(name: metadata.name, labels: metadata.labels, spec: spec)
    }

    /// A YAML syntax error as a diagnostic. Built from the problem and its
    /// position only: the parser's own description quotes the offending
    /// line, which could be a secret.
    static func syntaxDiagnostic(_ error: YamlError, source: ConfigSource) -> ConfigDiagnostic {
        let (problem, position): (String, (line: Int, column: Int)?) = switch error {
        case .scanner(let context, let problem, let mark, _): (context.map { "\(problem) \($0.text)" } ?? problem, ((context?.mark ?? mark).line, (context?.mark ?? mark).column))
        case .parser(let context, let problem, let mark, _): (context.map { "\(problem) \($0.text)" } ?? problem, (mark.line, mark.column))
        case .composer(let context, let problem, let mark, _): (context.map { "\(problem) \($0.text)" } ?? problem, (mark.line, mark.column))
        case .duplicatedKeysInMapping(let duplicates, let context):
            ("field \(duplicates.sorted().map { "\"\($0)\"" }.joined(separator: ", ")) appears twice; keep one",
             secondOccurrence(of: duplicates.sorted().first ?? "", in: source.text, mappingAt: context.mark) ?? (context.mark.line, context.mark.column))
        case .reader(let problem, _, _, _): (problem, nil)
        default: ("cannot be read as YAML or JSON", nil)
        }
        return ConfigDiagnostic(
            location: SourceLocation(file: source.name, line: position?.line ?? 1, column: position?.column ?? 1),
            resource: nil,
            field: nil,
            message: "syntax error: \(problem)"
        )
    }

    /// Where a key repeats in a block mapping: the parser reports only the
    /// mapping, but the operator needs the line to delete.
    static func secondOccurrence(of key: String, in text: String, mappingAt mark: Mark) -> (line: Int, column: Int)? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        var seen = 0
        for index in max(0, mark.line - 1)..<lines.count {
            let line = lines[index]
            let indent = line.prefix(while: { $0 == " " || $0 == "-" }).count
            guard indent + 1 == mark.column || (index == mark.line - 1) else { continue }
            let content = line.dropFirst(indent)
            if content.hasPrefix(key), content.dropFirst(key.count).drop(while: { $0 == " " }).hasPrefix(":") {
                seen += 1
                if seen == 2 { return (index + 1, indent + 1) }
            }
        }
        return nil
    }
}
