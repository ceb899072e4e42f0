import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The control plane's data directory: the database, the secrets key and the
/// admin socket. Created 0700 on first run; refused when others can read it.
///
/// ```swift
/// let directory = try DataDirectory.prepare(path: "./tether-data")
/// ```
public struct DataDirectory: Sendable {
    public let path: String

    public var databasePath: String { "\(path)/tether.db" }
    public var secretsKeyPath: String { "\(path)/secrets.key" }
    public var adminSocketPath: String { "\(path)/admin.sock" }
    public var lockPath: String { "\(path)/tether-control.lock" }

    public static let defaultPath = "./tether-data"

    public init(path: String) {
        self.path = path
    }

    /// Creates the directory (0700) if needed and checks its permissions.
    public static func prepare(path: String) throws(ControlPlaneError) -> DataDirectory {
        var info = stat()
        if stat(path, &info) != 0 {
            guard mkdir(path, 0o700) == 0 || errno == EEXIST else {
                throw ControlPlaneError(.dataDirectory, "cannot create data directory \(path): \(String(cString: strerror(errno)))")
            }
            guard stat(path, &info) == 0 else {
                throw ControlPlaneError(.dataDirectory, "cannot read data directory \(path): \(String(cString: strerror(errno)))")
            }
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            throw ControlPlaneError(.dataDirectory, "\(path) exists and is not a directory; pass --data-dir with a directory path")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw ControlPlaneError(.dataDirectory, "data directory \(path) is accessible by other users (mode \(String(info.st_mode & 0o777, radix: 8))); run chmod 700 \(path)")
        }
        return DataDirectory(path: path)
    }
}

/// Holds an exclusive lock on the data directory for the life of the
/// process, so two control planes never share one database.
public final class DataDirectoryLock: Sendable {
    private let descriptor: Int32

    public init(_ directory: DataDirectory) throws(ControlPlaneError) {
        let descriptor = open(directory.lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw ControlPlaneError(.dataDirectory, "cannot open \(directory.lockPath): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw ControlPlaneError(.alreadyRunning, "another tether-control is already running with data directory \(directory.path); stop it or pass another --data-dir")
        }
        self.descriptor = descriptor
    }

    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
