import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Creates a file that must not exist yet (a key, a CA), with its mode from
/// the first instant — never a moment world-readable — and synced to disk
/// before it is used. An existing file is an error, never overwritten: two
/// control planes starting in one data directory cannot replace each
/// other's keys.
enum ExclusiveFile {
    static func create(_ data: Data, at path: String, mode: mode_t) throws(ControlPlaneError) {
        let descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else {
            throw ControlPlaneError(.secrets, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        let written = data.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        guard written == data.count, fsync(descriptor) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(path)
            throw ControlPlaneError(.secrets, "cannot write \(path): \(reason)")
        }
    }
}
