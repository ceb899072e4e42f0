import Crypto
import Foundation
import TetherCore

/// Turns a stored state into the mesh snapshot proxies are served: credential
/// values opened, and every resource versioned by the hash of its stored
/// document — which does not change unless the resource does (a credential
/// re-applied with the same value keeps its sealed box and so its version).
public struct SnapshotBuilder: Sendable {
    public let store: any ConfigStore
    public let secrets: SecretBox

    public init(store: any ConfigStore, secrets: SecretBox) {
        self.store = store
        self.secrets = secrets
    }

    public func build() throws(ControlPlaneError) -> MeshSnapshot {
        try build(from: store.currentState())
    }

    public func build(from state: StoreState) throws(ControlPlaneError) -> MeshSnapshot {
        var resources: [ResourceID: VersionedResource] = [:]
        for (id, stored) in state.resources {
            let digest = SHA256.hash(data: ConfigEncoding.canonicalJSON(stored))
            let version = digest.prefix(8).map { String(format: "%02x", $0) }.joined()
            var resource = stored
            if case .credential(var credential) = stored.spec, case .sealed(let box)? = credential.value {
                credential.value = .plaintext(try secrets.open(box, for: id))
                resource.spec = .credential(credential)
            }
            resources[id] = VersionedResource(resource: resource, version: version)
        }
        return MeshSnapshot(revision: state.revision, resources: resources)
    }
}
