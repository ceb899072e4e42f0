/// The kinds of the containers a value is nested in, one bit per level
/// (set for an object, clear for an array).
///
/// Knowing the kind is what lets the scanner check that `]` closes an array and
/// that an object's `,` is followed by a name, without recursing. The bits live
/// inline in 64 bytes, so even the deepest accepted document costs no heap
/// allocation and no stack frames per level.
struct ContainerStack {
    /// Levels the inline storage holds: eight 64-bit words.
    static let capacity = 8 * 64

    private var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    /// Whether the innermost open container is an object. Not for an empty stack.
    var innermostIsObject: Bool {
        let (word, bit) = (count - 1).quotientAndRemainder(dividingBy: 64)
        return withUnsafeBytes(of: words) { $0.load(fromByteOffset: word * 8, as: UInt64.self) } & (1 << bit) != 0
    }

    /// Callers check the depth limit first; exceeding `capacity` is a bug.
    mutating func push(isObject: Bool) {
        precondition(count < Self.capacity, "nesting beyond ContainerStack.capacity")
        let (word, bit) = count.quotientAndRemainder(dividingBy: 64)
        withUnsafeMutableBytes(of: &words) { storage in
            var bits = storage.load(fromByteOffset: word * 8, as: UInt64.self)
            bits = isObject ? bits | (1 << bit) : bits & ~(1 << bit)
            storage.storeBytes(of: bits, toByteOffset: word * 8, as: UInt64.self)
        }
        count += 1
    }

    mutating func pop() {
        count -= 1
    }
}
