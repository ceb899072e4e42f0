import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import TetherCore
import TetherIdentity
import TetherMeshIdentity
import TetherProxy
import X509

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The metadata every Workload API call must carry.
let securityHeader: Metadata = ["workload.spiffe.io": "true"]

typealias WorkloadAPIClient = Workload_SpiffeWorkloadAPI.Client<HTTP2ClientTransport.Posix>

/// A trust domain for the tests: a root, optionally an intermediate CA that
/// issues the SVIDs, and a JWT-SVID signing key.
struct TestMesh: Sendable {
    static let trustDomain = "example.org"
    let id = try! SPIFFEID("spiffe://example.org/agent/triage")
    let root: Certificate
    /// Issues the SVIDs: the root itself, or an intermediate under it.
    let issuingCA: TrustDomainCA
    let intermediates: [Certificate]
    let issuer: JWTSVIDIssuer

    init(intermediate: Bool = false) async throws {
        if intermediate {
            let rootKey = P256.Signing.PrivateKey()
            root = try Self.caCertificate(name: "Test root", key: rootKey.publicKey, pathLength: 1, issuer: nil, signer: rootKey)
            let intermediateKey = P256.Signing.PrivateKey()
            let intermediateCertificate = try Self.caCertificate(name: "Test intermediate", key: intermediateKey.publicKey, pathLength: 0, issuer: root, signer: rootKey)
            issuingCA = try TrustDomainCA(trustDomain: Self.trustDomain, certificate: intermediateCertificate, privateKey: Certificate.PrivateKey(intermediateKey))
            intermediates = [intermediateCertificate]
        } else {
            issuingCA = try TrustDomainCA.generate(trustDomain: Self.trustDomain)
            root = issuingCA.certificate
            intermediates = []
        }
        issuer = try await JWTSVIDIssuer(trustDomain: Self.trustDomain, key: P256.Signing.PrivateKey())
    }

    var bundle: TrustBundle {
        TrustBundle(trustDomain: Self.trustDomain, x509Authorities: [root], jwtAuthorities: [issuer.authority])
    }

    /// A freshly keyed and issued identity (what a rotation publishes).
    func identity(bundle: TrustBundle? = nil) throws -> WorkloadIdentity {
        let key = P256.Signing.PrivateKey()
        let leaf = try issuingCA.issue(publicKey: Certificate.PublicKey(key.publicKey), for: id)
        return WorkloadIdentity(svid: try X509SVID(chain: [leaf] + intermediates, privateKey: key), bundle: bundle ?? self.bundle)
    }

    func mint(_ audience: [String]) async throws -> String {
        try await issuer.mint(for: id, audience: audience)
    }

    /// A CA certificate as the X509-SVID standard describes signing
    /// certificates: the trust domain's SPIFFE ID as URI SAN, cA, keyCertSign.
    static func caCertificate(name: String, key: P256.Signing.PublicKey, pathLength: Int, issuer: Certificate?, signer: P256.Signing.PrivateKey) throws -> Certificate {
        let publicKey = Certificate.PublicKey(key)
        let subject = try DistinguishedName { CommonName(name) }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: pathLength))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(hash: publicKey)
            if let issuer {
                AuthorityKeyIdentifier(keyIdentifier: try issuer.extensions.subjectKeyIdentifier?.keyIdentifier)
            }
            SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://\(trustDomain)")])
        }
        return try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: publicKey,
            notValidBefore: Date() - 60,
            notValidAfter: Date() + 24 * 3600,
            issuer: issuer?.subject ?? subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(signer)
        )
    }
}

/// Every log line the server writes, with its metadata, to check that no
/// secret ever reaches a log.
final class LogRecorder: Sendable {
    private let lines = Mutex<[String]>([])

    var all: [String] { lines.withLock { $0 } }

    var logger: Logger {
        Logger(label: "tether-proxy-test") { _ in Handler(recorder: self) }
    }

    fileprivate func append(_ line: String) {
        lines.withLock { $0.append(line) }
    }

    struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            recorder.append("\(event.level) \(event.message) \(all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
        }
    }
}

/// A running Workload API server on a Unix socket in a fresh directory.
struct WorkloadAPIFixture: Sendable {
    let directory: String
    let socketPath: String
    let mesh: TestMesh
    let identity: WorkloadIdentityPublisher
    let service: WorkloadAPIService
    let logs: LogRecorder
    let group: ServiceGroup

    /// A client for the duration of `body`.
    func withClient<Result: Sendable>(_ body: @Sendable (WorkloadAPIClient) async throws -> Result) async throws -> Result {
        try await TetherProxyTests.withClient(socketPath: socketPath, body)
    }
}

func withClient<Result: Sendable>(socketPath: String, _ body: @Sendable (WorkloadAPIClient) async throws -> Result) async throws -> Result {
    let transport = try HTTP2ClientTransport.Posix(target: .unixDomainSocket(path: socketPath), transportSecurity: .plaintext)
    return try await withGRPCClient(transport: transport) { client in
        try await body(WorkloadAPIClient(wrapping: client))
    }
}

