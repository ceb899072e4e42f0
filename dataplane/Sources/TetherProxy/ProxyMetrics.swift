import Foundation
import Prometheus
import TetherMeshIdentity

/// The proxy's Prometheus metrics, served on the admin port at `/metrics`.
/// State that can be read at any time (SVID expiry, connection, config
/// revision) is sampled at scrape time, so it is never stale; events
/// (config accepted or rejected, SVID renewals) are counted where they
/// happen.
public final class ProxyMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let configAccepted: Counter
    let configRejected: Counter
    let svidRenewals: Counter
    let svidRenewalFailures: Counter
    private let svidExpiry: Gauge
    private let connected: Gauge
    private let revision: Gauge
    private let resources: Gauge

    public init() {
        func name(_ subsystem: String, _ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "tether_proxy", subsystem: subsystem, metricName: metric, unitName: unit, helpText: help)
        }
        let updates = name("config", "updates", "total", "xDS responses, by whether they were accepted or rejected (NACKed).")
        configAccepted = registry.makeCounter(descriptor: updates, labels: [("result", "accepted")])
        configRejected = registry.makeCounter(descriptor: updates, labels: [("result", "rejected")])
        let renewals = name("svid", "renewals", "total", "X.509-SVID renewals, by outcome.")
        svidRenewals = registry.makeCounter(descriptor: renewals, labels: [("result", "ok")])
        svidRenewalFailures = registry.makeCounter(descriptor: renewals, labels: [("result", "failed")])
        svidExpiry = registry.makeGauge(descriptor: name("svid", "expiry", "timestamp_seconds", "When the current X.509-SVID expires (Unix time)."))
        connected = registry.makeGauge(descriptor: name("xds", "connected", "", "1 while the xDS stream to the control plane is up."))
        revision = registry.makeGauge(descriptor: name("config", "revision", "", "The control-plane revision of the config in use."))
        resources = registry.makeGauge(descriptor: name("config", "resources", "", "Resources in the config in use."))
    }

    /// The exposition text, after sampling the current state.
    func scrape(store: ProxyConfigStore, identity: WorkloadIdentityPublisher?) -> [UInt8] {
        let state = store.current
        connected.set(to: state.connected ? 1 : 0)
        revision.set(to: Double(state.config.systemVersion) ?? 0)
        resources.set(to: Double(state.config.resources.count))
        if let identity { svidExpiry.set(to: identity.current.svid.notAfter.timeIntervalSince1970) }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
