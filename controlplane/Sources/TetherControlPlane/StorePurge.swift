import Foundation
import Logging
import ServiceLifecycle

/// Forgets join tokens and certificate records that expired more than a
/// week ago (the records stay long enough to answer "who held this serial
/// last week?"), hourly. With a shared store one replica at a time does it (the
/// store takes an advisory lock and the others skip).
struct StorePurge: Service {
    let store: any IdentityStore
    let logger: Logger
    var interval: Duration = .seconds(3600)
    var retention: TimeInterval = 7 * 24 * 3600

    func run() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do throws(ControlPlaneError) {
                    try await store.purge(expiredBefore: Date().addingTimeInterval(-retention))
                } catch {
                    logger.warning("cannot purge expired identity records; retrying next hour", metadata: ["error": "\(error.message)"])
                }
                do { try await Task.sleep(for: interval) } catch { return }
            }
        }
    }
}
