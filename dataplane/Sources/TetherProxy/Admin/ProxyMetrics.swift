import Foundation
import Prometheus
import Synchronization
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

    // MARK: Data path

    static let latencyBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]

    /// MCP methods get their own label value; anything else a client sends
    /// is "other", so a client cannot grow the metric without bound.
    static let knownMethods: Set<String> = [
        "initialize", "ping", "server/discover", "tools/list", "tools/call", "resources/list", "resources/templates/list",
        "resources/read", "resources/subscribe", "resources/unsubscribe", "prompts/list", "prompts/get", "completion/complete",
        "logging/setLevel", "notifications/initialized", "notifications/cancelled", "notifications/progress",
        "notifications/roots/list_changed", "GET", "DELETE", "response",
    ]

    private func descriptor(_ subsystem: String, _ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "tether_proxy", subsystem: subsystem, metricName: metric, unitName: unit, helpText: help)
    }

    struct RequestLabels: Hashable {
        var listener: String
        var route: String
        var method: String
        var decision: String
        var status: Int
    }

    /// The per-request series, looked up here first: the registry's own
    /// lookup builds and validates the full name and labels on every call,
    /// which showed in the data path's profile.
    private let requestSeries = Mutex<(counters: [RequestLabels: Counter], latency: [[String]: DurationHistogram])>(([:], [:]))

    /// One MCP request, once it is answered.
    func recordRequest(listener: String, route: String, method: String, decision: String, status: Int, duration: Duration) {
        let labels = RequestLabels(listener: listener, route: route, method: Self.knownMethods.contains(method) ? method : "other", decision: decision, status: status)
        let (counter, histogram) = requestSeries.withLock { series in
            (series.counters[labels], series.latency[[listener, route]])
        }
        (counter ?? requestCounter(labels)).increment()
        (histogram ?? latencyHistogram(listener: listener, route: route)).record(duration)
    }

    private func requestCounter(_ labels: RequestLabels) -> Counter {
        let counter = registry.makeCounter(
            descriptor: descriptor("mcp", "requests", "total", "MCP requests, by listener, route (or served backend), method, decision and response status."),
            labels: [("listener", labels.listener), ("route", labels.route), ("method", labels.method), ("decision", labels.decision), ("status", "\(labels.status)")]
        )
        requestSeries.withLock { $0.counters[labels] = counter }
        return counter
    }

    private func latencyHistogram(listener: String, route: String) -> DurationHistogram {
        let histogram = registry.makeDurationHistogram(
            descriptor: descriptor("mcp", "request_duration", "seconds", "Time to answer an MCP request, until its response ended."),
            labels: [("listener", listener), ("route", route)],
            buckets: Self.latencyBuckets
        )
        requestSeries.withLock { $0.latency[[listener, route]] = histogram }
        return histogram
    }

    func recordUpstreamError(listener: String, route: String, code: String) {
        registry.makeCounter(
            descriptor: descriptor("upstream", "errors", "total", "Requests that failed on the way to or back from the upstream, by cause."),
            labels: [("listener", listener), ("route", route), ("code", code)]
        ).increment()
    }

    private func active(_ what: String, listener: String) -> Gauge {
        registry.makeGauge(
            descriptor: descriptor("downstream", "active_\(what)", "", "Open downstream \(what) on the data-path listeners."),
            labels: [("listener", listener)]
        )
    }

    /// A connection the listener closed before serving it, by why:
    /// `max_connections`, `handshake_timeout`, or `accept_failed` (an
    /// accept(2) error such as EMFILE; nothing was accepted then).
    func connectionRefused(listener: String, reason: String) {
        registry.makeCounter(
            descriptor: descriptor("downstream", "connections_refused", "total", "Downstream connections closed before they were served, or accepts that failed, by reason."),
            labels: [("listener", listener), ("reason", reason)]
        ).increment()
    }

    func connectionOpened(listener: String) { active("connections", listener: listener).increment() }
    func connectionClosed(listener: String) { active("connections", listener: listener).decrement() }
    func streamOpened(listener: String) { active("streams", listener: listener).increment() }
    func streamClosed(listener: String) { active("streams", listener: listener).decrement() }

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
