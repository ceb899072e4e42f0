import Foundation
import TetherCore
import TetherXDS

/// The admin API's messages, shared by the server and the CLI. They are plain
/// Codable values so the same API can later be served on a remote,
/// authenticated endpoint without touching the logic behind it.
public enum AdminProtocol {
    public static let version = "v1"

    public struct ApplyRequest: Hashable, Sendable, Codable {
        public var sources: [ConfigSource]
        public var dryRun: Bool

        public init(sources: [ConfigSource], dryRun: Bool) {
            self.sources = sources
            self.dryRun = dryRun
        }
    }

    public struct DeleteRequest: Hashable, Sendable, Codable {
        /// Resources named on the command line.
        public var ids: [ResourceID]
        /// Or the resources defined in files (`delete -f`).
        public var sources: [ConfigSource]
        public var dryRun: Bool

        public init(ids: [ResourceID], sources: [ConfigSource], dryRun: Bool) {
            self.ids = ids
            self.sources = sources
            self.dryRun = dryRun
        }
    }

    public struct RollbackRequest: Hashable, Sendable, Codable {
        public var revision: Int64
        public var dryRun: Bool

        public init(revision: Int64, dryRun: Bool) {
            self.revision = revision
            self.dryRun = dryRun
        }
    }

    /// The answer to apply, delete and rollback.
    public struct ChangeResponse: Hashable, Sendable, Codable {
        /// The new revision; nil when nothing changed or in a dry run.
        public var revision: Int64?
        public var dryRun: Bool
        public var changes: [Change]
    }

    public struct GetResponse: Hashable, Sendable, Codable {
        public var revision: Int64
        /// Secrets removed.
        public var resources: [Resource]
        /// The revision that last changed each resource, by `Kind/name`.
        public var resourceRevisions: [String: Int64]
    }

    public struct DiffResponse: Hashable, Sendable, Codable {
        public var revision: Int64
        public var entries: [DiffEntry]
    }

    /// One resource's stored and proposed YAML (secrets removed; a changed
    /// credential value shows as a changed marker, never as the value).
    public struct DiffEntry: Hashable, Sendable, Codable {
        public var id: ResourceID
        public var action: Change.Action
        public var stored: String?
        public var proposed: String?
    }

    public struct HistoryResponse: Hashable, Sendable, Codable {
        public var revisions: [Revision]
    }

    public struct StatusResponse: Hashable, Sendable, Codable {
        public var revision: Int64
        public var resources: Int
        public var dataDirectory: String
    }

    public struct ProxiesResponse: Hashable, Sendable, Codable {
        public var proxies: [ProxyStatus]
    }

    public struct TokenRequest: Hashable, Sendable, Codable {
        public var spiffeID: String
        public var ttlSeconds: Double

        public init(spiffeID: String, ttlSeconds: Double) {
            self.spiffeID = spiffeID
            self.ttlSeconds = ttlSeconds
        }
    }

    /// The trust domain's bundle, for distributing trust (`--trust-bundle`,
    /// federation). Public keys only.
    public struct BundleResponse: Hashable, Sendable, Codable {
        public var trustDomain: String
        /// SPIFFE bundle format (JWK Set with x509-svid and jwt-svid keys).
        public var spiffeBundle: String
        /// The X.509 authorities as PEM.
        public var pem: String
        /// The CA pin for `tether-proxy --ca-hash`.
        public var caHash: String
    }

    /// `revoke` / `unrevoke`.
    public struct RevocationRequest: Hashable, Sendable, Codable {
        public var spiffeID: String
        public var revoked: Bool
        public var reason: String?

        public init(spiffeID: String, revoked: Bool, reason: String?) {
            self.spiffeID = spiffeID
            self.revoked = revoked
            self.reason = reason
        }
    }

    public struct RevocationsResponse: Hashable, Sendable, Codable {
        public var revoked: [RevokedIdentity]
    }

    /// `explain`: would this call be allowed on this route?
    public struct ExplainRequest: Hashable, Sendable, Codable {
        public var agent: String
        public var claims: [String: [String]]?
        public var actors: [String]
        public var route: String
        public var method: String
        public var tool: String?
        public var resource: String?
        public var prompt: String?

        public init(agent: String, claims: [String: [String]]?, actors: [String], route: String, method: String, tool: String?, resource: String?, prompt: String?) {
            self.agent = agent
            self.claims = claims
            self.actors = actors
            self.route = route
            self.method = method
            self.tool = tool
            self.resource = resource
            self.prompt = prompt
        }
    }

    public struct ExplainResponse: Hashable, Sendable, Codable {
        public var revision: Int64
        public var decision: AuthorizationDecision
    }

    /// An operator's request for a new SVID (remote admin endpoint).
    public struct SVIDRequest: Hashable, Sendable, Codable {
        /// Base64 DER PKCS#10 over a key the operator's CLI just generated.
        public var csr: String

        public init(csr: String) {
            self.csr = csr
        }
    }

    public struct SVIDResponse: Hashable, Sendable, Codable {
        /// Base64 DER, leaf first.
        public var certificateChain: [String]
        public var spiffeBundle: String
    }

    /// A new join token. The only place its value ever appears.
    public struct TokenResponse: Hashable, Sendable, Codable {
        public var token: String
        public var spiffeID: String
        public var expiresAt: Date
        /// The CA pin a proxy may bootstrap with instead of a bundle file.
        public var caHash: String
    }
}
