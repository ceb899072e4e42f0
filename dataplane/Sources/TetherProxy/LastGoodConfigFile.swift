import Foundation
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
        let data = try JSONEncoder().encode(document)
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw fileError("cannot create \(temporary)") }
        let written = data.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard written == data.count, synced else { throw fileError("cannot write \(temporary)") }
        guard rename(temporary, path) == 0 else { throw fileError("cannot replace \(path)") }
        let directory = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
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

    private func fileError(_ message: String) -> Error {
        ProxyError("\(message): \(String(cString: strerror(errno)))")
    }
}

/// A proxy failure with an actionable message.
public struct ProxyError: Error, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
