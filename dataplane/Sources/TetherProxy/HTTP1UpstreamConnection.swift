import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization

/// Receives the parts of one upstream response, in order, as they arrive.
typealias ResponsePartReceiver = @Sendable (HTTPResponsePart) async throws -> Void

extension HTTPRequestPart {
    /// A request whose body is already whole (the proxy reads bodies before forwarding).
    static func whole(_ head: HTTPRequest, body: ByteBuffer) -> [HTTPRequestPart] {
        body.readableBytes > 0 ? [.head(head), .body(body), .end(nil)] : [.head(head), .end(nil)]
    }
}

/// One keep-alive HTTP/1.1 connection to an upstream. A task owns the
/// channel for its whole life and carries one exchange at a time; the pool
/// hands the connection to the next request once a response has ended
/// cleanly. Response parts go to the requester's receiver as they arrive,
/// and the next part is read only after it took the previous one, so a
/// slow client slows the upstream instead of filling memory.
final class HTTP1UpstreamConnection: Sendable {
    struct Exchange: Sendable {
        var head: HTTPRequest
        var body: ByteBuffer
        var receive: ResponsePartReceiver
        var done: CheckedContinuation<Bool, any Error>
    }

    let channel: any Channel
    private let exchanges: AsyncStream<Exchange>.Continuation
    /// Whether it has carried an exchange before (a reused connection may
    /// have been closed by the server meanwhile).
    let used = Atomic<Bool>(false)

    var isActive: Bool { channel.isActive }

    init(_ channel: NIOAsyncChannel<HTTPResponsePart, HTTPRequestPart>) {
        self.channel = channel.channel
        let (stream, continuation) = AsyncStream.makeStream(of: Exchange.self)
        exchanges = continuation
        // A connection the server closes while idle in the pool ends its task too.
        channel.channel.closeFuture.whenComplete { _ in continuation.finish() }
        Task { await Self.run(channel, exchanges: stream, continuation: continuation) }
    }

    /// Carries one exchange; whether the connection can carry another.
    func exchange(_ head: HTTPRequest, body: ByteBuffer, receive: @escaping ResponsePartReceiver) async throws -> Bool {
        used.store(true, ordering: .relaxed)
        // Cancelled (a timeout, the client gone): closing the connection ends the exchange.
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { done in
                if case .terminated = exchanges.yield(Exchange(head: head, body: body, receive: receive, done: done)) {
                    done.resume(throwing: UpstreamError(code: .closedBeforeResponse, reason: "the connection to the upstream is closed"))
                }
            }
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    func close() {
        exchanges.finish()
        channel.close(promise: nil)
    }

    private static func run(
        _ channel: NIOAsyncChannel<HTTPResponsePart, HTTPRequestPart>, exchanges: AsyncStream<Exchange>, continuation: AsyncStream<Exchange>.Continuation
    ) async {
        var pending: Exchange?
        do {
            try await channel.executeThenClose { inbound, outbound in
                var responses = inbound.makeAsyncIterator()
                for await exchange in exchanges {
                    pending = exchange
                    do {
                        try await outbound.write(contentsOf: HTTPRequestPart.whole(exchange.head, body: exchange.body))
                    } catch {
                        throw UpstreamError(code: .closedBeforeResponse, reason: "the upstream closed the connection: \(error)")
                    }
                    var keepAlive = true
                    var started = false
                    while true {
                        let part: HTTPResponsePart?
                        do {
                            part = try await responses.next()
                        } catch {
                            throw UpstreamError(code: started ? .truncated : .closedBeforeResponse, reason: "the upstream connection failed: \(error)")
                        }
                        guard let part else {
                            throw UpstreamError(code: started ? .truncated : .closedBeforeResponse, reason: "the upstream closed the connection before the response ended")
                        }
                        if case .head(let head) = part {
                            if head.status.kind == .informational { continue }
                            started = true
                            keepAlive = !(head.headerFields[.connection]?.lowercased().contains("close") ?? false)
                        }
                        try await exchange.receive(part)
                        if case .end = part { break }
                    }
                    pending = nil
                    exchange.done.resume(returning: keepAlive)
                    if !keepAlive { return }
                }
            }
        } catch {
            pending?.done.resume(throwing: error)
            pending = nil
        }
        continuation.finish()
        // Anyone who queued behind a failed exchange learns the connection is gone.
        for await exchange in exchanges {
            exchange.done.resume(throwing: UpstreamError(code: .closedBeforeResponse, reason: "the connection to the upstream is closed"))
        }
    }
}
