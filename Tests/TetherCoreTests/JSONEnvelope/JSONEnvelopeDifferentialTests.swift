@testable import TetherCore
import Foundation
import Testing

/// The reader against Foundation's `JSONSerialization`, which the proxy used
/// before: on thousands of generated documents, valid and broken, both must
/// accept the same ones and read the same members from the accepted objects.
///
/// Known disagreements on Linux (swift-corelibs-foundation, Swift 6.3), where
/// Foundation is the one straying from RFC 8259; each is excused only when the
/// document shows that very cause:
/// - Foundation accepts a trailing comma before `]` or `}` (`[1,]`,
///   `{"a":1,}`). Excused when the reader's error points at such a bracket;
///   the document is then compared again without that comma.
/// - Foundation refuses numbers beyond `Double`'s range (`1e400`), which RFC
///   8259 allows. Excused when the document holds such a number.
/// Foundation also guesses UTF-16 and UTF-32 from NUL bytes at the start,
/// where the reader takes UTF-8 only (RFC 8259 §8.1); random edits never make
/// a document valid in those encodings, so that disagreement has a test of its
/// own rather than an excuse here. Both apply the same depth limit (512) and
/// let the last duplicate key win.
@Suite("Agreement with JSONSerialization")
struct JSONEnvelopeDifferentialTests {
    @Test func generatedDocuments() {
        var generator = DocumentGenerator(seed: 0x7E7E_E4)
        var tally = Tally()
        for _ in 0..<3000 {
            let document = generator.document()
            compare(document, tally: &tally)
            for _ in 0..<2 {
                compare(generator.mutated(document), tally: &tally)
            }
        }
        print("differential:", tally)
        // The generator must exercise both sides of every decision.
        #expect(tally.messages > 1000)
        #expect(tally.batches > 100)
        #expect(tally.scalars > 100)
        #expect(tally.rejected > 1000)
        #expect(tally.trailingCommas > 0)
    }

    @Test func duplicateKeysLastOneWinsInFoundationToo() throws {
        let body = #"{"method":"a","params":{"name":"x"},"method":"b","params":{"uri":"u"}}"#
        let object = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        #expect(object["method"] as? String == "b")
        #expect((object["params"] as? [String: Any])?["name"] == nil)
        #expect(readEnvelope(body) == .success(JSONRPCEnvelope(method: .string("b"), params: .other(.object), paramsURI: .string("u"))))
    }

