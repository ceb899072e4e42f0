import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import TetherCore

/// The control-plane replicas a proxy may talk to: `--control` with one or
/// more `host:port`, comma-separated. A DNS name may stand for several
/// replicas: gRPC resolves it on every connection attempt and tries its
/// addresses in turn. The xDS client moves to the next entry whenever a
/// stream ends, and identity calls try every entry before failing, so a
/// replica that dies costs a reconnect, not an outage.
public struct ControlPlaneAddresses: Sendable, CustomStringConvertible {
    public let all: [HostPort]

    public init(_ all: [HostPort]) {
        precondition(!all.isEmpty)
        self.all = all
    }

    /// Parses `--control`; `what` names the flag in errors.
    public init(parsing text: String, what: String) throws(ProxyError) {
        var parsed: [HostPort] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false).map({ $0.trimmingCharacters(in: .whitespaces) }) {
            do {
                parsed.append(try HostPort(item))
            } catch {
                throw ProxyError(.configuration, "\(what) \(text): \"\(item)\" is not host:port (\(error.reason)); give one or more, comma-separated: 10.0.0.1:15012,10.0.0.2:15012")
            }
        }
        self.init(parsed)
    }

    public var first: HostPort { all[0] }

    public var description: String { all.map(\.description).joined(separator: ",") }

    /// The entry after `index`, round the list.
    func next(after index: Int) -> Int { (index + 1) % all.count }

    /// A gRPC transport to entry `index`.
    static func transport(to address: HostPort, security: HTTP2ClientTransport.Posix.TransportSecurity) throws -> HTTP2ClientTransport.Posix {
        if address.host.contains(":") {
            return try HTTP2ClientTransport.Posix(target: .ipv6(address: address.host, port: address.port), transportSecurity: security)
        }
        var probe = in_addr()
        if inet_pton(AF_INET, address.host, &probe) == 1 {
            return try HTTP2ClientTransport.Posix(target: .ipv4(address: address.host, port: address.port), transportSecurity: security)
        }
        return try HTTP2ClientTransport.Posix(target: .dns(host: address.host, port: address.port), transportSecurity: security)
    }
}
