import Foundation
import SwiftProtobuf
import TetherCore

/// Converts config resources to their `tether.config.v1` messages and back.
///
/// Encoding is total. Decoding checks only what the wire format cannot
/// express (type URL, unknown fields from a newer schema, enum values) and
/// then hands the resource to the same validation the control plane runs
/// (`ConfigParser` + the kind's rules), so a proxy accepts exactly what the
/// control plane would.
public enum ResourceCoding {
    // Not inlined: Swift 6.3's optimizer crashed ("Found ownership error")
    // with it inlined into SotWStreamStateMachine.respond in release builds.
    @inline(never)
    public static func any(_ resource: Resource) -> Google_Protobuf_Any {
        var any = Google_Protobuf_Any()
        any.typeURL = TetherTypes.typeURL(resource.kind)
        // Serializing a message we built cannot fail.
        any.value = try! message(resource).serializedData()
        return any
    }

    public static func message(_ resource: Resource) -> any SwiftProtobuf.Message {
        var metadata = Tether_Config_V1_Metadata()
        metadata.name = resource.metadata.name
        metadata.labels = resource.metadata.labels ?? [:]
        switch resource.spec {
        case .mcpBackend(let spec):
            var message = Tether_Config_V1_MCPBackend()
            message.metadata = metadata
            switch spec {
            case .inMesh(let backend):
                var inMesh = Tether_Config_V1_MCPBackend.InMesh()
                inMesh.spiffeID = backend.spiffeID.description
                inMesh.address = backend.address.description
                inMesh.upstream = backend.upstream.description
                message.inMesh = inMesh
            case .external(let backend):
                var external = Tether_Config_V1_MCPBackend.External()
                external.url = backend.url.description
                if let tls = backend.tls {
                    var tlsMessage = Tether_Config_V1_MCPBackend.TLS()
                    tls.caFile.map { tlsMessage.caFile = $0 }
                    tls.caPEM.map { tlsMessage.caPem = $0 }
                    tls.serverName.map { tlsMessage.serverName = $0 }
                    external.tls = tlsMessage
                }
                message.external = external
            }
            return message
        case .route(let spec):
            var message = Tether_Config_V1_Route()
            message.metadata = metadata
            message.agents = spec.agents.map(\.description)
            message.path = spec.path
            message.backend = spec.backend
            spec.identityProvider.map { message.identityProvider = $0 }
            spec.tokenExchange.map { message.tokenExchange = $0 }
            spec.timeout.map { message.timeout = duration($0) }
            return message
        case .identityProvider(let spec):
            var message = Tether_Config_V1_IdentityProvider()
            message.metadata = metadata
            message.issuer = spec.issuer.description
            message.audiences = spec.audiences
            switch spec.jwks {
            case .inline(let text): message.jwksInline = text
            case .file(let path): message.jwksFile = path
            case .url(let url): message.jwksURL = url.description
            }
            message.allowedAlgorithms = spec.allowedAlgorithms.map(\.rawValue)
            spec.subjectClaim.map { message.subjectClaim = $0 }
            spec.clockSkew.map { message.clockSkew = duration($0) }
            return message
        case .tokenExchange(let spec):
            var message = Tether_Config_V1_TokenExchange()
            message.metadata = metadata
            message.type = switch spec.type {
            case .builtin: .builtin
            case .rfc8693: .rfc8693
            case .jwtSVID: .jwtSvid
            case .credential: .credential
            }
            spec.audience.map { message.audience = $0 }
            message.scopes = spec.scopes ?? []
            spec.ttl.map { message.ttl = duration($0) }
            spec.endpoint.map { message.endpoint = $0.description }
            spec.clientID.map { message.clientID = $0 }
            spec.clientSecret.map { message.clientSecret = $0 }
            spec.credential.map { message.credential = $0 }
            spec.header.map { message.header = $0 }
            spec.scheme.map { message.scheme = $0 }
            return message
        case .authorizationPolicy(let spec):
            var message = Tether_Config_V1_AuthorizationPolicy()
            message.metadata = metadata
            message.targets.routes = spec.targets.routes ?? []
            message.targets.backends = spec.targets.backends ?? []
            message.action = spec.action == .allow ? .allow : .deny
            message.rules = spec.rules.map { rule in
                var ruleMessage = Tether_Config_V1_AuthorizationPolicy.Rule()
                ruleMessage.agents = (rule.agents ?? []).map(\.description)
                ruleMessage.claims = (rule.claims ?? [:]).mapValues { values in
                    var claim = Tether_Config_V1_AuthorizationPolicy.ClaimValues()
                    claim.values = values
                    return claim
                }
                ruleMessage.methods = (rule.methods ?? []).map(\.description)
                ruleMessage.tools = (rule.tools ?? []).map(\.description)
                ruleMessage.resources = (rule.resources ?? []).map(\.description)
                ruleMessage.prompts = (rule.prompts ?? []).map(\.description)
                return ruleMessage
            }
            if let delegation = spec.delegation {
                var delegationMessage = Tether_Config_V1_AuthorizationPolicy.Delegation()
                delegation.maxDepth.map { delegationMessage.maxDepth = Int32($0) }
                delegationMessage.requiredActors = (delegation.requiredActors ?? []).map(\.description)
                message.delegation = delegationMessage
            }
            return message
        case .credential(let spec):
            var message = Tether_Config_V1_Credential()
            message.metadata = metadata
            spec.description.map { message.description_p = $0 }
            if case .plaintext(let value)? = spec.value { message.value = value }
            return message
        case .trustBundle(let spec):
            var message = Tether_Config_V1_TrustBundle()
            message.metadata = metadata
            message.trustDomain = spec.trustDomain
            message.spiffeBundle = spec.spiffeBundle
            return message
        }
    }

