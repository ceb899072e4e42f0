import Foundation
import Logging
import Testing
import TetherCore
import TetherIdentity
@testable import TetherProxy
import TetherTestSupport

@Suite("User authentication: validated tokens are remembered, never beyond their validity")
struct UserAuthenticatorTests {
    let idp = TestIdentityProvider()
    let authenticator = UserAuthenticator(upstreams: UpstreamPool(identity: nil, logger: Logger(label: "test")), tokenService: nil)

    func spec(skew seconds: Int64 = 30, jwks: String? = nil) -> IdentityProviderSpec {
        var spec = idp.spec
        spec.clockSkew = .seconds(seconds)
        if let jwks { spec.jwks = .inline(jwks) }
        return spec
    }

    @Test func aRememberedTokenIsRefusedOnceExpired() async throws {
        let now = Date()
        let token = idp.token(idp.claims(["exp": Int(now.timeIntervalSince1970) + 2], now: now))
        let first = await authenticator.authenticate(token, provider: "corp-sso", spec: spec(skew: 0))
        #expect(try first.get().subject == "ada@example.com")
        let again = await authenticator.authenticate(token, provider: "corp-sso", spec: spec(skew: 0))
        #expect(try again.get().subject == "ada@example.com")
        try await Task.sleep(for: .seconds(3))
        guard case .failure(.rejected(let rejection)) = await authenticator.authenticate(token, provider: "corp-sso", spec: spec(skew: 0)) else {
            Issue.record("an expired token was accepted")
            return
        }
        #expect(rejection.code == .expired)
    }

    @Test func newKeysForgetWhatTheOldOnesValidated() async throws {
        let token = idp.token(idp.claims())
        #expect(try await authenticator.authenticate(token, provider: "corp-sso", spec: spec()).get().subject == "ada@example.com")
        // The provider now publishes another key set: the token's key is gone.
        let rotated = spec(jwks: TestIdentityProvider().jwks)
        guard case .failure(.rejected(let rejection)) = await authenticator.authenticate(token, provider: "corp-sso", spec: rotated) else {
            Issue.record("a token whose key is gone was accepted")
            return
        }
        #expect(rejection.code == .signature || rejection.code == .unknownKey, "\(rejection)")
    }

    @Test func aTokenIsRememberedForItsOwnProviderOnly() async throws {
        let token = idp.token(idp.claims())
        #expect(try await authenticator.authenticate(token, provider: "corp-sso", spec: spec()).get().subject == "ada@example.com")
        let other = spec(jwks: TestIdentityProvider().jwks)
        guard case .failure(.rejected) = await authenticator.authenticate(token, provider: "partner-sso", spec: other) else {
            Issue.record("a token validated for one provider was accepted for another")
            return
        }
    }
}
