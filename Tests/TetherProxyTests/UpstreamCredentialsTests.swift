import Foundation
import HTTPTypes
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing
import TetherAdminHTTP
import TetherCore
import TetherIdentity
@testable import TetherProxy
import TetherTestSupport
import TetherXDS

/// What a route sends upstream per its TokenExchange: a `credential`'s value
/// in its header with its scheme; the agent's JWT-SVID for a `jwt-svid`
/// audience, cached until 30 s before its `exp`; the user's token exchanged
/// (`builtin`, `rfc8693`), cached per user. Fail closed: whatever is missing
/// (the exchange, its Credential, an identity, a token service, a user)
/// gives a `Failure` whose reason says what, and never quotes a secret.
@Suite("Upstream credentials")
struct UpstreamCredentialsTests {
    static let node = try! SPIFFEID("spiffe://example.org/agent/triage")
    static let audience = "https://github-mcp.example.com"

    /// The proxy's config compiled from `yaml`, as the xDS client would deliver it.
    func config(_ yaml: String) throws -> DataPlaneConfig {
        let resources = try ConfigParser.parse([ConfigSource(name: "mesh.yaml", text: yaml)]).map(\.resource)
        let proxy = ProxyConfig(resources: Dictionary(uniqueKeysWithValues: resources.map { ($0.id, VersionedResource(resource: $0, version: "1")) }), systemVersion: "1")
        return DataPlaneConfig(config: proxy, node: Self.node)
    }

    func exchange(_ name: String, _ spec: String) -> String {
        "apiVersion: tether.dev/v1alpha1\nkind: TokenExchange\nmetadata: {name: \(name)}\nspec: \(spec)"
    }

    func credential(_ name: String, _ value: String) -> String {
        "apiVersion: tether.dev/v1alpha1\nkind: Credential\nmetadata: {name: \(name)}\nspec: {value: \"\(value)\"}"
    }

    func makeCredentials(
        mint: (@Sendable ([String]) async throws -> String)? = nil, tokenService: UpstreamTarget? = nil
    ) -> UpstreamCredentials {
        UpstreamCredentials(cache: TokenCache(), mintJWTSVID: mint, tokenService: tokenService, upstreams: UpstreamPool(identity: nil, logger: Logger(label: "test")))
    }