    static func duration(_ value: ConfigDuration) -> Google_Protobuf_Duration {
        var duration = Google_Protobuf_Duration()
        duration.seconds = value.milliseconds / 1000
        duration.nanos = Int32((value.milliseconds % 1000) * 1_000_000)
        return duration
    }
}

/// Why a proxy cannot use a resource it was sent; the message goes back to
/// the control plane in the NACK.
public struct ResourceDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    public var resource: String
    public var reason: String

    public init(resource: String, reason: String) {
        self.resource = resource
        self.reason = reason
    }

    public var description: String { "\(resource): \(reason)" }
}

extension ResourceCoding {
    /// Decodes and validates one resource sent under `name`.
    public static func decode(_ any: Google_Protobuf_Any, name: String) throws(ResourceDecodingError) -> Resource {
        guard let kind = TetherTypes.kind(typeURL: any.typeURL) else {
            throw ResourceDecodingError(resource: name, reason: "type \(any.typeURL) is not a Tether config type this proxy knows; upgrade the proxy")
        }
        let label = "\(kind.rawValue)/\(name)"
        let document: [String: Any]
        do {
            document = try jsonDocument(kind, any.value, label: label)
        } catch let error as ResourceDecodingError {
            throw error
        } catch {
            throw ResourceDecodingError(resource: label, reason: "cannot decode: \(error)")
        }
        guard (document["metadata"] as? [String: Any])?["name"] as? String == name else {
            throw ResourceDecodingError(resource: label, reason: "metadata.name differs from the xDS resource name")
        }
        // The same reader and rules the control plane applies to operators' files.
        let data = try! JSONSerialization.data(withJSONObject: document, options: [.sortedKeys])
        let (resources, diagnostics) = ConfigParser.parse(ConfigSource(name: "xds", text: String(decoding: data, as: UTF8.self)))
        guard diagnostics.isEmpty, let resource = resources.first?.resource else {
            let reasons = diagnostics.map { [$0.field, $0.message].compactMap { $0 }.joined(separator: ": ") }
            throw ResourceDecodingError(resource: label, reason: reasons.joined(separator: "; "))
        }
        return resource
    }

