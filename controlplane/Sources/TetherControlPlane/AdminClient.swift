import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TetherCore
import TetherIdentity
import TetherMeshIdentity
import X509

/// Calls the admin API — over the control plane's Unix socket, or over mTLS
/// to a remote replica's admin endpoint with an operator SVID — what the
/// CLI uses. An operator SVID past half its lifetime is renewed first.
///
/// ```swift
/// let client = AdminClient(socketPath: "./tether-data/admin.sock")
/// let status: AdminProtocol.StatusResponse = try await client.get("/v1/status")
/// ```
public struct AdminClient: Sendable {
    public enum Endpoint: Sendable, CustomStringConvertible {
        case unixSocket(String)
        /// A remote admin endpoint; the operator's SVID lives in `operatorDirectory`.
        case remote(HostPort, operatorDirectory: String)

        public var description: String {
            switch self {
            case .unixSocket(let path): path
            case .remote(let address, _): "https://\(address)"
            }
        }
    }

    public let endpoint: Endpoint

    public init(socketPath: String) {
        endpoint = .unixSocket(socketPath)
    }

    public init(endpoint: Endpoint) {
        self.endpoint = endpoint
    }

    public func get<Response: Decodable>(_ path: String, query: [String: String] = [:]) async throws(ControlPlaneError) -> Response {
        var components = URLComponents()
        components.path = path
        if !query.isEmpty {
            components.queryItems = query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        }
        return try await call(method: .GET, uri: components.string ?? path, body: nil)
    }

    public func post<Request: Encodable, Response: Decodable>(_ path: String, _ body: Request) async throws(ControlPlaneError) -> Response {
        let data: Data
        do { data = try AdminProtocol.encoder.encode(body) } catch {
            throw ControlPlaneError(.internal, "cannot encode the request: \(error)")
        }
        return try await call(method: .POST, uri: path, body: data)
    }

    typealias Connection = NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>

    private func call<Response: Decodable>(method: HTTPMethod, uri: String, body: Data?) async throws(ControlPlaneError) -> Response {
        try await call(connection: try await connect(), method: method, uri: uri, body: body)
    }

    /// One request on `connection`, which it closes.
    func call<Response: Decodable>(connection: Connection, method: HTTPMethod, uri: String, body: Data?) async throws(ControlPlaneError) -> Response {
        let target = endpoint.description
        let (status, data): (Int, Data)
        do {
            (status, data) = try await connection.executeThenClose { inbound, outbound in
                var headers = HTTPHeaders()
                headers.add(name: "host", value: "localhost")
                headers.add(name: "content-type", value: "application/json")
                headers.add(name: "content-length", value: "\(body?.count ?? 0)")
                headers.add(name: "connection", value: "close")
                try await outbound.write(.head(HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)))
                if let body { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
                try await outbound.write(.end(nil))
                var status = 0
                var buffer = ByteBuffer()
                for try await part in inbound {
                    switch part {
                    case .head(let head): status = Int(head.status.code)
                    case .body(var chunk): buffer.writeBuffer(&chunk)
                    case .end: return (status, Data(buffer.readableBytesView))
                    }
                }
                return (status, Data(buffer.readableBytesView))
            }
        } catch {
            throw ControlPlaneError(.unavailable, "the control plane at \(target) closed the connection (\(error)); check that it is still running")
        }
        guard status == 200 else {
            if let error = try? AdminProtocol.decoder.decode(ControlPlaneError.self, from: data) { throw error }
            throw ControlPlaneError(.internal, "the control plane answered HTTP \(status) without an error description")
        }
        do {
            return try AdminProtocol.decoder.decode(Response.self, from: data)
        } catch {
            throw ControlPlaneError(.internal, "cannot read the control plane's answer (\(error)); the CLI and control plane may be different versions")
        }
    }

