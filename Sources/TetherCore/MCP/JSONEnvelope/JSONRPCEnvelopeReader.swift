/// Reads the `JSONRPCEnvelope` of a request body without building it.
///
/// The whole document is validated as strict JSON (RFC 8259) in one pass, but
/// no arrays or objects are materialized: memory is proportional to the
/// nesting depth (a fixed 64-byte stack), and `String`s are made only for the
/// few values that are kept. A multi-megabyte batch is therefore refused for
/// the cost of scanning it, not of building a tree of it.
public enum JSONRPCEnvelopeReader {
    /// Why a document yields no envelope. The document is read in one pass,
    /// so the first problem met is the one reported.
    public enum Failure: Error, Sendable, Equatable {
        /// Not valid JSON; `offset` is that of the first offending byte, or
        /// the input's length when it ends too early.
        case invalidJSON(offset: Int)
        /// Valid JSON whose top level is an array.
        case batch
        /// Valid JSON whose top level is a string, number, boolean or null.
        case notAnObject
        /// Arrays and objects nest deeper than `maximumDepth`; `offset` is that
        /// of the bracket that goes too deep.
        case tooDeep(offset: Int)
    }

    /// The deepest nesting accepted: the limit Foundation's `JSONSerialization`
    /// applies, so the two refuse the same documents. `ContainerStack` holds
    /// exactly this many levels.
    public static let maximumDepth = 512

    public static func read(_ bytes: UnsafeRawBufferPointer) -> Result<JSONRPCEnvelope, Failure> {
        var scanner = JSONScanner(bytes)
        do {
            return .success(try scanner.readDocument())
        } catch {
            return .failure(error)
        }
    }

    public static func read(_ bytes: [UInt8]) -> Result<JSONRPCEnvelope, Failure> {
        bytes.withUnsafeBytes { read($0) }
    }
}
