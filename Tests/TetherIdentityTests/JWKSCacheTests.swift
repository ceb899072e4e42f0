import Foundation
import Synchronization
import Testing
import TetherCore
@testable import TetherIdentity
import TetherTestSupport

/// The one cache of IdentityProviders' keys that the proxy and the token
/// service share: fetched once, refetched when a token names a new key —
/// but not on every such token.
@Suite("JWK Set cache")
struct JWKSCacheTests {
    /// A provider serving its keys at a URL, counting fetches.
    final class Server: Sendable {
        let jwks: Mutex<String>
        let fetches = Mutex(0)
        init(_ jwks: String) { self.jwks = Mutex(jwks) }
        func fetch() -> String {
            fetches.withLock { $0 += 1 }
            return jwks.withLock { $0 }
        }
    }

    func urlSpec(_ idp: TestIdentityProvider) throws -> IdentityProviderSpec {
        var spec = idp.spec
        spec.jwks = .url(try EndpointURL("https://idp.example.com/jwks.json", rules: .tlsUnlessLoopback))
        return spec
    }

    @Test func keysAreFetchedOnceAndATokenWithANewKeyRefetchesThemOnce() async throws {
        let old = TestIdentityProvider(), new = TestIdentityProvider()
        let server = Server(old.jwks)
        let cache = JWKSCache(minimumRefetchInterval: .seconds(1)) { _ in server.fetch() }
        let spec = try urlSpec(old)
        #expect(try await cache.validate(old.token(old.claims()), provider: "corp-sso", spec: spec).get().0.subject == "ada@example.com")
        #expect(try await cache.validate(old.token(old.claims()), provider: "corp-sso", spec: spec).get().0.subject == "ada@example.com")
        #expect(server.fetches.withLock { $0 } == 1)
        try await Task.sleep(for: .milliseconds(1100))
        // The provider rotated to a key with a new kid: the first token signed with it fetches once more and passes…
        server.jwks.withLock { $0 = new.jwks.replacingOccurrences(of: "\"ec-1\"", with: "\"ec-2\"") }
        #expect(try await cache.validate(new.token(new.claims(), header: ["kid": "ec-2"]), provider: "corp-sso", spec: spec).get().0.subject == "ada@example.com")
        #expect(server.fetches.withLock { $0 } == 2)
        // …but tokens naming unknown keys do not make it fetch again and again (at most once a second here).
        let stranger = TestIdentityProvider()
        for _ in 0..<5 {
            guard case .failure(.rejected(let rejection)) = await cache.validate(stranger.token(stranger.claims(), header: ["kid": "ec-9"]), provider: "corp-sso", spec: spec) else {
                Issue.record("a stranger's token passed")
                return
            }
            #expect(rejection.code == .unknownKey)
        }
        #expect(server.fetches.withLock { $0 } == 2)
    }

    @Test func aChangedSpecReloadsAndAnUnreachableProviderIsUnavailable() async throws {
        let idp = TestIdentityProvider()
        let cache = JWKSCache { _ in throw CocoaError(.fileReadUnknown) }
        guard case .failure(.unavailable(let reason)) = await cache.validate(idp.token(idp.claims()), provider: "corp-sso", spec: try urlSpec(idp)) else {
            Issue.record("validated without keys")
            return
        }
        #expect(reason.contains("corp-sso"))
        // Inline keys need no fetch.
        #expect(try await cache.validate(idp.token(idp.claims()), provider: "corp-sso", spec: idp.spec).get().0.subject == "ada@example.com")
    }

    @Test func keysKnownWithoutAskingAreUsedFirst() async throws {
        let own = TestIdentityProvider()
        let cache = JWKSCache(known: { _ in own.jwks }) { _ in
            Issue.record("fetched keys it knew")
            return ""
        }
        #expect(try await cache.validate(own.token(own.claims()), provider: "tether", spec: try urlSpec(own)).get().0.subject == "ada@example.com")
    }
}
