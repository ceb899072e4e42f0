import Foundation
import Testing
@testable import TetherIdentity

/// The one definition of an RFC 8693 request form, as the proxy writes it
/// and the token service reads it.
@Suite("Token exchange form")
struct TokenExchangeFormTests {
    @Test func whatTheProxyWritesTheTokenServiceReads() {
        // A JWT may hold `+`, `/`, `=` after a careless encoder: they must survive the form.
        let written = TokenExchangeForm(subjectToken: "a+b/c=", audience: "https://mcp.example.com/x?y=1", scopes: ["repo", "read:org"], actorToken: "actor.jwt")
        let read = TokenExchangeForm(body: Data(written.body.utf8))
        #expect(read == written)
        #expect(read.grantType == TokenExchangeForm.grantType && read.subjectTokenType == TokenExchangeForm.jwtTokenType)
        #expect(read.subjectToken == "a+b/c=" && read.audience == "https://mcp.example.com/x?y=1" && read.scopes == ["repo", "read:org"])
        #expect(read.actorToken == "actor.jwt" && read.actorTokenType == TokenExchangeForm.jwtTokenType)
        #expect(!written.body.contains("+"), "a `+` would read as a space")
    }

    @Test func aFormFromElsewhere() {
        let read = TokenExchangeForm(body: Data("grant_type=x&resource=https%3A%2F%2Fa&scope=one+two&grant_type=y".utf8))
        #expect(read.grantType == "x", "a repeated parameter counts once, the first time")
        #expect(read.audience == "https://a" && read.scopes == ["one", "two"] && read.subjectToken == nil)
    }
}
