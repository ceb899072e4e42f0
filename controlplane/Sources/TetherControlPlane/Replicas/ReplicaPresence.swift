import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import TetherXDS

/// Publishes this replica's proxy streams to the shared store every
/// `interval` (only when they changed, or as a heartbeat), so
/// `tether-control proxies` on any replica shows every proxy of the mesh
/// and the replica it is connected to. A replica that stops heartbeating
/// for `expiry` drops out of the listing: its proxies have moved on.
struct ReplicaPresence: Service, ProxyDirectory {
    let store: PostgresStore
    let replica: String
    let registry: ProxyRegistry
    let interval: Duration = .seconds(2)
    let heartbeat: Duration = .seconds(5)
    static let expiry = 15

    func run() async {
        await cancelWhenGracefulShutdown {
            var published: (generation: UInt64, proxies: Data)?
            var lastWrite = ContinuousClock.now
            while !Task.isCancelled {
                let generation = registry.generation
                // Nothing changed since the last write: only a heartbeat is due, if that.
                let encoded = published.flatMap { $0.generation == generation ? $0.proxies : nil }
                    ?? (try? JSONEncoder.presence.encode(registry.all)) ?? Data("[]".utf8)
                if encoded != published?.proxies || ContinuousClock.now - lastWrite >= heartbeat {
                    if (try? await write(encoded)) != nil {
                        published = (generation, encoded)
                        lastWrite = .now
                    }
                } else {
                    published = (generation, encoded)
                }
                do { try await Task.sleep(for: interval) } catch { return }
            }
        }
        // A clean stop leaves no stale entry behind.
        _ = try? await remove()
    }

    private func write(_ proxies: Data) async throws(ControlPlaneError) {
        let logger = store.logger
        let (replica, text) = (replica, String(decoding: proxies, as: UTF8.self))
        _ = try await store.withConnection("publish this replica's proxies") { connection in
            try await connection.query("""
                INSERT INTO replica_proxies (replica, heartbeat_at, proxies) VALUES (\(replica), now(), \(text))
                ON CONFLICT (replica) DO UPDATE SET heartbeat_at = now(), proxies = excluded.proxies
                """, logger: logger)
            return true
        }
    }

    private func remove() async throws(ControlPlaneError) {
        let logger = store.logger
        let replica = self.replica
        _ = try await store.withConnection("remove this replica's proxies") { connection in
            try await connection.query("DELETE FROM replica_proxies WHERE replica = \(replica)", logger: logger)
            return true
        }
    }

    /// This replica's streams as they are now, and every other live replica's as last published.
    func all() async throws(ControlPlaneError) -> [ProxyStatus] {
        let logger = store.logger
        let replica = self.replica
        let rows = try await store.withConnection("read every replica's proxies") { connection in
            try await connection.query("""
                SELECT replica, proxies FROM replica_proxies
                WHERE replica <> \(replica) AND heartbeat_at > now() - make_interval(secs => \(Self.expiry))
                """, logger: logger).collect().map { try $0.decode((String, String).self) }
        }
        var statuses = registry.all.map { status in
            var status = status
            status.replica = replica
            return status
        }
        for (other, text) in rows {
            let decoded = (try? JSONDecoder.presence.decode([ProxyStatus].self, from: Data(text.utf8))) ?? []
            statuses += decoded.map { status in
                var status = status
                status.replica = other
                return status
            }
        }
        return statuses.sorted { ($0.node, $0.replica ?? "", $0.stream) < ($1.node, $1.replica ?? "", $1.stream) }
    }
}

extension JSONEncoder {
    fileprivate static var presence: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = .sortedKeys
        return encoder
    }
}

extension JSONDecoder {
    fileprivate static var presence: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
