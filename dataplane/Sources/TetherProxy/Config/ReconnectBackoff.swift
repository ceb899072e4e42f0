/// When to try the xDS stream again: capped exponential backoff with full
/// jitter, except right after losing a stream that worked. Then the
/// control plane is most likely restarting, and the proxies should be back
/// within a second of it — so for `quickWindow` the ceiling stays at
/// `quickCeiling`. Past that window (a control plane that stays away) the
/// ceiling grows to `maximum`, so thousands of proxies do not hammer it.
struct ReconnectBackoff {
    var initial: Duration = .milliseconds(200)
    var maximum: Duration = .seconds(15)
    var quickCeiling: Duration = .seconds(1)
    var quickWindow: Duration = .seconds(60)

    private var attempt = 0
    private var lostHealthyStream: ContinuousClock.Instant?

    /// A stream ended; `healthy` if the control plane had answered on it.
    mutating func streamEnded(healthy: Bool, at now: ContinuousClock.Instant) {
        if healthy {
            attempt = 0
            lostHealthyStream = now
        }
        attempt += 1
    }

    /// The ceiling for the next wait; the wait itself is uniform in
    /// [0, ceiling] (full jitter).
    func ceiling(at now: ContinuousClock.Instant) -> Duration {
        let exponential = min(maximum, initial * (1 << min(attempt, 16)))
        if let lost = lostHealthyStream, now - lost < quickWindow {
            return min(exponential, quickCeiling)
        }
        return exponential
    }

    func delay(at now: ContinuousClock.Instant) -> Duration {
        let ceiling = ceiling(at: now)
        return .milliseconds(Int64.random(in: 0...max(1, ceiling.milliseconds)))
    }
}
