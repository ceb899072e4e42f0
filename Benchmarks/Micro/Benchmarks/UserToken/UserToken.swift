import Benchmark
import Foundation
import MicroFixtures
import TetherCore
import TetherIdentity

/// `UserTokenValidator.validate` of an ES256 access token: on routes with an
/// IdentityProvider the proxy validates the user's token on every call
/// (`UserAuthenticator` caches the validator, not the verdict).
let benchmarks: @Sendable () -> Void = {
    let tokens = UserTokens()
    nonisolated(unsafe) var validator: UserTokenValidator?

    Benchmark.setup = {
        let resources = try ConfigParser.parse([ConfigSource(name: "idp.yaml", text: tokens.yaml)])
        guard case .identityProvider(let spec) = resources.first?.resource.spec else { fatalError("no IdentityProvider in the fixture") }
        let built = try await UserTokenValidator(name: "corp-sso", spec: spec, jwks: tokens.jwks)
        guard case .success(let user) = await built.validate(tokens.token), user.subject == "ada@example.com" else {
            fatalError("the fixture token does not validate")
        }
        validator = built
    }

    Benchmark("validate ES256 user token", configuration: .hotPath(.one)) { benchmark in
        let validator = validator!
        await benchmark.measure { blackHole(await validator.validate(tokens.token)) }
    }
}
