import TetherCore

/// An error the control plane reports to an operator: a stable code and a
/// message that says what to do. Config problems carry every diagnostic.
public struct ControlPlaneError: Error, Hashable, Sendable, Codable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable, Codable {
        /// The config was rejected; `diagnostics` says where and why.
        case invalidConfig
        case notFound
        case badRequest
        case dataDirectory
        case alreadyRunning
        case storage
        case secrets
        case unavailable
        case permissionDenied
        case `internal`
    }

    public var code: Code
    public var message: String
    public var diagnostics: [ConfigDiagnostic]

    public init(_ code: Code, _ message: String, diagnostics: [ConfigDiagnostic] = []) {
        self.code = code
        self.message = message
        self.diagnostics = diagnostics
    }

    public init(_ error: ConfigValidationError) {
        let count = error.diagnostics.count
        self.init(.invalidConfig, "the config has \(count) error\(count == 1 ? "" : "s"); nothing was changed", diagnostics: error.diagnostics)
    }

    public var description: String {
        ([message] + diagnostics.map(\.description)).joined(separator: "\n")
    }
}
