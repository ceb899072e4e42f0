/// A proxy failure outside the request path (starting up, its identity,
/// its files): a stable code, and a message that says what to do.
public struct ProxyError: Error, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// Flags and addresses that cannot work together.
        case configuration
        /// The SVID: bootstrap, renewal, a Workload API source.
        case identity
        /// The data directory, the access log, sockets and saved files.
        case files
        /// A fetch from elsewhere (a JWK Set) failed.
        case upstream
    }

    public var code: Code
    public var description: String

    public init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }
}
