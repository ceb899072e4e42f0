import Foundation
import Testing
import TetherAdminHTTP
@testable import TetherControlPlane
import TetherCore
import TetherIdentity
import TetherXDS

/// The admin API routes each (method, path) to one config operation and
/// turns every `ControlPlaneError` into its HTTP status with the error as
/// JSON: 422 for a rejected config (with every diagnostic's file and line),
/// 400 for a malformed request, 404 for what does not exist — including an
/// endpoint or a method the API does not have.
@Suite("Admin API")
struct AdminAPITests {
    /// A control plane on a temporary data directory, and its admin API.
    struct Fixture {
        let plane: TestControlPlane
        let api: AdminAPI

        init() async throws {
            plane = try TestControlPlane()
            let ca = try CAFiles.loadOrCreate(in: plane.directory, trustDomain: "example.org")
            let issuer = try await JWTSVIDIssuer(trustDomain: "example.org", key: try CAFiles.loadOrCreateSigningKey("jwt.key", in: plane.directory))
            let identity = IdentityService(ca: ca, jwtIssuer: issuer, store: plane.store, svidTTL: 3600)
            api = AdminAPI(manager: plane.manager, identity: identity, dataDirectory: plane.path, proxies: ProxyRegistry())
        }

        func call(_ method: String, _ path: String, query: [String: String] = [:], body: some Encodable) async throws -> AdminResponse {
            await api.handle(AdminRequest(method: method, path: path, query: query, body: try AdminProtocol.encoder.encode(body)), author: "unix:alice(uid=1000)")
        }

        func call(_ method: String, _ path: String, query: [String: String] = [:], raw: Data = Data()) async -> AdminResponse {
            await api.handle(AdminRequest(method: method, path: path, query: query, body: raw), author: "unix:alice(uid=1000)")
        }

        func apply(_ text: String, name: String = "mesh.yaml", dryRun: Bool = false) async throws -> AdminResponse {
            try await call("POST", "/v1/apply", body: AdminProtocol.ApplyRequest(sources: [ConfigSource(name: name, text: text)], dryRun: dryRun))
        }
    }

    func decode<T: Decodable>(_ type: T.Type, _ response: AdminResponse) async throws -> T {
        try AdminProtocol.decoder.decode(T.self, from: response.body)
    }

    /// A route whose backend does not exist, on a known line of `bad.yaml`.
    static let danglingRoute = """
        apiVersion: tether.dev/v1alpha1
        kind: Route
        metadata:
          name: docs
        spec:
          agents: ["spiffe://example.org/agent/triage"]
          path: /docs
          backend: no-such-backend
        """

    @Test func aValidApplyAnswers200WithTheNewRevisionAndIsReadBack() async throws {
        let fixture = try await Fixture()
        let response = try await fixture.apply(try exampleMesh())
        #expect(response.status == 200 && response.contentType == "application/json")
        let change = try await decode(AdminProtocol.ChangeResponse.self, response)
        #expect(change.revision == 1 && !change.dryRun)
        #expect(change.changes.count == 7 && change.changes.allSatisfy { $0.action == .created })

        let status = try await decode(AdminProtocol.StatusResponse.self, fixture.call("GET", "/v1/status"))
        #expect(status.revision == 1 && status.resources == 7 && status.dataDirectory == fixture.plane.path)

        // `kind` takes what an operator types: lowercase and plural.
        let routes = await fixture.call("GET", "/v1/resources", query: ["kind": "routes"])
        #expect(routes.status == 200)
        let got = try await decode(AdminProtocol.GetResponse.self, routes)
        #expect(got.revision == 1 && got.resources.map(\.id.description) == ["Route/github"])
        #expect(got.resourceRevisions == ["Route/github": 1])

        // A credential reads back without its value.
        let credential = try await decode(AdminProtocol.GetResponse.self, fixture.call("GET", "/v1/resources", query: ["kind": "credential", "name": "github-pat"]))
        guard case .credential(let spec)? = credential.resources.first?.spec else {
            Issue.record("no Credential/github-pat in \(credential.resources)")
            return
        }
        #expect(spec.value == nil && spec.description != nil)
        await #expect(!String(decoding: fixture.call("GET", "/v1/resources").body, as: UTF8.self).contains("github_pat_"))
    }