    /// The resource as the JSON document an operator would have written.
    static func jsonDocument(_ kind: ResourceKind, _ bytes: Data, label: String) throws -> [String: Any] {
        func checked<M: SwiftProtobuf.Message>(_ type: M.Type) throws -> M {
            let message = try M(serializedBytes: bytes)
            if let unknown = firstUnknownField(message) {
                throw ResourceDecodingError(resource: label, reason: "has field \(unknown) that this proxy does not know (a newer control plane?); upgrade the proxy")
            }
            return message
        }
        func metadata(_ m: Tether_Config_V1_Metadata) -> [String: Any] {
            m.labels.isEmpty ? ["name": m.name] : ["name": m.name, "labels": m.labels]
        }
        func durationText(_ d: Google_Protobuf_Duration) -> String {
            ConfigDuration(milliseconds: d.seconds * 1000 + Int64(d.nanos / 1_000_000)).description
        }
        var spec: [String: Any] = [:]
        let meta: Tether_Config_V1_Metadata
        switch kind {
        case .mcpBackend:
            let m = try checked(Tether_Config_V1_MCPBackend.self)
            meta = m.metadata
            switch m.location {
            case .inMesh(let inMesh)?:
                spec["inMesh"] = ["spiffeID": inMesh.spiffeID, "address": inMesh.address, "upstream": inMesh.upstream]
            case .external(let external)?:
                var value: [String: Any] = ["url": external.url]
                if external.hasTls {
                    var tls: [String: Any] = [:]
                    if external.tls.hasCaFile { tls["caFile"] = external.tls.caFile }
                    if external.tls.hasCaPem { tls["caPEM"] = external.tls.caPem }
                    if external.tls.hasServerName { tls["serverName"] = external.tls.serverName }
                    value["tls"] = tls
                }
                spec["external"] = value
            case nil:
                break
            }
        case .route:
            let m = try checked(Tether_Config_V1_Route.self)
            meta = m.metadata
            spec["agents"] = m.agents
            spec["path"] = m.path
            spec["backend"] = m.backend
            if m.hasIdentityProvider { spec["identityProvider"] = m.identityProvider }
            if m.hasTokenExchange { spec["tokenExchange"] = m.tokenExchange }
            if m.hasTimeout { spec["timeout"] = durationText(m.timeout) }
        case .identityProvider:
            let m = try checked(Tether_Config_V1_IdentityProvider.self)
            meta = m.metadata
            spec["issuer"] = m.issuer
            spec["audiences"] = m.audiences
            switch m.jwks {
            case .jwksInline(let text)?: spec["jwks"] = ["inline": text]
            case .jwksFile(let path)?: spec["jwks"] = ["file": path]
            case .jwksURL(let url)?: spec["jwks"] = ["url": url]
            case nil: break
            }
            spec["allowedAlgorithms"] = m.allowedAlgorithms
            if m.hasSubjectClaim { spec["subjectClaim"] = m.subjectClaim }
            if m.hasClockSkew { spec["clockSkew"] = durationText(m.clockSkew) }
        case .tokenExchange:
            let m = try checked(Tether_Config_V1_TokenExchange.self)
            meta = m.metadata
            switch m.type {
            case .builtin: spec["type"] = "builtin"
            case .rfc8693: spec["type"] = "rfc8693"
            case .jwtSvid: spec["type"] = "jwt-svid"
            case .credential: spec["type"] = "credential"
            case .unspecified, .UNRECOGNIZED:
                throw ResourceDecodingError(resource: label, reason: "has token exchange type \(m.type.rawValue), which this proxy does not know; upgrade the proxy")
            }
            if m.hasAudience { spec["audience"] = m.audience }
            if !m.scopes.isEmpty { spec["scopes"] = m.scopes }
            if m.hasTtl { spec["ttl"] = durationText(m.ttl) }
            if m.hasEndpoint { spec["endpoint"] = m.endpoint }
            if m.hasClientID { spec["clientID"] = m.clientID }
            if m.hasClientSecret { spec["clientSecret"] = m.clientSecret }
            if m.hasCredential { spec["credential"] = m.credential }
            if m.hasHeader { spec["header"] = m.header }
            if m.hasScheme { spec["scheme"] = m.scheme }
        case .authorizationPolicy:
            let m = try checked(Tether_Config_V1_AuthorizationPolicy.self)
            meta = m.metadata
            var targets: [String: Any] = [:]
            if !m.targets.routes.isEmpty { targets["routes"] = m.targets.routes }
            if !m.targets.backends.isEmpty { targets["backends"] = m.targets.backends }
            spec["targets"] = targets
            switch m.action {
            case .allow: spec["action"] = "allow"
            case .deny: spec["action"] = "deny"
            case .unspecified, .UNRECOGNIZED:
                throw ResourceDecodingError(resource: label, reason: "has policy action \(m.action.rawValue), which this proxy does not know; upgrade the proxy")
            }
            spec["rules"] = m.rules.map { rule -> [String: Any] in
                var value: [String: Any] = [:]
                if !rule.agents.isEmpty { value["agents"] = rule.agents }
                if !rule.claims.isEmpty { value["claims"] = rule.claims.mapValues(\.values) }
                if !rule.methods.isEmpty { value["methods"] = rule.methods }
                if !rule.tools.isEmpty { value["tools"] = rule.tools }
                if !rule.resources.isEmpty { value["resources"] = rule.resources }
                if !rule.prompts.isEmpty { value["prompts"] = rule.prompts }
                return value
            }
            if m.hasDelegation {
                var delegation: [String: Any] = [:]
                if m.delegation.hasMaxDepth { delegation["maxDepth"] = Int(m.delegation.maxDepth) }
                if !m.delegation.requiredActors.isEmpty { delegation["requiredActors"] = m.delegation.requiredActors }
                spec["delegation"] = delegation
            }
        case .credential:
            let m = try checked(Tether_Config_V1_Credential.self)
            meta = m.metadata
            if m.hasDescription_p { spec["description"] = m.description_p }
            spec["value"] = m.value
        case .trustBundle:
            let m = try checked(Tether_Config_V1_TrustBundle.self)
            meta = m.metadata
            spec["trustDomain"] = m.trustDomain
            spec["spiffeBundle"] = m.spiffeBundle
        }
        return ["apiVersion": Resource.apiVersion, "kind": kind.rawValue, "metadata": metadata(meta), "spec": spec]
    }

