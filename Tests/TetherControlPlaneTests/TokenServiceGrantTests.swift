import Crypto
import Foundation
import Logging
import Testing
import TetherAdminHTTP
import TetherCore
@testable import TetherControlPlane
import TetherIdentity
import TetherTestSupport
import TetherXDS
import X509

/// Which exchanges the built-in token service grants: only for an audience
/// that a `builtin` TokenExchange mints for, only to an actor one of whose
/// own routes uses that exchange with an identity provider, and with the
/// scopes of that route's exchange — never another agent's. Everything else
/// is an RFC 6749 §5.2 error. Decided on the snapshot current at the request.
@Suite("Built-in token service: which exchanges are granted")
struct TokenServiceGrantTests {
    static let triage = "spiffe://example.org/agent/triage"
    static let other = "spiffe://example.org/agent/other"
    static let github = "https://github-mcp.example.com"
    static let docs = "https://docs-mcp.example.com"
    static let wiki = "https://wiki-mcp.example.com"
    static let nosso = "https://nosso-mcp.example.com"
    static let shared = "https://shared-mcp.example.com"
    static let mixed = "https://mixed-mcp.example.com"

    let idp = TestIdentityProvider()
    let ca = try! TrustDomainCA.generate(trustDomain: "example.org")

    /// Routes: `github` (triage, builtin exchange, IdP), `github-admin` (other
    /// agent, another builtin exchange for the same audience with wider
    /// scopes), `docs` (other agent only), `wiki` (triage, an rfc8693 exchange),
    /// `nosso` (triage, builtin exchange, no IdP), `shared` (every agent), and
    /// `a-mixed` (no IdP) and `b-mixed` (IdP), both triage's, sharing one exchange.
    var yaml: String {
        func backend(_ name: String, _ url: String) -> String {
            "apiVersion: tether.dev/v1alpha1\nkind: MCPBackend\nmetadata: {name: \(name)}\nspec: {external: {url: \"\(url)/mcp\"}}"
        }
        func exchange(_ name: String, _ audience: String, scopes: [String]) -> String {
            "apiVersion: tether.dev/v1alpha1\nkind: TokenExchange\nmetadata: {name: \(name)}\nspec: {type: builtin, audience: \"\(audience)\"\(scopes.isEmpty ? "" : ", scopes: [\(scopes.joined(separator: ", "))]")}"
        }
        func route(_ name: String, agents: String, backend: String, exchange: String, idp: Bool = true) -> String {
            "apiVersion: tether.dev/v1alpha1\nkind: Route\nmetadata: {name: \(name)}\nspec: {agents: [\"\(agents)\"], path: /\(name), backend: \(backend), tokenExchange: \(exchange)\(idp ? ", identityProvider: corp-sso" : "")}"
        }
        return [
            """
            apiVersion: tether.dev/v1alpha1
            kind: IdentityProvider
            metadata: {name: corp-sso}
            spec: {issuer: \(idp.issuer), audiences: [tether-agents], jwks: {inline: '\(idp.jwks)'}, subjectClaim: email}
            """,
            credential("wiki-secret", "s3cret"),
            backend("github", Self.github), backend("docs", Self.docs), backend("wiki", Self.wiki), backend("nosso", Self.nosso), backend("shared", Self.shared),
            exchange("github", Self.github, scopes: ["repo:read"]),
            exchange("github-admin", Self.github, scopes: ["repo:read", "admin:org"]),
            exchange("docs", Self.docs, scopes: ["docs:read"]),
            exchange("nosso", Self.nosso, scopes: []),
            exchange("shared", Self.shared, scopes: []),
            exchange("mixed", Self.mixed, scopes: []),
            """
            apiVersion: tether.dev/v1alpha1
            kind: TokenExchange
            metadata: {name: wiki}
            spec: {type: rfc8693, audience: "\(Self.wiki)", endpoint: "https://sts.example.com/token", clientID: tether, clientSecret: wiki-secret}
            """,
            route("github", agents: Self.triage, backend: "github", exchange: "github"),
            route("github-admin", agents: Self.other, backend: "github", exchange: "github-admin"),
            route("docs", agents: Self.other, backend: "docs", exchange: "docs"),
            route("wiki", agents: Self.triage, backend: "wiki", exchange: "wiki"),
            route("nosso", agents: Self.triage, backend: "nosso", exchange: "nosso", idp: false),
            route("shared", agents: "spiffe://example.org/agent/*", backend: "shared", exchange: "shared"),
            route("a-mixed", agents: Self.triage, backend: "mixed", exchange: "mixed", idp: false),
            route("b-mixed", agents: Self.triage, backend: "mixed", exchange: "mixed"),
        ].joined(separator: "\n---\n")
    }

