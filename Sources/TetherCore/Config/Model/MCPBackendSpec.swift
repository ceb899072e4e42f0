/// Where an MCP server is and how to reach it: either inside the mesh, behind
/// a tether-proxy's inbound listener, or outside it over TLS.
public enum MCPBackendSpec: Hashable, Sendable {
    case inMesh(InMesh)
    case external(External)

    /// An MCP server served by a tether-proxy inbound listener.
    public struct InMesh: Hashable, Sendable, Codable {
        /// The SPIFFE ID the serving proxy presents; callers verify it.
        public var spiffeID: SPIFFEID
        /// The serving proxy's inbound listener, `host:port`.
        public var address: HostPort
        /// The local URL the serving proxy forwards to.
        public var upstream: EndpointURL
    }

    /// An MCP server outside the mesh.
    public struct External: Hashable, Sendable, Codable {
        public var url: EndpointURL
        public var tls: TLS?
    }

    public struct TLS: Hashable, Sendable, Codable {
        /// PEM file of the CA certificates that sign the server's certificate;
        /// the system roots when absent.
        public var caFile: String?
        /// Inline PEM, instead of `caFile`.
        public var caPEM: String?
        /// The name to verify and send as SNI, when it differs from the URL host.
        public var serverName: String?
    }
}

extension MCPBackendSpec: Codable {
    enum CodingKeys: String, CodingKey {
        case inMesh, external
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let inMesh = try container.decodeIfPresent(InMesh.self, forKey: .inMesh) {
            self = .inMesh(inMesh)
        } else {
            self = .external(try container.decode(External.self, forKey: .external))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .inMesh(let inMesh): try container.encode(inMesh, forKey: .inMesh)
        case .external(let external): try container.encode(external, forKey: .external)
        }
    }
}

extension MCPBackendSpec {
    init?(reading spec: MappingReader) {
        let inMesh = spec.optional("inMesh") { node -> InMesh? in
            guard let fields = node.mapping() else { return nil }
            defer { fields.finish() }
            let spiffeID = fields.required("spiffeID", hint: "the SPIFFE ID of the proxy that serves this backend") { $0.spiffeID() }
            let address = fields.required("address", hint: "the serving proxy's inbound listener as host:port") { node in
                node.parsed({ (text) throws(EndpointURLError) in try HostPort(text) }, reason: { $0.reason })
            }
            let upstream = fields.required("upstream", hint: "the MCP server's local URL, e.g. http://127.0.0.1:8080/mcp") {
                $0.url(.tlsUnlessLoopback)
            }
            guard let spiffeID, let address, let upstream else { return nil }
            return InMesh(spiffeID: spiffeID, address: address, upstream: upstream)
        }
        let external = spec.optional("external") { node -> External? in
            guard let fields = node.mapping() else { return nil }
            defer { fields.finish() }
            let url = fields.required("url", hint: "the MCP endpoint, e.g. https://mcp.example.com/mcp") { $0.url(.tlsUnlessLoopback) }
            let tls = fields.optional("tls") { node -> TLS? in
                guard let fields = node.mapping() else { return nil }
                defer { fields.finish() }
                let caFile = fields.optional("caFile") { $0.nonEmptyString() }
                let caPEM = fields.optional("caPEM") { node -> String? in
                    guard let pem = node.nonEmptyString() else { return nil }
                    guard pem.contains("-----BEGIN CERTIFICATE-----") else {
                        node.report("is not PEM; expected one or more \"-----BEGIN CERTIFICATE-----\" blocks")
                        return nil
                    }
                    return pem
                }
                let serverName = fields.optional("serverName") { $0.nonEmptyString() }
                if caFile != nil, caPEM != nil {
                    fields.report("set caFile or caPEM, not both", field: "caPEM")
                    return nil
                }
                return TLS(caFile: caFile, caPEM: caPEM, serverName: serverName)
            }
            guard let url else { return nil }
            if tls != nil, url.scheme == "http" {
                fields.report("tls is set but the URL is plaintext http; use an https URL", field: "tls")
                return nil
            }
            return External(url: url, tls: tls)
        }
        switch (inMesh, external) {
        case (let inMesh?, nil): self = .inMesh(inMesh)
        case (nil, let external?): self = .external(external)
        case (.some, .some):
            spec.report("set either inMesh or external, not both", field: "external")
            return nil
        case (nil, nil):
            if !spec.has("inMesh") && !spec.has("external") {
                spec.report("missing backend location; set inMesh (served by a tether-proxy) or external (a URL)")
            }
            return nil
        }
    }
}
