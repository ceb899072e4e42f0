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

@Suite("Built-in token service (RFC 8693)")
struct TokenServiceTests {
    static let agent = try! SPIFFEID("spiffe://example.org/agent/triage")
    static let audience = "https://github-mcp.example.com"
    let idp = TestIdentityProvider()
    let ca = try! TrustDomainCA.generate(trustDomain: "example.org")
    let jwtKey = P256.Signing.PrivateKey()
    var jwt: JWTSVIDIssuer { get async throws { try await JWTSVIDIssuer(trustDomain: "example.org", key: jwtKey) } }

    func service() async throws -> TokenService {
        let yaml = """
            apiVersion: tether.dev/v1alpha1
            kind: IdentityProvider
            metadata: {name: corp-sso}
            spec: {issuer: \(idp.issuer), audiences: [tether-agents], jwks: {inline: '\(idp.jwks)'}, subjectClaim: email}
            ---
            apiVersion: tether.dev/v1alpha1
            kind: MCPBackend
            metadata: {name: github}
            spec: {external: {url: "https://github-mcp.example.com/mcp"}}
            ---
            apiVersion: tether.dev/v1alpha1
            kind: TokenExchange
            metadata: {name: github}
            spec: {type: builtin, audience: "\(Self.audience)", scopes: ["repo:read", "issues:read"], ttl: 5m}
            ---
            apiVersion: tether.dev/v1alpha1
            kind: Route
            metadata: {name: github}
            spec: {agents: ["\(Self.agent)"], path: /github, backend: github, identityProvider: corp-sso, tokenExchange: github}
            """
        let resources = try ConfigParser.parse([ConfigSource(name: "mesh.yaml", text: yaml)]).map(\.resource)
        let snapshot = MeshSnapshot(revision: 1, resources: Dictionary(uniqueKeysWithValues: resources.map { ($0.id, VersionedResource(resource: $0, version: "1")) }))
        let issuer = try await AccessTokenIssuer(issuer: "https://tokens.example.org", key: P256.Signing.PrivateKey())
        let bundle = TrustBundle(trustDomain: "example.org", x509Authorities: [ca.certificate], jwtAuthorities: [try await jwt.authority])
        return TokenService(issuer: issuer, snapshot: SnapshotPublisher(snapshot), bundle: { bundle }, logger: Logger(label: "test"))
    }

    func certificate(for id: String) throws -> [UInt8] {
        let key = P256.Signing.PrivateKey()
        return try ca.issue(publicKey: .init(key.publicKey), for: try SPIFFEID(id)).derBytes
    }

