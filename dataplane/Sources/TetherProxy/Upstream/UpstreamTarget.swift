import HTTPTypes
import TetherCore

/// Where a request goes and how the connection is secured. Connections are
/// pooled per target.
struct UpstreamTarget: Hashable, Sendable, CustomStringConvertible {
    enum Security: Hashable, Sendable {
        /// Plaintext HTTP/1.1: only ever to a loopback address (the config
        /// validator refuses anything else).
        case cleartext
        /// HTTP/2 over mTLS to a serving tether-proxy, which must present
        /// exactly this SPIFFE ID.
        case mesh(SPIFFEID)
        /// HTTP/1.1 over TLS to a server outside the mesh, verified against
        /// its CA (PEM) or the system roots, by `serverName`.
        case tls(serverName: String, caPEM: String?, caFile: String?)
        /// HTTP/1.1 over mTLS to the control plane's token service, which
        /// must present exactly this SPIFFE ID.
        case controlPlane(SPIFFEID)
    }

    var host: String
    var port: Int
    var security: Security

    var description: String {
        let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        return switch security {
        case .cleartext: "http://\(authority)"
        case .mesh(let id): "mesh://\(authority) (\(id))"
        case .tls: "https://\(authority)"
        case .controlPlane(let id): "https://\(authority) (\(id))"
        }
    }

    /// The Host header an HTTP server at `url` expects: MCP servers with
    /// DNS-rebinding protection refuse any other with 421.
    static func authority(of url: EndpointURL) -> String {
        let host = url.host.contains(":") ? "[\(url.host)]" : url.host
        let defaultPort = url.scheme == "https" ? 443 : 80
        return url.port == defaultPort ? host : "\(host):\(url.port)"
    }
}
