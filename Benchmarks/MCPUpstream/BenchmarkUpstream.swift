import NIOCore
import NIOHTTP1
import NIOPosix

/// A fast, deterministic MCP upstream for the data-path benchmark: answers
/// every POST with one fixed JSON-RPC result (a `tools/call` answer), so the
/// measurement is of what sits in front of it. (The MCP SDK's server tops
/// out near 1k calls/s on these machines: it would be the bottleneck.)
///
/// Usage: tether-bench-upstream PORT
///        tether-bench-upstream idp DIR   (see `BenchmarkIdentityProvider`)
@main
struct BenchmarkUpstream {
    static func main() async throws {
        let arguments = CommandLine.arguments
        if arguments.count == 3, arguments[1] == "idp" {
            try BenchmarkIdentityProvider.write(to: arguments[2])
            return
        }
        guard arguments.count == 2, let port = Int(arguments[1]) else {
            print("usage: tether-bench-upstream PORT | tether-bench-upstream idp DIR")
            return
        }
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Responder())
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        print("listening on 127.0.0.1:\(port)")
        try await channel.closeFuture.get()
    }
}

final class Responder: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let body = #"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}],"isError":false}}"#

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: "\(Self.body.utf8.count)")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: Self.body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
