import Foundation

/// A JWS in compact serialization, split and decoded — and not verified:
/// the validators check the signature, the proxy reads the `exp` of tokens
/// it was just handed.
public struct CompactJWS {
    public let header: [String: Any]
    public let payload: [String: Any]
    /// The payload's JSON bytes, as signed.
    public let payloadData: Data

    public init?(_ token: String) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3,
            let headerData = TrustBundle.base64URLDecode(String(parts[0])), let payloadData = TrustBundle.base64URLDecode(String(parts[1])),
            let header = (try? JSONSerialization.jsonObject(with: headerData)) as? [String: Any],
            let payload = (try? JSONSerialization.jsonObject(with: payloadData)) as? [String: Any]
        else { return nil }
        self.header = header
        self.payload = payload
        self.payloadData = payloadData
    }
}
