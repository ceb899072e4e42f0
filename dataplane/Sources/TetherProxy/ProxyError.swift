/// A proxy failure with an actionable message.
public struct ProxyError: Error, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
