import TetherCore

/// The control plane's one publish point for mesh snapshots: the snapshot
/// updater writes, each xDS stream subscribes.
public typealias SnapshotPublisher = LatestValuePublisher<MeshSnapshot>