    @Test func historyListsRevisionsNewestFirstWithTheirAuthorAndHonoursTheLimit() async throws {
        let fixture = try await Fixture()
        _ = try await fixture.apply(try exampleMesh())
        let second = try await decode(AdminProtocol.ChangeResponse.self, try fixture.apply(try exampleMesh().replacingOccurrences(of: "timeout: 30s", with: "timeout: 45s")))
        #expect(second.revision == 2)
        #expect(second.changes.filter { $0.action == .configured }.map(\.id.description) == ["Route/github"])

        let all = try await decode(AdminProtocol.HistoryResponse.self, fixture.call("GET", "/v1/revisions"))
        #expect(all.revisions.map(\.number) == [2, 1])
        #expect(all.revisions.allSatisfy { $0.author == "unix:alice(uid=1000)" && $0.operation == .apply })
        let one = try await decode(AdminProtocol.HistoryResponse.self, fixture.call("GET", "/v1/revisions", query: ["limit": "1"]))
        #expect(one.revisions.map(\.number) == [2])
        // Zero or less is clamped to one, not an empty or unbounded list.
        let clamped = try await decode(AdminProtocol.HistoryResponse.self, fixture.call("GET", "/v1/revisions", query: ["limit": "0"]))
        #expect(clamped.revisions.map(\.number) == [2])
    }

    @Test func anInvalidApplyAnswers422WithDiagnosticsNamingFileAndLineAndChangesNothing() async throws {
        let fixture = try await Fixture()
        _ = try await fixture.apply(try exampleMesh())
        let response = try await fixture.apply(Self.danglingRoute, name: "bad.yaml")
        #expect(response.status == 422)
        let error = try await decode(ControlPlaneError.self, response)
        #expect(error.code == .invalidConfig)
        #expect(error.message.contains("nothing was changed"))
        let diagnostic = try #require(error.diagnostics.first)
        #expect(error.diagnostics.count == 1)
        #expect(diagnostic.location?.file == "bad.yaml")
        // `backend: no-such-backend` is line 8 of the document.
        #expect(diagnostic.location?.line == 8)
        #expect(diagnostic.resource == "Route/docs" && diagnostic.field == "spec.backend")
        #expect(diagnostic.message.contains("no-such-backend"))

        let status = try await decode(AdminProtocol.StatusResponse.self, fixture.call("GET", "/v1/status"))
        #expect(status.revision == 1 && status.resources == 7)
    }

    @Test func aDocumentThatDoesNotParseAlsoAnswers422WithItsPosition() async throws {
        let fixture = try await Fixture()
        let text = """
            apiVersion: tether.dev/v1alpha1
            kind: Route
            metadata: {name: docs}
            spec:
              agents: ["spiffe://example.org/agent/triage"]
              path: docs
              backend: docs
            """
        let response = try await fixture.apply(text, name: "typo.yaml")
        #expect(response.status == 422)
        let error = try await decode(ControlPlaneError.self, response)
        let path = try #require(error.diagnostics.first { $0.field == "spec.path" }, "\(error)")
        #expect(path.location?.file == "typo.yaml" && path.location?.line == 6)
    }

    @Test func aDryRunAnswersTheChangesWithoutARevision() async throws {
        let fixture = try await Fixture()
        let response = try await fixture.apply(try exampleMesh(), dryRun: true)
        #expect(response.status == 200)
        let change = try await decode(AdminProtocol.ChangeResponse.self, response)
        #expect(change.dryRun && change.revision == nil && change.changes.count == 7)
        await #expect(try decode(AdminProtocol.HistoryResponse.self, fixture.call("GET", "/v1/revisions")).revisions.isEmpty)
    }