/// A fresh directory under /tmp (short: Unix socket paths are limited to
/// about 100 bytes), removed by the caller.
func makeTemporaryDirectory() throws -> String {
    var template = Array("/tmp/tether-wapi-XXXXXX".utf8CString)
    guard let path = mkdtemp(&template) else {
        throw TestFailure("cannot create a temporary directory: \(String(cString: strerror(errno)))")
    }
    return String(cString: path)
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs a Workload API server (in a `ServiceGroup`, as the proxy does) for
/// the duration of `body`, then shuts it down gracefully; every wait is
/// bounded.
func withWorkloadAPI(
    intermediate: Bool = false,
    mint: (@Sendable (TestMesh, [String]) async throws -> String)? = nil,
    beforeStart: (_ socketPath: String) throws -> Void = { _ in },
    _ body: @Sendable (WorkloadAPIFixture) async throws -> Void
) async throws {
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let mesh = try await TestMesh(intermediate: intermediate)
    let identity = WorkloadIdentityPublisher(try mesh.identity())
    let logs = LogRecorder()
    let socketPath = directory + "/agent.sock"
    try beforeStart(socketPath)
    let service = WorkloadAPIService(
        identity: identity,
        mintJWTSVID: { audience in try await (mint ?? { mesh, audience in try await mesh.mint(audience) })(mesh, audience) },
        logger: logs.logger
    )
    let (listening, bound) = AsyncStream<String>.makeStream()
    let server = WorkloadAPIServer(socketPath: socketPath, service: service, logger: logs.logger, bound: { bound.yield($0) })
    let group = ServiceGroup(configuration: .init(services: [server], logger: logs.logger))
    let fixture = WorkloadAPIFixture(directory: directory, socketPath: socketPath, mesh: mesh, identity: identity, service: service, logs: logs, group: group)

    try await withThrowingTaskGroup(of: Bool.self) { tasks in
        tasks.addTask {
            try await group.run()
            return true
        }
        var outcome: Result<Void, any Error> = .success(())
        do {
            try await withTimeout("the Workload API to listen") {
                for await _ in listening { return }
            }
            try await body(fixture)
        } catch {
            outcome = .failure(error)
        }
        await group.triggerGracefulShutdown()
        tasks.addTask {
            try await Task.sleep(for: .seconds(10))
            return false
        }
        let stopped = try await tasks.next() ?? false
        tasks.cancelAll()
        #expect(stopped, "the server did not stop within 10 s of graceful shutdown")
        try outcome.get()
    }
    #expect(!FileManager.default.fileExists(atPath: socketPath), "the socket is removed on exit")
}

/// `body`, or a failure after `seconds`.
@discardableResult
func withTimeout<Result: Sendable>(_ what: String, seconds: Double = 10, _ body: @escaping @Sendable () async throws -> Result) async throws -> Result {
    try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let result = try await group.next(), let result else {
            throw TestFailure("timed out after \(seconds) s waiting for \(what)")
        }
        return result
    }
}

/// The status code an RPC failed with (nil if it succeeded).
func rpcErrorCode(_ body: () async throws -> Void) async -> RPCError.Code? {
    do {
        try await body()
        return nil
    } catch let error as RPCError {
        return error.code
    } catch {
        Issue.record("expected an RPCError, got \(error)")
        return nil
    }
}

/// The certificates in concatenated DER, as the Workload API sends them.
func certificates(_ der: Data) throws -> [Certificate] {
    let bytes = Array(der)
    var result: [Certificate] = []
    var index = 0
    while index < bytes.count {
        guard bytes[index] == 0x30, index + 1 < bytes.count else {
            throw TestFailure("not a DER SEQUENCE at offset \(index)")
        }
        var length = Int(bytes[index + 1])
        var header = 2
        if length & 0x80 != 0 {
            let count = length & 0x7f
            guard count <= 4, index + 2 + count <= bytes.count else { throw TestFailure("bad DER length at offset \(index)") }
            length = bytes[(index + 2)..<(index + 2 + count)].reduce(0) { $0 << 8 | Int($1) }
            header += count
        }
        guard index + header + length <= bytes.count else { throw TestFailure("truncated DER at offset \(index)") }
        result.append(try Certificate(derEncoded: Array(bytes[index..<(index + header + length)])))
        index += header + length
    }
    return result
}

/// The URI SANs of a certificate.
func uriSANs(_ certificate: Certificate) throws -> [String] {
    try certificate.extensions.subjectAlternativeNames?.compactMap {
        if case .uniformResourceIdentifier(let uri) = $0 { uri } else { nil }
    } ?? []
}

/// Runs a program to completion (output to `log`), killing it after `seconds`.
/// `whileRunning` is polled until it returns true, while the program runs.
func run(
    _ arguments: [String], log: String, seconds: Double, whileRunning: (() async throws -> Bool)? = nil
) async throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    _ = FileManager.default.createFile(atPath: log, contents: nil)
    let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
    defer { try? output.close() }
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let deadline = ContinuousClock.now + .seconds(seconds)
    var pending = whileRunning
    while process.isRunning {
        if let check = pending, try await check() { pending = nil }
        guard ContinuousClock.now < deadline else {
            process.terminate()
            process.waitUntilExit()
            throw TestFailure("\(arguments.joined(separator: " ")) did not finish within \(seconds) s; output:\n\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
        try await Task.sleep(for: .milliseconds(50))
    }
    process.waitUntilExit()
    return process.terminationStatus
}
