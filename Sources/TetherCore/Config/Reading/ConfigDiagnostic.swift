/// A place in an operator's config file.
public struct SourceLocation: Hashable, Sendable, Codable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// One problem with operator config: where it is (file, line, column), which
/// resource (`Kind/name`), which field (`spec.rules[0].agents[1]`), and what
/// is wrong and what to do, in one line.
///
/// Printed like a compiler diagnostic so editors can jump to it:
/// `mesh.yaml:14:14: Route/github: spec.backend: MCPBackend "gh" does not exist; …`
public struct ConfigDiagnostic: Error, Hashable, Sendable, Codable, CustomStringConvertible {
    public var location: SourceLocation?
    /// `Kind/name` of the resource, when the document got far enough to have one.
    public var resource: String?
    /// Dotted path of the field, e.g. `spec.rules[0].tools[2]`.
    public var field: String?
    public var message: String

    public init(location: SourceLocation?, resource: String?, field: String?, message: String) {
        self.location = location
        self.resource = resource
        self.field = field
        self.message = message
    }

    public var description: String {
        var parts: [String] = []
        if let location { parts.append(location.description) }
        if let resource { parts.append(resource) }
        if let field, !field.isEmpty { parts.append(field) }
        parts.append(message)
        return parts.joined(separator: ": ")
    }
}

/// A rejected config: every diagnostic found, in file order.
public struct ConfigValidationError: Error, Hashable, Sendable, Codable, CustomStringConvertible {
    public var diagnostics: [ConfigDiagnostic]

    public init(_ diagnostics: [ConfigDiagnostic]) {
        self.diagnostics = diagnostics
    }

    public var description: String {
        diagnostics.map(\.description).joined(separator: "\n")
    }
}
