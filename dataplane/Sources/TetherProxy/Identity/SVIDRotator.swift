import Foundation
import Logging
import ServiceLifecycle
import TetherIdentity
import TetherMeshIdentity

/// Renews the proxy's SVID at half its lifetime (± 10% jitter) over a fresh
/// key, publishes it — new handshakes use it, open connections are left
/// alone — and saves it. A failed renewal is retried with capped backoff
/// until it succeeds; the old SVID stays in use meanwhile.
struct SVIDRotator: Service {
    let identity: WorkloadIdentityPublisher
    let client: ControlPlaneIdentityClient
    let files: SVIDFiles
    let metrics: ProxyMetrics
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var next = identity.current.svid.renewalTime()
            var failures = 0
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: .milliseconds(Int64(max(0, next.timeIntervalSinceNow) * 1000)))
                } catch {
                    return
                }
                do {
                    let renewed = try await client.renew()
                    identity.publish(renewed)
                    do { try files.save(renewed) } catch {
                        logger.error("cannot save the renewed SVID", metadata: ["error": "\(error)"])
                    }
                    failures = 0
                    metrics.svidRenewals.increment()
                    next = renewed.svid.renewalTime()
                    logger.info("SVID rotated", metadata: [
                        "tether.node": "\(renewed.id)", "tether.svid.serial": "\(renewed.svid.leaf.serialNumber.openSSLText)",
                        "tether.svid.expires": "\(renewed.svid.notAfter.formatted(.iso8601))", "tether.svid.next_renewal": "\(next.formatted(.iso8601))",
                    ])
                } catch is CancellationError {
                    return
                } catch {
                    failures += 1
                    metrics.svidRenewalFailures.increment()
                    next = Date() + min(30, 0.5 * Double(1 << min(failures, 6)))
                    logger.warning("SVID renewal failed; will retry", metadata: [
                        "error": "\(error)", "tether.svid.expires": "\(identity.current.svid.notAfter.formatted(.iso8601))",
                    ])
                }
            }
        }
    }
}