    private func connect() async throws(ControlPlaneError) -> Connection {
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        switch endpoint {
        case .unixSocket(let socketPath):
            do {
                return try await bootstrap.connect(unixDomainSocketPath: socketPath) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try Connection(wrappingChannelSynchronously: channel)
                    }
                }
            } catch {
                throw ControlPlaneError(.unavailable, "cannot reach the control plane at \(socketPath): is `tether-control run` running with this data directory? (start it, or pass --data-dir)")
            }
        case .remote(let address, let directory):
            let files = SVIDFiles(directory: directory)
            var identity = try OperatorCredentials.load(files)
            if identity.svid.renewalTime() < Date() {
                identity = try await OperatorCredentials.renew(identity, at: address, files: files)
            }
            return try await Self.connect(to: address, as: identity)
        }
    }

    /// mTLS to a remote admin endpoint: presents the operator's SVID and
    /// accepts only the control plane's own SVID under the operator's bundle.
    static func connect(to address: HostPort, as identity: WorkloadIdentity) async throws(ControlPlaneError) -> Connection {
        let expected = ControlPlaneIdentity.id(trustDomain: identity.id.trustDomain)
        let verifier = SPIFFEPeerVerifier(role: "admin-client", logger: Logger(label: "tether-control"), bundle: { identity.bundle }, authorize: SPIFFEPeerVerifier.only(expected))
        let context: NIOSSLContext
        do {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateChain = try identity.svid.chain.map { .certificate(try NIOSSLCertificate(bytes: $0.derBytes, format: .der)) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(identity.svid.privateKeyPEM.utf8), format: .pem))
            tls.trustRoots = .certificates(try identity.bundle.x509Authorities.map { try NIOSSLCertificate(bytes: $0.derBytes, format: .der) })
            tls.certificateVerification = .noHostnameVerification
            tls.applicationProtocols = ["http/1.1"]
            tls.harden()
            context = try NIOSSLContext(configuration: tls)
        } catch {
            throw ControlPlaneError(.internal, "cannot set up TLS with the operator SVID: \(error)")
        }
        do {
            return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(10))
                .connect(host: address.host, port: address.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil, customVerificationCallbackWithMetadata: verifier.callback))
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try Connection(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw ControlPlaneError(.unavailable, "cannot reach the control plane's admin endpoint at \(address): \(error)")
        }
    }
}

/// An operator's SVID for the remote admin endpoint, in a directory of its
/// own (`svid.pem`, `svid.key` 0600, `bundle.json`), enrolled with a join
/// token like a proxy and renewed over the admin endpoint.
public enum OperatorCredentials {
    public static func load(_ files: SVIDFiles) throws(ControlPlaneError) -> WorkloadIdentity {
        let loaded: WorkloadIdentity?
        do { loaded = try files.load() } catch { throw ControlPlaneError(.permissionDenied, error.reason) }
        guard let loaded else {
            throw ControlPlaneError(.permissionDenied, "no operator SVID in \(files.directory); enroll with tether-control operator enroll (a join token for spiffe://TD/operator/NAME from tether-control token create)")
        }
        guard loaded.svid.notAfter > Date() else {
            throw ControlPlaneError(.permissionDenied, "the operator SVID in \(files.directory) expired at \(loaded.svid.notAfter.formatted(.iso8601)); enroll again with a new join token")
        }
        return loaded
    }

    /// A new SVID over a key generated here, saved before it is used.
    static func renew(_ identity: WorkloadIdentity, at address: HostPort, files: SVIDFiles) async throws(ControlPlaneError) -> WorkloadIdentity {
        let key = P256.Signing.PrivateKey()
        let csr: [UInt8]
        do { csr = try X509SVID.certificateSigningRequest(for: identity.id, key: key) } catch {
            throw ControlPlaneError(.internal, "cannot make a certificate signing request: \(error)")
        }
        let client = AdminClient(endpoint: .remote(address, operatorDirectory: files.directory))
        let response: AdminProtocol.SVIDResponse = try await client.call(
            connection: try await AdminClient.connect(to: address, as: identity), method: .POST, uri: "/v1/operator/svid",
            body: try? AdminProtocol.encoder.encode(AdminProtocol.SVIDRequest(csr: Data(csr).base64EncodedString()))
        )
        var message = Tether_Identity_V1_X509SVIDResponse()
        message.certificateChain = response.certificateChain.compactMap { Data(base64Encoded: $0) }
        message.spiffeBundle = response.spiffeBundle
        let renewed: WorkloadIdentity
        do {
            renewed = try await IdentityResponse.identity(from: message, key: key, expected: identity.id)
            try files.save(renewed)
        } catch {
            throw ControlPlaneError(.permissionDenied, "cannot renew the operator SVID: \(error.reason)")
        }
        return renewed
    }
}
