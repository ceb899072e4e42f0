import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing
@testable import TetherAdminHTTP

@Suite("Local HTTP server")
struct LocalHTTPServerTests {
    /// Runs a server on a free loopback port for the duration of `body`.
    func withServer(requestTimeout: TimeAmount, _ body: @Sendable (Int) async throws -> Void) async throws {
        let port = Mutex<Int?>(nil)
        let server = LocalHTTPServer(
            name: "admin", address: .tcp(host: "127.0.0.1", port: 0),
            requestTimeout: requestTimeout,
            logger: Logger(label: "test"),
            bound: { address in
                if case .tcp(_, let bound) = address { port.withLock { $0 = bound } }
            },
            handler: { request, _ in AdminResponse(status: 200, contentType: "text/plain", body: Data("hello \(request.path)".utf8)) }
        )
        let group = ServiceGroup(configuration: .init(services: [server], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var bound: Int?
            for _ in 0..<200 where bound == nil {
                bound = port.withLock { $0 }
                if bound == nil { try await Task.sleep(for: .milliseconds(10)) }
            }
            try await body(try #require(bound))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    /// Connects, sends `request`, and reads until the server closes (at most `limit`).
    func exchange(port: Int, request: String, limit: Duration = .seconds(5)) throws -> (reply: String, closedAfter: Duration) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(connected == 0)
        var timeout = timeval(tv_sec: Int(limit.components.seconds), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        if !request.isEmpty { _ = request.withCString { send(fd, $0, strlen($0), 0) } }
        let start = ContinuousClock.now
        var reply = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            reply.append(contentsOf: buffer[0..<count])
        }
        return (String(decoding: reply, as: UTF8.self), ContinuousClock.now - start)
    }

    @Test func answersARequest() async throws {
        try await withServer(requestTimeout: .seconds(5)) { port in
            let (reply, _) = try exchange(port: port, request: "GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(reply.hasPrefix("HTTP/1.1 200 OK"))
            #expect(reply.hasSuffix("hello /ready"))
        }
    }

    @Test func aStalledClientIsClosed() async throws {
        try await withServer(requestTimeout: .milliseconds(300)) { port in
            let (reply, closedAfter) = try exchange(port: port, request: "GET /ready HTTP/1.1\r\n")
            #expect(reply.isEmpty)
            #expect(closedAfter < .seconds(3), "closed by the server, not by the test's own timeout")
        }
    }
}
