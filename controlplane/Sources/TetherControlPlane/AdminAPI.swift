import Foundation
import TetherAdminHTTP
import TetherCore
import TetherIdentity
import TetherXDS

/// Routes admin requests to the config manager. Transport-neutral: the Unix
/// socket server and the remote mTLS endpoint authenticate the caller, then
/// feed it the same requests with that identity as `author`.
///
/// Endpoints (all JSON):
/// `GET /v1/status`, `GET /v1/resources?kind=&name=`, `GET /v1/revisions?limit=`, `GET /v1/proxies`, `POST /v1/tokens`,
/// `POST /v1/apply`, `POST /v1/diff`, `POST /v1/delete`, `POST /v1/rollback`, `POST /v1/explain`,
/// `GET|POST /v1/revocations`, `GET /v1/bundle`.
public struct AdminAPI: Sendable {
    public let manager: ConfigManager
    public let identity: IdentityService
    public let dataDirectory: String
    public let proxies: any ProxyDirectory

    public init(manager: ConfigManager, identity: IdentityService, dataDirectory: String, proxies: any ProxyDirectory) {
        self.manager = manager
        self.identity = identity
        self.dataDirectory = dataDirectory
        self.proxies = proxies
    }

    /// Handles one request.
    public func handle(_ request: AdminRequest, author: String) async -> AdminResponse {
        do throws(ControlPlaneError) {
            switch (request.method, request.path) {
            case ("GET", "/v1/status"):
                return ok(try await manager.status(dataDirectory: dataDirectory))
            case ("GET", "/v1/resources"):
                var kind: ResourceKind?
                if let name = request.query["kind"] {
                    guard let parsed = ResourceKind(commandLineName: name) else {
                        throw ControlPlaneError(.badRequest, "unknown kind \"\(name)\"; use one of \(ResourceKind.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    kind = parsed
                }
                return ok(try await manager.get(kind: kind, name: request.query["name"]))
            case ("POST", "/v1/tokens"):
                let request: AdminProtocol.TokenRequest = try decode(request.body)
                let id: SPIFFEID
                do { id = try SPIFFEID(request.spiffeID) } catch {
                    throw ControlPlaneError(.badRequest, "\(request.spiffeID) is not a SPIFFE ID: it \(error.reason)")
                }
                let created = try await identity.createJoinToken(for: id, ttl: request.ttlSeconds, author: author)
                return ok(AdminProtocol.TokenResponse(token: created.token, spiffeID: id.description, expiresAt: created.expiresAt, caHash: identity.caHash))
            case ("POST", "/v1/revocations"):
                let body: AdminProtocol.RevocationRequest = try decode(request.body)
                let id: SPIFFEID
                do { id = try SPIFFEID(body.spiffeID) } catch {
                    throw ControlPlaneError(.badRequest, "\(body.spiffeID) is not a SPIFFE ID: it \(error.reason)")
                }
                try await identity.setRevoked(id, revoked: body.revoked, author: author, reason: body.reason)
                return ok(AdminProtocol.RevocationsResponse(revoked: try await identity.revokedIdentities()))
            case ("GET", "/v1/bundle"):
                let bundle = identity.bundle
                let pem = bundle.x509Authorities.map { (try? $0.serializeAsPEM().pemString) ?? "" }.joined(separator: "\n") + "\n"
                return ok(AdminProtocol.BundleResponse(trustDomain: bundle.trustDomain, spiffeBundle: bundle.spiffeBundleJSON, pem: pem, caHash: identity.caHash))
            case ("GET", "/v1/revocations"):
                return ok(AdminProtocol.RevocationsResponse(revoked: try await identity.revokedIdentities()))
            case ("POST", "/v1/explain"):
                return ok(try await manager.explain(try decode(request.body)))
            case ("GET", "/v1/proxies"):
                return ok(AdminProtocol.ProxiesResponse(proxies: try await proxies.all()))
            case ("GET", "/v1/revisions"):
                let limit = request.query["limit"].flatMap(Int.init) ?? 50
                return ok(try await manager.history(limit: max(1, min(limit, 10_000))))
            case ("POST", "/v1/apply"):
                return ok(try await manager.apply(try decode(request.body), author: author))
            case ("POST", "/v1/diff"):
                return ok(try await manager.diff(try decode(request.body)))
            case ("POST", "/v1/delete"):
                return ok(try await manager.delete(try decode(request.body), author: author))
            case ("POST", "/v1/rollback"):
                return ok(try await manager.rollback(try decode(request.body), author: author))
            default:
                throw ControlPlaneError(.notFound, "no admin endpoint \(request.method) \(request.path); the CLI and control plane may be different versions")
            }
        } catch {
            return Self.failure(error)
        }
    }

    static func failure(_ error: ControlPlaneError) -> AdminResponse {
        AdminResponse(status: status(for: error.code), body: try! AdminProtocol.encoder.encode(error))
    }

    static func success<T: Encodable>(_ value: T) -> AdminResponse {
        AdminResponse(status: 200, body: try! AdminProtocol.encoder.encode(value))
    }

    static func status(for code: ControlPlaneError.Code) -> Int {
        switch code {
        case .invalidConfig: 422
        case .notFound: 404
        case .badRequest: 400
        case .permissionDenied: 403
        case .unavailable: 503
        case .dataDirectory, .alreadyRunning, .storage, .secrets, .internal: 500
        }
    }

    private func ok<T: Encodable>(_ value: T) -> AdminResponse {
        Self.success(value)
    }

    private func decode<T: Decodable>(_ body: Data) throws(ControlPlaneError) -> T {
        do {
            return try AdminProtocol.decoder.decode(T.self, from: body)
        } catch {
            throw ControlPlaneError(.badRequest, "the request body is not a valid \(T.self): \(error)")
        }
    }
}

extension AdminProtocol {
    public static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    public static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
