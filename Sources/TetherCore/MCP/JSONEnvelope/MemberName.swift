/// The member names the envelope reader acts on; each raw value is the name as
/// it appears in JSON.
enum MemberName: String, CaseIterable {
    case jsonrpc, id, method, result, error, params, name, uri

    /// The member a name stands for, or `nil` for a name of no interest.
    init?(_ name: PackedName) {
        guard let match = Self.packedNames.first(where: { $0.name == name }) else { return nil }
        self = match.member
    }

    /// Each member with its packed raw value, built once.
    private static let packedNames = allCases.map { (name: PackedName($0.rawValue.utf8), member: $0) }
}

/// A member name packed with its length into one integer, so the reader can
/// compare names without allocating a `String` for each.
///
/// Only the first `capacity` bytes are kept, which is enough for every name in
/// `MemberName`: a longer name keeps its true length and so never equals one.
struct PackedName: Equatable {
    static let capacity = 7

    private var bits: UInt64 = 0
    private var length = 0

    init() {}

    init(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            append(byte)
        }
    }

    /// Appends the next byte of the unescaped name.
    mutating func append(_ byte: UInt8) {
        if length < Self.capacity {
            bits |= UInt64(byte) << (8 * length)
        }
        length += 1
    }
}
