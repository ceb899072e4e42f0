import SwiftProtobuf
import TetherCore

/// The config a proxy runs: every resource it was sent, with its version.
public struct ProxyConfig: Hashable, Sendable {
    public var resources: [ResourceID: VersionedResource]
    /// The control plane's revision of the last accepted response.
    public var systemVersion: String

    public init(resources: [ResourceID: VersionedResource] = [:], systemVersion: String = "") {
        self.resources = resources
        self.systemVersion = systemVersion
    }

    /// References that do not resolve yet (`Route/github → MCPBackend/github`).
    /// A resource may arrive before what it names; the proxy is ready once
    /// none are left. Routes of other agents, which a serving proxy holds
    /// only to enforce their policies, are not followed.
    public func unresolvedReferences(for node: SPIFFEID) -> [String] {
        resources.values.flatMap { item -> [String] in
            if case .route(let route) = item.resource.spec, !route.serves(node) { return [] }
            return item.resource.references.filter { resources[$0.target] == nil }.map { "\(item.resource.id) → \($0.target)" }
        }.sorted()
    }
}

/// The proxy side of a delta ADS stream: what to ask for, and whether to
/// accept each response. Pure; the connection loop does the I/O.
///
/// A response is accepted or rejected whole: every resource in it is decoded
/// and validated (the control plane's own rules, plus `localCheck` for what
/// only this host can judge, such as whether a file exists). On rejection the
/// config stays exactly as it was and the NACK names every problem.
public struct XDSClientStateMachine: Sendable {
    public typealias Request = Envoy_Service_Discovery_V3_DeltaDiscoveryRequest
    public typealias Response = Envoy_Service_Discovery_V3_DeltaDiscoveryResponse

    public enum Outcome: Sendable {
        case accepted(ProxyConfig, ack: Request)
        case rejected(reason: String, nack: Request)
    }

    public let node: String
    public private(set) var config: ProxyConfig

    public init(node: String, config: ProxyConfig) {
        self.node = node
        self.config = config
    }

    /// The first request of each type on a new stream: subscribe to
    /// everything, and say what we already hold so only changes come back.
    public func initialRequests() -> [Request] {
        TetherTypes.pushOrder.map { kind in
            var request = Request()
            request.node.id = node
            request.node.userAgentName = "tether-proxy"
            request.typeURL = TetherTypes.typeURL(kind)
            request.resourceNamesSubscribe = ["*"]
            for (id, item) in config.resources where id.kind == kind {
                request.initialResourceVersions[id.name] = item.version
            }
            return request
        }
    }

    public mutating func handle(_ response: Response, localCheck: (Resource) -> String?) -> Outcome {
        guard let kind = TetherTypes.kind(typeURL: response.typeURL) else {
            return reject(response, "type \(response.typeURL) is not a Tether config type this proxy knows")
        }
        var problems: [String] = []
        var next = config
        for item in response.resources {
            guard item.hasResource else {
                problems.append("\(kind.rawValue)/\(item.name): the response carries no resource body")
                continue
            }
            guard item.resource.typeURL == response.typeURL else {
                problems.append("\(kind.rawValue)/\(item.name): resource of type \(item.resource.typeURL) in a \(response.typeURL) response")
                continue
            }
            do {
                let resource = try ResourceCoding.decode(item.resource, name: item.name)
                if let problem = localCheck(resource) {
                    problems.append("\(resource.id): \(problem)")
                    continue
                }
                next.resources[resource.id] = VersionedResource(resource: resource, version: item.version)
            } catch {
                problems.append(error.description)
            }
        }
        guard problems.isEmpty else {
            return reject(response, problems.joined(separator: "; "))
        }
        for name in response.removedResources {
            next.resources[ResourceID(kind, name)] = nil
        }
        next.systemVersion = response.systemVersionInfo
        config = next
        var ack = Request()
        ack.typeURL = response.typeURL
        ack.responseNonce = response.nonce
        return .accepted(next, ack: ack)
    }

    private func reject(_ response: Response, _ reason: String) -> Outcome {
        var nack = Request()
        nack.typeURL = response.typeURL
        nack.responseNonce = response.nonce
        nack.errorDetail.code = 3  // INVALID_ARGUMENT, as gRPC xDS clients send
        nack.errorDetail.message = reason
        return .rejected(reason: reason, nack: nack)
    }
}
