import Foundation
import HTTPTypes
import TetherCore

/// OAuth 2.0 Protected Resource Metadata (RFC 9728) for the outbound
/// routes that authenticate users, as the MCP authorization specification
/// asks: a client refused with 401 follows `resource_metadata` in the
/// `WWW-Authenticate` challenge to learn which authorization server issues
/// the tokens this route accepts.
enum ProtectedResourceMetadata {
    static let prefix = "/.well-known/oauth-protected-resource"

    /// The resource identifier of a route: the agent's URL for it.
    static func resource(authority: String?, routePath: String) -> String {
        "http://\(authority ?? "localhost")\(routePath == "/" ? "" : routePath)"
    }

    /// The `WWW-Authenticate` value for a 401 on a route.
    static func challenge(authority: String?, routePath: String) -> String {
        let suffix = routePath == "/" ? "" : routePath
        return "Bearer resource_metadata=\"http://\(authority ?? "localhost")\(prefix)\(suffix)\""
    }

    /// The metadata document of the route at `path` (below the well-known
    /// prefix), or 404 when no route that authenticates users is there.
    static func document(path: String, authority: String?, config: DataPlaneConfig) -> Result<Data, Refusal> {
        let routePath = String(path.dropFirst(prefix.count).prefix { $0 != "?" })
        guard let (route, rest) = config.route(for: routePath.isEmpty ? "/" : routePath), rest.isEmpty,
            let provider = route.spec.identityProvider, let idp = config.identityProviders[provider]
        else {
            return .failure(Refusal(.notFound, "no route that authenticates users has the path \(routePath)"))
        }
        var document: [String: Any] = [
            "resource": resource(authority: authority, routePath: route.spec.path),
            "authorization_servers": [idp.issuer.description],
            "bearer_methods_supported": ["header"],
            "resource_name": route.name,
        ]
        if let exchange = route.spec.tokenExchange, let scopes = config.tokenExchanges[exchange]?.scopes {
            document["scopes_supported"] = scopes
        }
        return .success((try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data())
    }
}
