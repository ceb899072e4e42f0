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
    /// Resources the control plane itself publishes in every snapshot (the
    /// trust bundle), versioned like stored ones.
    public let published: [Resource]

    public init(store: any ConfigStore, secrets: SecretBox, published: [Resource] = []) {
        self.store = store
        self.secrets = secrets
        self.published = published
    }

    public func build() async throws(ControlPlaneError) -> MeshSnapshot {
        try build(from: await store.currentState())
    }

    public func build(from state: StoreState) throws(ControlPlaneError) -> MeshSnapshot {
        var resources: [ResourceID: VersionedResource] = [:]
        func version(_ resource: Resource) -> String {
            SHA256.hash(data: ConfigEncoding.canonicalJSON(resource)).prefix(8).map { String(format: "%02x", $0) }.joined()
        }
        for resource in published {
            resources[resource.id] = VersionedResource(resource: resource, version: version(resource))
        }
        for (id, stored) in state.resources {
            let version = version(stored)
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