    @Test func anUnknownPathOrMethodAnswers404NamingIt() async throws {
        let fixture = try await Fixture()
        for (method, path) in [("GET", "/v1/nothing"), ("GET", "/v1/apply"), ("DELETE", "/v1/resources"), ("POST", "/v1/status")] {
            let response = await fixture.call(method, path)
            #expect(response.status == 404, "\(method) \(path)")
            let error = try await decode(ControlPlaneError.self, response)
            #expect(error.code == .notFound)
            #expect(error.message.contains("\(method) \(path)"), "\(error.message)")
        }
    }

    @Test func malformedRequestsAnswer400() async throws {
        let fixture = try await Fixture()
        let notJSON = await fixture.call("POST", "/v1/apply", raw: Data("sources: []".utf8))
        #expect(notJSON.status == 400)
        await #expect(try decode(ControlPlaneError.self, notJSON).code == .badRequest)

        let unknownKind = await fixture.call("GET", "/v1/resources", query: ["kind": "gateway"])
        #expect(unknownKind.status == 400)
        await #expect(try decode(ControlPlaneError.self, unknownKind).message.contains("gateway"))

        let badID = try await fixture.call("POST", "/v1/tokens", body: AdminProtocol.TokenRequest(spiffeID: "not-a-spiffe-id", ttlSeconds: 60))
        #expect(badID.status == 400)
        await #expect(try decode(ControlPlaneError.self, badID).message.contains("not-a-spiffe-id"))

        let empty = try await fixture.apply("# nothing\n")
        #expect(empty.status == 400)
    }

    @Test func missingResourcesAnswer404() async throws {
        let fixture = try await Fixture()
        _ = try await fixture.apply(try exampleMesh())
        let get = await fixture.call("GET", "/v1/resources", query: ["kind": "route", "name": "nope"])
        #expect(get.status == 404)
        await #expect(try decode(ControlPlaneError.self, get).message.contains("Route/nope"))

        let delete = try await fixture.call("POST", "/v1/delete", body: AdminProtocol.DeleteRequest(ids: [ResourceID(.route, "nope")], sources: [], dryRun: false))
        #expect(delete.status == 404)
        let rollback = try await fixture.call("POST", "/v1/rollback", body: AdminProtocol.RollbackRequest(revision: 99, dryRun: false))
        #expect(rollback.status == 404, "\(String(decoding: rollback.body, as: UTF8.self))")
    }

    @Test func deletingAReferencedResourceAnswers422AndRollbackRestores() async throws {
        let fixture = try await Fixture()
        _ = try await fixture.apply(try exampleMesh())
        let referenced = try await fixture.call("POST", "/v1/delete", body: AdminProtocol.DeleteRequest(ids: [ResourceID(.mcpBackend, "github")], sources: [], dryRun: false))
        #expect(referenced.status == 422)
        let diagnostics = try await decode(ControlPlaneError.self, referenced).diagnostics
        #expect(diagnostics.contains { $0.resource == "MCPBackend/github" && $0.message.contains("still referenced by Route/github") }, "\(diagnostics)")

        let deleted = try await fixture.call("POST", "/v1/delete", body: AdminProtocol.DeleteRequest(ids: [ResourceID(.authorizationPolicy, "github-no-writes")], sources: [], dryRun: false))
        #expect(deleted.status == 200)
        await #expect(try decode(AdminProtocol.ChangeResponse.self, deleted).revision == 2)

        let rollback = try await fixture.call("POST", "/v1/rollback", body: AdminProtocol.RollbackRequest(revision: 1, dryRun: false))
        #expect(rollback.status == 200)
        let restored = try await decode(AdminProtocol.ChangeResponse.self, rollback)
        #expect(restored.revision == 3 && restored.changes.contains { $0.id == ResourceID(.authorizationPolicy, "github-no-writes") && $0.action == .created })
        let history = try await decode(AdminProtocol.HistoryResponse.self, fixture.call("GET", "/v1/revisions"))
        #expect(history.revisions.first?.operation == .rollback && history.revisions.first?.rollbackTo == 1)
    }
}
