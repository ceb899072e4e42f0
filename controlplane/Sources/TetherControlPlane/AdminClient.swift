import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// Calls the admin API over the control plane's Unix socket; what the CLI uses.
///
/// ```swift
/// let client = AdminClient(socketPath: "./tether-data/admin.sock")
/// let status: AdminProtocol.StatusResponse = try await client.get("/v1/status")
/// ```
public struct AdminClient: Sendable {
    public let socketPath: String

    public init(socketPath: String) {
        self.socketPath = socketPath
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
        let connection: Connection
        do {
            connection = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(unixDomainSocketPath: socketPath) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try Connection(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw ControlPlaneError(.unavailable, "cannot reach the control plane at \(socketPath): is `tether-control run` running with this data directory? (start it, or pass --data-dir)")
        }
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
            throw ControlPlaneError(.unavailable, "the control plane at \(socketPath) closed the connection (\(error)); check that it is still running")
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
}
