import TetherCore

/// The xDS type URL of each Tether config kind:
/// `type.googleapis.com/tether.config.v1.<Kind>`.
public enum TetherTypes {
    public static let prefix = "type.googleapis.com/tether.config.v1."

    public static func typeURL(_ kind: ResourceKind) -> String {
        prefix + kind.rawValue
    }

    public static func kind(typeURL: String) -> ResourceKind? {
        guard typeURL.hasPrefix(prefix) else { return nil }
        return ResourceKind(rawValue: String(typeURL.dropFirst(prefix.count)))
    }

    /// Every type, in the order a push sends them: what is referenced before
    /// what references it.
    public static let pushOrder: [ResourceKind] = ResourceKind.allCases.sorted()
}
