import TetherXDS

/// Where `tether-control proxies` reads every proxy's sync state: this
/// process's own streams, or — with replicas — every replica's, as each
/// publishes them to the shared store.
public protocol ProxyDirectory: Sendable {
    func all() async throws(ControlPlaneError) -> [ProxyStatus]
}

extension ProxyRegistry: ProxyDirectory {
    public func all() async throws(ControlPlaneError) -> [ProxyStatus] {
        all
    }
}
