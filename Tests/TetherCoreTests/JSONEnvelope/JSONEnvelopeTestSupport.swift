@testable import TetherCore

typealias EnvelopeFailure = JSONRPCEnvelopeReader.Failure

/// Reads UTF-8 text.
func readEnvelope(_ text: String) -> Result<JSONRPCEnvelope, EnvelopeFailure> {
    JSONRPCEnvelopeReader.read(Array(text.utf8))
}

/// Whether the reader took the document for valid JSON, whatever its top level.
func isAccepted(_ result: Result<JSONRPCEnvelope, EnvelopeFailure>) -> Bool {
    switch result {
    case .success, .failure(.batch), .failure(.notAnObject): true
    case .failure(.invalidJSON), .failure(.tooDeep): false
    }
}

/// A deterministic generator (SplitMix64), so every run sees the same documents
/// and a failure can be reproduced from its seed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
