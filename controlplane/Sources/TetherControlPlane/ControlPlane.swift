import Logging
import ServiceLifecycle

/// Assembles the control plane from its configuration: data directory, store,
/// secrets, admin API. `services` run in one `ServiceGroup`.
///
/// ```swift
/// let controlPlane = try ControlPlane(configuration: .init(dataDirectory: "./tether-data"), logger: logger)
/// let group = ServiceGroup(services: controlPlane.services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
/// try await group.run()
/// ```
public struct ControlPlane: Sendable {
    public struct Configuration: Sendable {
        public var dataDirectory: String

        public init(dataDirectory: String = DataDirectory.defaultPath) {
            self.dataDirectory = dataDirectory
        }
    }

    public let directory: DataDirectory
    public let manager: ConfigManager
    public let services: [any Service]
    /// Held for the life of the control plane.
    private let lock: DataDirectoryLock

    public init(configuration: Configuration, logger: Logger) throws(ControlPlaneError) {
        directory = try DataDirectory.prepare(path: configuration.dataDirectory)
        lock = try DataDirectoryLock(directory)
        let secrets = try SecretBox.loadOrCreate(keyFile: directory.secretsKeyPath)
        let store = try SQLiteConfigStore(path: directory.databasePath)
        manager = ConfigManager(store: store, secrets: secrets)
        let api = AdminAPI(manager: manager, dataDirectory: directory.path)
        services = [AdminServer(socketPath: directory.adminSocketPath, api: api, logger: logger)]
    }
}