    /// The number of the first field a message (or any message inside it)
    /// carried that this build's schema does not define.
    static func firstUnknownField(_ message: any SwiftProtobuf.Message) -> String? {
        var visitor = UnknownFieldFinder()
        try? message.traverse(visitor: &visitor)
        return visitor.found
    }
}

/// Walks a message tree looking for unknown fields.
struct UnknownFieldFinder: SwiftProtobuf.Visitor {
    var found: String?

    mutating func visitUnknown(bytes: Data) throws {
        guard found == nil, !bytes.isEmpty else { return }
        // The first varint of an unknown field is its tag: number << 3 | wire type.
        var tag: UInt64 = 0, shift: UInt64 = 0
        for byte in bytes {
            tag |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
        }
        found = String(tag >> 3)
    }

    mutating func visitSingularMessageField<M: SwiftProtobuf.Message>(value: M, fieldNumber: Int) throws {
        try value.traverse(visitor: &self)
    }

    mutating func visitRepeatedMessageField<M: SwiftProtobuf.Message>(value: [M], fieldNumber: Int) throws {
        for item in value { try item.traverse(visitor: &self) }
    }

    mutating func visitMapField<KeyType, ValueType: MapValueType>(fieldType: _ProtobufMap<KeyType, ValueType>.Type, value: _ProtobufMap<KeyType, ValueType>.BaseType, fieldNumber: Int) throws {}

    mutating func visitMapField<KeyType, ValueType>(fieldType: _ProtobufEnumMap<KeyType, ValueType>.Type, value: _ProtobufEnumMap<KeyType, ValueType>.BaseType, fieldNumber: Int) throws where ValueType.RawValue == Int {}

    mutating func visitMapField<KeyType, ValueType>(fieldType: _ProtobufMessageMap<KeyType, ValueType>.Type, value: _ProtobufMessageMap<KeyType, ValueType>.BaseType, fieldNumber: Int) throws {
        for item in value.values { try item.traverse(visitor: &self) }
    }

    // Scalars carry no unknown fields.
    mutating func visitSingularDoubleField(value: Double, fieldNumber: Int) throws {}
    mutating func visitSingularInt64Field(value: Int64, fieldNumber: Int) throws {}
    mutating func visitSingularUInt64Field(value: UInt64, fieldNumber: Int) throws {}
    mutating func visitSingularBoolField(value: Bool, fieldNumber: Int) throws {}
    mutating func visitSingularStringField(value: String, fieldNumber: Int) throws {}
    mutating func visitSingularBytesField(value: Data, fieldNumber: Int) throws {}
    mutating func visitSingularEnumField<E: SwiftProtobuf.Enum>(value: E, fieldNumber: Int) throws {}
}
