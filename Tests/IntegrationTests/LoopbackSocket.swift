import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A raw TCP client, for what HTTP clients will not do (trickle headers).
final class LoopbackSocket: @unchecked Sendable {
    // @unchecked: used by one task at a time; `fd` never changes.
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw IntegrationError("cannot connect to 127.0.0.1:\(port)") }
    }

    deinit { close(fd) }

    /// Both directions closed, as a client that goes away.
    func shutdown() {
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// What arrives within `seconds` (empty at end-of-file or on timeout).
    func receive(seconds: Double) -> [UInt8] {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(seconds * 1000)) > 0 else { return [] }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count > 0 ? Array(buffer[..<count]) : []
    }

    /// Reads until `done` holds for everything read, at most `seconds`.
    func receive(until done: (String) -> Bool, seconds: Double) -> String {
        var text = ""
        let deadline = Date().addingTimeInterval(seconds)
        while !done(text), Date() < deadline {
            let chunk = receive(seconds: max(0.01, deadline.timeIntervalSinceNow))
            if chunk.isEmpty, !isOpen { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        return text
    }

    /// False once the peer closed (a read gives end-of-file or an error).
    var isOpen: Bool {
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, Int32(MSG_DONTWAIT | MSG_PEEK))
        if count == 0 { return false }
        if count < 0 { return errno == EAGAIN || errno == EWOULDBLOCK }
        return true
    }
}