    /// An unsigned JWT with these claims (the proxy reads `exp` of its own tokens, never verifies them).
    static func jwt(_ claims: [String: Any]) -> String {
        let header = TestIdentityProvider.base64URL(Data(#"{"alg":"ES256","typ":"JWT"}"#.utf8))
        let payload = TestIdentityProvider.base64URL(try! JSONSerialization.data(withJSONObject: claims))
        return "\(header).\(payload).c2ln"
    }

    /// Records each mint's audiences and the tokens it gave; answers `token(n)` for the n-th.
    final class Minter: Sendable {
        let audiences = Mutex<[[String]]>([])
        let minted = Mutex<[String]>([])
        let token: @Sendable (Int) throws -> String

        init(token: @escaping @Sendable (Int) throws -> String) { self.token = token }

        var calls: [[String]] { audiences.withLock { $0 } }
        var tokens: [String] { minted.withLock { $0 } }

        var mint: @Sendable ([String]) async throws -> String {
            { audience in
                let n = self.audiences.withLock { $0.append(audience); return $0.count }
                let token = try self.token(n)
                self.minted.withLock { $0.append(token) }
                return token
            }
        }
    }

    struct Refused: Error, CustomStringConvertible {
        var description: String { "the identity service is unreachable" }
    }

    func user(_ idp: TestIdentityProvider, email: String = "ada@example.com") async throws -> UserToken {
        let validator = try await UserTokenValidator(name: "corp-sso", spec: idp.spec, jwks: idp.jwks)
        return try await validator.validate(idp.token(idp.claims(["email": email]))).get()
    }

    func header(_ result: Result<UpstreamCredentials.Header, UpstreamCredentials.Failure>) throws -> UpstreamCredentials.Header {
        switch result {
        case .success(let header): return header
        case .failure(let failure):
            Issue.record("failed: \(failure.reason)")
            throw failure
        }
    }

    func failure(_ result: Result<UpstreamCredentials.Header, UpstreamCredentials.Failure>) -> String? {
        if case .failure(let failure) = result { return failure.reason }
        return nil
    }

    // MARK: - credential

    @Test func aCredentialGoesInTheAuthorizationHeaderAsABearerByDefault() async throws {
        let plane = try config([credential("pat", "ghp_secret1"), exchange("github", "{type: credential, credential: pat}")].joined(separator: "\n---\n"))
        let header = try header(await makeCredentials().header(exchange: "github", config: plane, user: nil))
        #expect(header.name == .authorization && header.value == "Bearer ghp_secret1")
    }

    @Test(arguments: [
        ("{type: credential, credential: pat, header: X-Api-Key, scheme: \"\"}", "X-Api-Key", "ghp_secret1"),
        ("{type: credential, credential: pat, header: Private-Token}", "Private-Token", "Bearer ghp_secret1"),
        ("{type: credential, credential: pat, scheme: token}", "Authorization", "token ghp_secret1"),
    ])
    func aCredentialTakesItsConfiguredHeaderAndScheme(spec: String, name: String, value: String) async throws {
        let plane = try config([credential("pat", "ghp_secret1"), exchange("github", spec)].joined(separator: "\n---\n"))
        let header = try header(await makeCredentials().header(exchange: "github", config: plane, user: nil))
        #expect(header.name == HTTPField.Name(name) && header.value == value)
    }

    @Test func aCredentialThatHasNotReachedTheProxyFailsClosed() async throws {
        // The TokenExchange arrived, its Credential did not (or came without a value).
        for yaml in [
            exchange("github", "{type: credential, credential: pat}"),
            "apiVersion: tether.dev/v1alpha1\nkind: Credential\nmetadata: {name: pat}\nspec: {description: no value}\n---\n" + exchange("github", "{type: credential, credential: pat}"),
        ] {
            let result = await makeCredentials().header(exchange: "github", config: try config(yaml), user: nil)
            let reason = try #require(failure(result))
            #expect(reason.contains("credential of TokenExchange github has not reached this proxy"), "\(reason)")
        }
    }

    @Test func anExchangeNotInTheConfigFailsClosed() async throws {
        let plane = try config(credential("pat", "ghp_secret1"))
        let reason = try #require(failure(await makeCredentials().header(exchange: "missing", config: plane, user: nil)))
        #expect(reason.contains("TokenExchange missing is not in this proxy's config"))
    }

    // MARK: - jwt-svid

    @Test func aJWTSVIDIsMintedForTheAudienceAndReusedWhileItLasts() async throws {
        let plane = try config(exchange("svid", "{type: jwt-svid, audience: \"\(Self.audience)\"}"))
        let expiry = Int(Date().timeIntervalSince1970) + 300
        let minter = Minter { n in Self.jwt(["sub": Self.node.description, "exp": expiry, "n": n]) }
        let credentials = makeCredentials(mint: minter.mint)
        let first = try header(await credentials.header(exchange: "svid", config: plane, user: nil))
        let minted = try #require(minter.tokens.first)
        #expect(first.name == .authorization && first.value == "Bearer \(minted)")
        #expect(minter.calls == [[Self.audience]])
        let second = try header(await credentials.header(exchange: "svid", config: plane, user: nil))
        #expect(second.value == first.value && minter.calls.count == 1)
    }

    @Test func aJWTSVIDCloseToItsExpiryIsMintedAgain() async throws {
        let plane = try config(exchange("svid", "{type: jwt-svid, audience: \"\(Self.audience)\"}"))
        // 20 s left: within the 30 s renewal margin from the start.
        let minter = Minter { n in Self.jwt(["exp": Int(Date().timeIntervalSince1970) + 20, "n": n]) }
        let credentials = makeCredentials(mint: minter.mint)
        _ = try header(await credentials.header(exchange: "svid", config: plane, user: nil))
        _ = try header(await credentials.header(exchange: "svid", config: plane, user: nil))
        #expect(minter.calls.count == 2)
    }

    @Test func aJWTSVIDWithoutAnIdentityOrAMintFailsClosedAndIsNotCached() async throws {
        let plane = try config(exchange("svid", "{type: jwt-svid, audience: \"\(Self.audience)\"}"))
        let none = try #require(failure(await makeCredentials(mint: nil).header(exchange: "svid", config: plane, user: nil)))
        #expect(none.contains("TokenExchange svid needs a JWT-SVID and this proxy has no SPIFFE identity"), "\(none)")

        let minter = Minter { n in
            if n == 1 { throw Refused() }
            return Self.jwt(["exp": Int(Date().timeIntervalSince1970) + 300])
        }
        let credentials = makeCredentials(mint: minter.mint)
        let failed = try #require(failure(await credentials.header(exchange: "svid", config: plane, user: nil)))
        #expect(failed.contains("no JWT-SVID for \(Self.audience)") && failed.contains("the identity service is unreachable"), "\(failed)")
        // The failure is not remembered: the next call mints again.
        _ = try header(await credentials.header(exchange: "svid", config: plane, user: nil))
        #expect(minter.calls.count == 2)
    }

    // MARK: - builtin and rfc8693

    @Test func aBuiltinExchangeWithoutATokenServiceFailsClosed() async throws {
        let idp = TestIdentityProvider()
        let plane = try config(exchange("github", "{type: builtin, audience: \"\(Self.audience)\"}"))
        let reason = try #require(failure(await makeCredentials().header(exchange: "github", config: plane, user: try await user(idp))))
        #expect(reason.contains("needs the control plane's token service"), "\(reason)")
    }

    @Test func anExchangeOfTheUsersTokenWithoutAUserFailsClosed() async throws {
        let plane = try config([
            exchange("github", "{type: builtin, audience: \"\(Self.audience)\"}"),
            credential("client-secret", "s3cret"),
            exchange("external", "{type: rfc8693, endpoint: \"http://127.0.0.1:9/token\", audience: \"\(Self.audience)\", clientID: tether, clientSecret: client-secret}"),
        ].joined(separator: "\n---\n"))
        // Nothing listens on port 9: the refusal comes before any connection.
        let credentials = makeCredentials(tokenService: UpstreamTarget(host: "127.0.0.1", port: 9, security: .cleartext))
        for name in ["github", "external"] {
            let reason = try #require(failure(await credentials.header(exchange: name, config: plane, user: nil)))
            #expect(reason.contains("TokenExchange \(name) exchanges the user's token and the route authenticates no user (set its identityProvider)"), "\(reason)")
        }
    }

    @Test func anRFC8693ExchangeWithoutItsClientSecretFailsClosedWithoutQuotingSecrets() async throws {
        let idp = TestIdentityProvider()
        let plane = try config(exchange("external", "{type: rfc8693, endpoint: \"http://127.0.0.1:9/token\", audience: \"\(Self.audience)\", clientID: tether, clientSecret: client-secret}"))
        let reason = try #require(failure(await makeCredentials().header(exchange: "external", config: plane, user: try await user(idp))))
        #expect(reason.contains("lacks its endpoint, audience, client ID or client secret (Credential client-secret)"), "\(reason)")
    }

    @Test func anRFC8693ExchangePostsTheFormAndCachesPerUser() async throws {
        let idp = TestIdentityProvider()
        let forms = Mutex<[[String: String]]>([])
        let port = Mutex<Int?>(nil)
        let service = LocalHTTPServer(
            name: "token-service", address: .tcp(host: "127.0.0.1", port: 0), logger: Logger(label: "test"),
            bound: { address in
                if case .tcp(_, let bound) = address { port.withLock { $0 = bound } }
            },
            handler: { request, _ in
                var components = URLComponents()
                components.percentEncodedQuery = String(decoding: request.body, as: UTF8.self)
                let form = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { first, _ in first })
                let count = forms.withLock { $0.append(form); return $0.count }
                guard form["subject_token"] != "refuse-me" else {
                    return AdminResponse(status: 400, body: Data(#"{"error":"invalid_grant","error_description":"the subject token is revoked"}"#.utf8))
                }
                return AdminResponse(status: 200, body: Data(#"{"access_token":"ext-\#(count)","token_type":"Bearer","expires_in":600}"#.utf8))
            }
        )
        let group = ServiceGroup(configuration: .init(services: [service], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            defer { tasks.cancelAll() }
            var bound: Int?
            for _ in 0..<500 where bound == nil {
                bound = port.withLock { $0 }
                if bound == nil { try await Task.sleep(for: .milliseconds(10)) }
            }
            let endpoint = "http://127.0.0.1:\(try #require(bound))/token"
            let plane = try config([
                credential("client-secret", "s3cret"),
                exchange("external", "{type: rfc8693, endpoint: \"\(endpoint)\", audience: \"\(Self.audience)\", clientID: tether, clientSecret: client-secret, scopes: [repo:read, issues:read]}"),
            ].joined(separator: "\n---\n"))
            let actor = Minter { _ in "actor-jwt" }
            let credentials = makeCredentials(mint: actor.mint)
            let ada = try await user(idp)

            let first = try header(await credentials.header(exchange: "external", config: plane, user: ada))
            #expect(first.name == .authorization && first.value == "Bearer ext-1")
            let form = try #require(forms.withLock { $0.first })
            #expect(form["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange")
            #expect(form["subject_token"] == ada.raw && form["subject_token_type"] == "urn:ietf:params:oauth:token-type:jwt")
            #expect(form["audience"] == Self.audience && form["scope"] == "repo:read issues:read")
            // The agent's JWT-SVID, for the token endpoint, is the actor.
            #expect(form["actor_token"] == "actor-jwt" && form["actor_token_type"] == "urn:ietf:params:oauth:token-type:jwt")
            #expect(actor.calls == [[endpoint]])
            #expect(form["client_secret"] == nil, "the secret goes in HTTP Basic, not in the form")

            // The same user again: cached. Another user: a new exchange.
            #expect(try header(await credentials.header(exchange: "external", config: plane, user: ada)).value == "Bearer ext-1")
            let bob = try await user(idp, email: "bob@example.com")
            #expect(try header(await credentials.header(exchange: "external", config: plane, user: bob)).value == "Bearer ext-2")
            #expect(forms.withLock { $0.count } == 2)

            // A refusal: the RFC 6749 error is in the reason, and nothing is cached.
            var refused = ada
            refused.raw = "refuse-me"
            let reason = try #require(failure(await credentials.header(exchange: "external", config: plane, user: refused)))
            #expect(reason.contains("HTTP 400 invalid_grant: the subject token is revoked"), "\(reason)")
            #expect(!reason.contains("s3cret"))
            _ = await credentials.header(exchange: "external", config: plane, user: refused)
            #expect(forms.withLock { $0.count } == 4)
            await group.triggerGracefulShutdown()
        }
    }
}
