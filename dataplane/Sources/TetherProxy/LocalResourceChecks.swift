import Foundation
import TetherCore

/// What only the proxy's host can judge about a resource: files it names
/// must be there and readable here. A failure NACKs the update, and the proxy
/// keeps its previous config.
public enum LocalResourceChecks {
    public static func check(_ resource: Resource) -> String? {
        switch resource.spec {
        case .identityProvider(let idp):
            guard case .file(let path) = idp.jwks else { return nil }
            guard let data = FileManager.default.contents(atPath: path) else {
                return "spec.jwks.file: cannot read \(path) on this proxy"
            }
            guard (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["keys"] is [Any] else {
                return "spec.jwks.file: \(path) is not a JWK Set"
            }
            return nil
        case .mcpBackend(.external(let backend)):
            guard let path = backend.tls?.caFile else { return nil }
            guard let data = FileManager.default.contents(atPath: path) else {
                return "spec.external.tls.caFile: cannot read \(path) on this proxy"
            }
            guard String(decoding: data, as: UTF8.self).contains("-----BEGIN CERTIFICATE-----") else {
                return "spec.external.tls.caFile: \(path) holds no PEM certificate"
            }
            return nil
        default:
            return nil
        }
    }
}