    func snapshot(revision: Int64 = 1, dropping dropped: Set<ResourceID> = []) throws -> MeshSnapshot {
        let resources = try ConfigParser.parse([ConfigSource(name: "mesh.yaml", text: yaml)]).map(\.resource).filter { !dropped.contains($0.id) }
        return MeshSnapshot(revision: revision, resources: Dictionary(uniqueKeysWithValues: resources.map { ($0.id, VersionedResource(resource: $0, version: "1")) }))
    }

    func service(_ publisher: SnapshotPublisher) async throws -> TokenService {
        let issuer = try await AccessTokenIssuer(issuer: "https://tokens.example.org", key: P256.Signing.PrivateKey())
        let bundle = TrustBundle(trustDomain: "example.org", x509Authorities: [ca.certificate], jwtAuthorities: [])
        return TokenService(issuer: issuer, snapshot: publisher, bundle: { bundle }, logger: Logger(label: "test"))
    }

    func certificate(for id: String) throws -> [UInt8] {
        try ca.issue(publicKey: .init(P256.Signing.PrivateKey().publicKey), for: try SPIFFEID(id)).derBytes
    }

    func exchange(_ service: TokenService, as actor: String, audience: String? = nil, resource: String? = nil, scope: String? = nil) async throws -> (status: Int, body: [String: Any]) {
        var fields = [
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token": idp.token(idp.claims()),
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        ]
        fields["audience"] = audience
        fields["resource"] = resource
        fields["scope"] = scope
        var form = URLComponents()
        form.queryItems = fields.map { URLQueryItem(name: $0.key, value: $0.value) }
        let body = (form.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B")
        let response = await service.handle(AdminRequest(method: "POST", path: "/oauth2/token", body: Data(body.utf8), peerCertificate: try certificate(for: actor)))
        return (response.status, (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:])
    }

    /// The `aud` and `scope` claims of an issued access token (its payload, unverified).
    func claims(_ body: [String: Any]) throws -> [String: Any] {
        let token = try #require(body["access_token"] as? String)
        return try #require(CompactJWS(token)?.payload)
    }

    @Test func theActorsOwnRouteIsGrantedWithItsExchangesScopes() async throws {
        let service = try await service(SnapshotPublisher(try snapshot()))
        let (status, body) = try await exchange(service, as: Self.triage, audience: Self.github)
        #expect(status == 200, "\(body)")
        // No scope asked: all its exchange allows, and not the other route's admin:org.
        #expect(body["scope"] as? String == "repo:read")
        let claims = try claims(body)
        #expect(claims["aud"] as? String == Self.github || (claims["aud"] as? [String]) == [Self.github])
        #expect(claims["sub"] as? String == "ada@example.com")
    }

    @Test func anotherAgentsExchangeForTheSameAudienceLendsNoScopes() async throws {
        let service = try await service(SnapshotPublisher(try snapshot()))
        let (refused, answer) = try await exchange(service, as: Self.triage, audience: Self.github, scope: "admin:org")
        #expect(refused == 400 && answer["error"] as? String == "invalid_scope", "\(answer)")
        #expect(answer["access_token"] == nil)
        // The agent whose route uses that exchange gets it.
        let (status, body) = try await exchange(service, as: Self.other, audience: Self.github, scope: "admin:org")
        #expect(status == 200 && body["scope"] as? String == "admin:org", "\(body)")
    }

    @Test func anAudienceOnlyAnotherAgentsRouteExchangesForIsRefused() async throws {
        let service = try await service(SnapshotPublisher(try snapshot()))
        let (status, body) = try await exchange(service, as: Self.triage, audience: Self.docs)
        #expect(status == 400 && body["error"] as? String == "unauthorized_client", "\(body)")
        #expect((body["error_description"] as? String)?.contains(Self.triage) == true)
        #expect(body["access_token"] == nil)
        let (granted, _) = try await exchange(service, as: Self.other, audience: Self.docs)
        #expect(granted == 200)
    }

    @Test func aRouteWhoseExchangeIsNotBuiltinGivesNoTarget() async throws {
        let service = try await service(SnapshotPublisher(try snapshot()))
        let (status, body) = try await exchange(service, as: Self.triage, audience: Self.wiki)
        #expect(status == 400 && body["error"] as? String == "invalid_target", "\(body)")
        #expect((body["error_description"] as? String)?.contains(Self.wiki) == true)
    }

    /// Apply refuses such a route (`ConfigSetValidator`); the service refuses it regardless.
    @Test func aRouteWithoutAnIdentityProviderIsNotUsable() async throws {
        let service = try await service(SnapshotPublisher(try snapshot()))
        let (status, body) = try await exchange(service, as: Self.triage, audience: Self.nosso)
        #expect(status == 400 && body["error"] as? String == "unauthorized_client", "\(body)")
        #expect(body["access_token"] == nil)
    }

    @Test func aRouteWithoutAnIdentityProviderDoesNotHideOneWithIt() async throws {
        // `a-mixed` sorts first but cannot validate the user's token: `b-mixed` is used.
        let service = try await service(SnapshotPublisher(try snapshot()))
        let (status, body) = try await exchange(service, as: Self.triage, audience: Self.mixed)
        #expect(status == 200, "\(body)")
    }

    @Test func aRouteForEveryAgentByPatternServesTheActor() async throws {
        let service = try await service(SnapshotPublisher(try snapshot()))
        for actor in [Self.triage, Self.other] {
            let (status, body) = try await exchange(service, as: actor, audience: Self.shared)
            #expect(status == 200, "\(actor): \(body)")
        }
        // A workload outside the pattern is not.
        let (status, body) = try await exchange(service, as: "spiffe://example.org/mcp/github", audience: Self.shared)
        #expect(status == 400 && body["error"] as? String == "unauthorized_client", "\(body)")
    }

    @Test func theAudienceMayComeAsResource() async throws {
        let service = try await service(SnapshotPublisher(try snapshot()))
        let (status, body) = try await exchange(service, as: Self.triage, resource: Self.github)
        #expect(status == 200, "\(body)")
        let (missing, answer) = try await exchange(service, as: Self.triage)
        #expect(missing == 400 && answer["error"] as? String == "invalid_request", "\(answer)")
    }

    @Test func theDecisionFollowsTheCurrentSnapshot() async throws {
        let publisher = SnapshotPublisher(try snapshot())
        let service = try await service(publisher)
        #expect(try await exchange(service, as: Self.triage, audience: Self.github).status == 200)
        // The route is deleted: the same request is now refused.
        publisher.publish(try snapshot(revision: 2, dropping: [ResourceID(.route, "github")]))
        let (status, body) = try await exchange(service, as: Self.triage, audience: Self.github)
        #expect(status == 400 && body["error"] as? String == "unauthorized_client", "\(body)")
        // The exchange is deleted too: the audience is no longer a target.
        publisher.publish(try snapshot(revision: 3, dropping: [ResourceID(.route, "github"), ResourceID(.route, "github-admin"), ResourceID(.tokenExchange, "github"), ResourceID(.tokenExchange, "github-admin")]))
        let (gone, answer) = try await exchange(service, as: Self.triage, audience: Self.github)
        #expect(gone == 400 && answer["error"] as? String == "invalid_target", "\(answer)")
    }
}
