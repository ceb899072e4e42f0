import Foundation
import TetherIdentity

#if canImport(Glibc)
import Glibc
#endif

/// Replaces a file so a crash leaves either the old or the new content,
/// never a torn one: temp file, fsync, rename, fsync of the directory.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String, mode: mode_t) throws(IdentityError) {
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw failure("cannot create \(temporary)") }
        fchmod(descriptor, mode)
        let written = data.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard written == data.count, synced else { throw failure("cannot write \(temporary)") }
        guard rename(temporary, path) == 0 else { throw failure("cannot replace \(path)") }
        let directory = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }

    private static func failure(_ message: String) -> IdentityError {
        IdentityError(.storage, "\(message): \(String(cString: strerror(errno)))")
    }
}