    func exchange(_ service: TokenService, _ fields: [String: String], peer: [UInt8]?) async -> (status: Int, body: [String: Any]) {
        var form = URLComponents()
        form.queryItems = fields.map { URLQueryItem(name: $0.key, value: $0.value) }
        let body = (form.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B")
        let response = await service.handle(AdminRequest(method: "POST", path: "/oauth2/token", body: Data(body.utf8), peerCertificate: peer))
        return (response.status, (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] ?? [:])
    }

    func grant(_ changes: [String: String?] = [:]) -> [String: String] {
        var fields: [String: String?] = [
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token": idp.token(idp.claims()),
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "audience": Self.audience, "scope": "repo:read admin:org",
        ]
        for (key, value) in changes { fields[key] = value }
        return fields.compactMapValues { $0 }
    }

    @Test func aRouteOfTheAgentGetsAnAccessTokenNarrowedToItsScopes() async throws {
        let service = try await service()
        let (status, body) = await exchange(service, grant(), peer: try certificate(for: Self.agent.description))
        #expect(status == 200, "\(body)")
        #expect(body["token_type"] as? String == "Bearer" && body["issued_token_type"] as? String == "urn:ietf:params:oauth:token-type:access_token")
        #expect(body["scope"] as? String == "repo:read", "admin:org is not allowed: \(body)")
        #expect((body["expires_in"] as? Int ?? 0) <= 300)
        let token = try #require(body["access_token"] as? String)
        let jwks = String(decoding: await service.handle(AdminRequest(method: "GET", path: "/.well-known/jwks.json")).body, as: UTF8.self)
        let spec = IdentityProviderSpec(issuer: try EndpointURL("https://tokens.example.org", rules: .identifier), audiences: [Self.audience], jwks: .inline(jwks), allowedAlgorithms: [.es256])
        let user = try await UserTokenValidator(name: "tether", spec: spec, jwks: jwks).validate(token).get()
        #expect(user.subject == "ada@example.com" && user.claims["client_id"] == [Self.agent.description])
        let metadata = await service.handle(AdminRequest(method: "GET", path: "/.well-known/oauth-authorization-server"))
        #expect(String(decoding: metadata.body, as: UTF8.self).contains("https://tokens.example.org/oauth2/token"))
    }

    @Test func anActorMayAuthenticateWithAJWTSVID() async throws {
        let service = try await service()
        let actorToken = try await jwt.mint(for: Self.agent, audience: ["https://tokens.example.org"])
        var fields = grant()
        fields["actor_token"] = actorToken
        fields["actor_token_type"] = "urn:ietf:params:oauth:token-type:jwt"
        let (status, body) = await exchange(service, fields, peer: nil)
        #expect(status == 200 && body["access_token"] is String, "\(body)")
        // For another audience it is no credential here.
        fields["actor_token"] = try await jwt.mint(for: Self.agent, audience: ["https://elsewhere.example.org"])
        let (refused, answer) = await exchange(service, fields, peer: nil)
        #expect(refused == 401 && answer["error"] as? String == "invalid_client", "\(answer)")
    }

    @Test func refusalsFollowRFC6749() async throws {
        let service = try await service()
        let agent = try certificate(for: Self.agent.description)
        let cases: [(String, [String: String], [UInt8]?, Int, String)] = [
            ("another grant type", grant(["grant_type": "client_credentials"]), agent, 400, "unsupported_grant_type"),
            ("no client certificate", grant(), nil, 401, "invalid_client"),
            ("no subject token", grant(["subject_token": nil]), agent, 400, "invalid_request"),
            ("an unknown audience", grant(["audience": "https://elsewhere.example.com"]), agent, 400, "invalid_target"),
            ("an agent without such a route", grant(), try certificate(for: "spiffe://example.org/agent/other"), 400, "unauthorized_client"),
            ("an expired user token", grant(["subject_token": idp.token(idp.claims(["exp": Int(Date().timeIntervalSince1970) - 120]))]), agent, 400, "invalid_grant"),
            ("only scopes it may not have", grant(["scope": "admin:org"]), agent, 400, "invalid_scope"),
        ]
        for (what, form, peer, status, code) in cases {
            let (answer, body) = await exchange(service, form, peer: peer)
            #expect(answer == status && body["error"] as? String == code, "\(what): \(answer) \(body)")
            #expect(body["access_token"] == nil)
        }
    }

    @Test func signingKeysRotateInStagesAndEarlierTokensKeepVerifying() async throws {
        let plane = try TestControlPlane()
        let first = try TokenSigningKeys.load(in: plane.directory)
        #expect(first.previous == nil)
        let before = try await first.issuer(url: "https://tokens.example.org")
        // The next key is published before it signs.
        #expect(before.jwks.contains(JWTSVIDIssuer.thumbprint(first.next.publicKey)))
        let early = try await before.mint(.init(subject: "ada", audience: Self.audience, actor: Self.agent, scopes: [], expiresAt: Date().addingTimeInterval(300)))

        let rotated = try TokenSigningKeys.rotate(in: plane.directory)
        #expect(rotated.previous?.publicKey.rawRepresentation == first.current.publicKey.rawRepresentation)
        #expect(rotated.current.publicKey.rawRepresentation == first.next.publicKey.rawRepresentation)
        #expect(rotated.next.publicKey.rawRepresentation != first.next.publicKey.rawRepresentation)
        var info = stat()
        #expect(stat(plane.directory.path + "/token-next.key", &info) == 0 && info.st_mode & 0o077 == 0)
        // What it loads after a restart is what it rotated to.
        #expect(try TokenSigningKeys.load(in: plane.directory).current.publicKey.rawRepresentation == rotated.current.publicKey.rawRepresentation)

        // A token signed before the rotation verifies with the JWK Set after it, and so does a new one.
        let after = try await rotated.issuer(url: "https://tokens.example.org")
        let spec = IdentityProviderSpec(issuer: try EndpointURL("https://tokens.example.org", rules: .identifier), audiences: [Self.audience], jwks: .inline(after.jwks), allowedAlgorithms: [.es256])
        let validator = try await UserTokenValidator(name: "tether", spec: spec, jwks: after.jwks)
        let late = try await after.mint(.init(subject: "ada", audience: Self.audience, actor: Self.agent, scopes: [], expiresAt: Date().addingTimeInterval(300)))
        for token in [early, late] {
            if case .failure(let rejection) = await validator.validate(token) { Issue.record("\(rejection)") }
        }
        #expect(after.kid != before.kid)
    }
}
