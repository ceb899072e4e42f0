import Foundation
import TetherMeshIdentity
import TetherCore
import TetherXDS

#if canImport(Glibc)
import Glibc
#endif

/// The last config the proxy accepted, on disk, so a proxy that starts while
/// the control plane is unreachable serves what it last had. Written
/// atomically (temp file, fsync, rename, fsync of the directory) and 0600:
/// it holds the credentials this proxy's routes use.
public struct LastGoodConfigFile: Sendable {
    public let path: String

    public init(directory: String) {
        path = "\(directory)/last-good-config.json"
    }

    struct Document: Codable {
        struct Entry: Codable {
            var version: String
            var resource: Resource
        }
        var systemVersion: String
        var resources: [Entry]
    }

    public func save(_ config: ProxyConfig) throws {
        let document = Document(
            systemVersion: config.systemVersion,
            resources: config.resources.values.sorted { $0.resource.id < $1.resource.id }.map { Document.Entry(version: $0.version, resource: $0.resource) }
        )
        try AtomicFile.write(try JSONEncoder().encode(document), to: path, mode: 0o600)
    }

    /// The saved config, nil when there is none. A file that does not pass
    /// validation is refused as a whole.
    public func load() throws -> ProxyConfig? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let document = try JSONDecoder().decode(Document.self, from: data)
        var config = ProxyConfig(systemVersion: document.systemVersion)
        for entry in document.resources {
            // Same rules as for resources arriving over xDS.
            let resource = try ResourceCoding.decode(ResourceCoding.any(entry.resource), name: entry.resource.metadata.name)
            config.resources[resource.id] = VersionedResource(resource: resource, version: entry.version)
        }
        return config
    }
}