    @Test(arguments: ["[1,]", #"{"a":1,}"#, "[[],]", "{\"a\":{},\n}"])
    func foundationAcceptsTrailingCommas(json: String) {
        #expect((try? JSONSerialization.jsonObject(with: Data(json.utf8))) != nil)
        #expect(!isAccepted(readEnvelope(json)))
    }

    @Test func foundationRefusesNumbersBeyondDouble() {
        let json = #"{"id":1e400}"#
        #expect((try? JSONSerialization.jsonObject(with: Data(json.utf8))) == nil)
        #expect(readEnvelope(json) == .success(JSONRPCEnvelope(id: .other(.number))))
    }

    @Test func foundationGuessesOtherEncodings() {
        let utf16 = Array(#"{"id":1}"#.utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        #expect((try? JSONSerialization.jsonObject(with: Data(utf16))) != nil)
        #expect(JSONRPCEnvelopeReader.read(utf16) == .failure(.invalidJSON(offset: 1)))
    }

    @Test func sameDepthLimitAsFoundation() {
        func nested(_ depth: Int) -> [UInt8] {
            Array((String(repeating: "[", count: depth) + String(repeating: "]", count: depth)).utf8)
        }
        let limit = JSONRPCEnvelopeReader.maximumDepth
        #expect((try? JSONSerialization.jsonObject(with: Data(nested(limit)))) != nil)
        #expect((try? JSONSerialization.jsonObject(with: Data(nested(limit + 1)))) == nil)
        #expect(JSONRPCEnvelopeReader.read(nested(limit)) == .failure(.batch))
        #expect(JSONRPCEnvelopeReader.read(nested(limit + 1)) == .failure(.tooDeep(offset: limit)))
    }

    private func compare(_ document: [UInt8], tally: inout Tally) {
        let ours = JSONRPCEnvelopeReader.read(document)
        let theirs = try? JSONSerialization.jsonObject(with: Data(document), options: [.fragmentsAllowed])
        switch (ours, theirs) {
        case (.failure(.invalidJSON(let offset)), .some) where Self.isTrailingComma(before: offset, in: document):
            tally.trailingCommas += 1
            compare(Self.removingComma(before: offset, in: document), tally: &tally)
        case (_, nil) where isAccepted(ours) && Self.hasNumberBeyondDouble(document):
            tally.hugeNumbers += 1
        case (.failure(.invalidJSON), nil), (.failure(.tooDeep), nil):
            tally.rejected += 1
        case (.failure(.batch), let array?) where array is [Any]:
            tally.batches += 1
        case (.failure(.notAnObject), let scalar?) where !(scalar is [Any]) && !(scalar is [String: Any]):
            tally.scalars += 1
        case (.success(let envelope), let object as [String: Any]):
            tally.messages += 1
            expectAgreement(envelope, object, document)
        default:
            Issue.record("reader: \(ours), JSONSerialization: \(theirs.map { "\($0)" } ?? "refused") for \(Self.describe(document))")
        }
    }

    private func expectAgreement(_ envelope: JSONRPCEnvelope, _ object: [String: Any], _ document: [UInt8]) {
        let context = Comment(rawValue: Self.describe(document))
        #expect(Self.agree(envelope.jsonrpc, object["jsonrpc"]), context)
        #expect(Self.agree(envelope.id, object["id"]), context)
        #expect(Self.agree(envelope.method, object["method"]), context)
        #expect(envelope.hasResult == (object["result"] != nil), context)
        #expect(envelope.hasError == (object["error"] != nil), context)
        #expect(Self.agree(envelope.params, object["params"]), context)
        let params = object["params"] as? [String: Any]
        #expect(Self.agree(envelope.paramsName, params?["name"]), context)
        #expect(Self.agree(envelope.paramsURI, params?["uri"]), context)
    }

    /// Whether the reader's summary fits the value Foundation built.
    private static func agree(_ value: JSONRPCEnvelope.Value?, _ object: Any?) -> Bool {
        guard let object else { return value == nil }
        let number = object as? NSNumber
        // On Linux `true` and `false` come back as NSNumbers of type char.
        let isBool = number.map { String(cString: $0.objCType) == "c" } ?? false
        switch value {
        case nil: return false
        case .string(let string): return object as? String == string
        case .integer(let integer): return !isBool && number.map { agree(integer, $0) } ?? false
        case .other(.number): return !isBool && number.map { agree(nil, $0) } ?? false
        case .other(.bool): return isBool
        case .other(.null): return object is NSNull
        case .other(.string): return false  // strings are always kept
        case .other(.array): return object is [Any]
        case .other(.object): return object is [String: Any]
        }
    }

    /// Whether `integer` (`nil` for "not an integer that fits Int64") is what
    /// Foundation's number holds.
    ///
    /// Foundation on Linux keeps plain integers as Int64 or UInt64, other
    /// numbers as Double, but some (19-digit negative integers, some that need
    /// more precision) as NSDecimalNumber, whose `doubleValue` is not correctly
    /// rounded; its `description` is exact, though. Only a Double is known
    /// just approximately: then an integer must at least round to it, and a
    /// non-integer can't be checked.
    private static func agree(_ integer: Int64?, _ number: NSNumber) -> Bool {
        if number is NSDecimalNumber {
            return Int64(number.description) == integer
        }
        switch String(cString: number.objCType) {
        case "q", "l", "i", "s": return number.int64Value == integer
        case "Q", "L", "I", "S": return Int64(exactly: number.uint64Value) == integer
        default: return integer.map { number.doubleValue == Double($0) } ?? true
        }
    }

    /// Whether the byte at `offset` is a `]` or `}` right after a `,` (and whitespace).
    private static func isTrailingComma(before offset: Int, in document: [UInt8]) -> Bool {
        guard offset < document.count, document[offset] == UInt8(ascii: "]") || document[offset] == UInt8(ascii: "}") else { return false }
        return document[..<offset].last { ![0x20, 0x09, 0x0A, 0x0D].contains($0) } == UInt8(ascii: ",")
    }

    private static func removingComma(before offset: Int, in document: [UInt8]) -> [UInt8] {
        var document = document
        document.remove(at: document[..<offset].lastIndex(of: UInt8(ascii: ","))!)
        return document
    }

    /// Whether a number outside strings overflows `Double`.
    private static func hasNumberBeyondDouble(_ document: [UInt8]) -> Bool {
        var inString = false
        var escaped = false
        var number = ""
        for byte in document + [0x20] {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            } else if "0123456789+-.eE".utf8.contains(byte) {
                number.append(Character(Unicode.Scalar(byte)))
            } else {
                if let value = Double(number), value.isInfinite { return true }
                number = ""
                inString = byte == UInt8(ascii: "\"")
            }
        }
        return false
    }

    private static func describe(_ document: [UInt8]) -> String {
        String(decoding: document.prefix(300), as: UTF8.self).debugDescription + " \(document.prefix(300).map { String($0, radix: 16) })"
    }
}

private struct Tally: CustomStringConvertible {
    var messages = 0, batches = 0, scalars = 0, rejected = 0
    var trailingCommas = 0, hugeNumbers = 0

    var description: String {
        "\(messages) messages, \(batches) batches, \(scalars) scalars, \(rejected) refused by both; "
            + "excused: \(trailingCommas) trailing commas, \(hugeNumbers) numbers beyond Double"
    }
}
