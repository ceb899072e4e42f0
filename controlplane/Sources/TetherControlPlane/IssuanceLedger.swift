import Foundation
import Synchronization
import TetherCore
import X509

/// The record of every SVID the control plane issues, and the rule for
/// issuing while the store cannot be written (a database outage).
///
/// A join always needs the store (its token must be consumed exactly once
/// across replicas), so it fails during an outage. A renewal — a workload
/// that already holds a valid SVID asking for the same identity — goes on
/// from this replica's memory for `offlineRenewal` after the replica last
/// saw the revocation list, so an outage shorter than that never expires a
/// single SVID; records are kept here and written when the store is back.
/// Past that window renewals fail closed, because a revocation made on
/// another replica might not have been seen.
public final class IssuanceLedger: Sendable {
    public static let defaultOfflineRenewal: TimeInterval = 1800
    /// Records kept for a store that is away; beyond this, issuing fails.
    static let maximumPending = 100_000

    let offlineRenewal: TimeInterval
    private let state: Mutex<(pending: [IssuedCertificate], revocationsCheckedAt: Date)>

    init(offlineRenewal: TimeInterval) {
        self.offlineRenewal = offlineRenewal
        state = Mutex(([], Date()))
    }

    func revocationsChecked(at date: Date) {
        state.withLock { $0.revocationsCheckedAt = date }
    }

    /// Records `svid`, with any records still pending. When the store fails
    /// and `offline` is allowed, keeps them for later instead.
    func record(_ svid: Certificate, for id: SPIFFEID, at now: Date, in store: any IdentityStore, offline: Bool) async throws(ControlPlaneError) {
        let record = IssuedCertificate(serial: svid.serialNumber.openSSLText, spiffeID: id.description, issuedAt: now, notAfter: svid.notValidAfter)
        let batch = state.withLock { state in
            defer { state.pending.removeAll() }
            return state.pending + [record]
        }
        do {
            try await store.recordIssued(batch)
        } catch {
            let kept: Bool = state.withLock { state in
                let fresh = now.timeIntervalSince(state.revocationsCheckedAt) < offlineRenewal
                guard offline, fresh, state.pending.count + batch.count <= Self.maximumPending else {
                    // The new record is not kept: its SVID is not handed out.
                    state.pending.insert(contentsOf: batch.dropLast(), at: 0)
                    return false
                }
                state.pending.insert(contentsOf: batch, at: 0)
                return true
            }
            if !kept {
                throw ControlPlaneError(.unavailable, "the store is unavailable (\(error.message)) and this replica cannot vouch for the revocation list any more; retry when the database is back")
            }
        }
    }

    func flush(to store: any IdentityStore) async throws(ControlPlaneError) {
        let batch = state.withLock { state in
            defer { state.pending.removeAll() }
            return state.pending
        }
        guard !batch.isEmpty else { return }
        do {
            try await store.recordIssued(batch)
        } catch {
            state.withLock { $0.pending.insert(contentsOf: batch, at: 0) }
            throw error
        }
    }

    var pendingCount: Int { state.withLock { $0.pending.count } }
}
