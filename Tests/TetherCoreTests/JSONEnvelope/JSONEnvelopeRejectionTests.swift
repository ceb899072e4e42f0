@testable import TetherCore
import Testing

@Suite("Malformed JSON is refused at its first bad byte")
struct JSONEnvelopeInvalidJSONTests {
    @Test(arguments: [
        // Empty or cut short.
        ("", 0), ("   ", 3), ("{", 1), (#"{"a""#, 4), (#"{"a":"#, 5), (#"{"a":1"#, 6), (#"{"a":1,"#, 7),
        (#"{"a":"abc"#, 9), (#"{"a":[1,"#, 8), (#"{"a":{"b":"#, 10),
        // Structure.
        (#"{"a":1,}"#, 7), (#"{"a" 1}"#, 5), (#"{"a"::1}"#, 5), ("{a:1}", 1), ("{'a':1}", 1), (#"{"a":1 "b":2}"#, 7),
        (#"{"a":1,,"b":2}"#, 7), ("{,}", 1), (#"{"a":[1,2}"#, 9), (#"{"a":{"b":1]}"#, 11), (#"{"a":[}"#, 6),
        (#"{"a":[1,]}"#, 8), ("{1:2}", 1), (#"{"a":1}}"#, 7), ("{}}", 2),
        // Trailing garbage.
        (#"{"a":1}x"#, 7), (#"{"a":1}{}"#, 7), (#"{"a":1} 1"#, 8), (#"{"a":1}//"#, 7), ("{}\u{0C}", 2), ("\u{0B}{}", 0),
        ("{}\u{0}", 2), ("\u{A0}{}", 0),
        // Literals.
        (#"{"a":tru}"#, 8), (#"{"a":True}"#, 5), (#"{"a":nul}"#, 8), (#"{"a":nulll}"#, 9), (#"{"a":falsey}"#, 10),
        (#"{"a":NaN}"#, 5), (#"{"a":Infinity}"#, 5), (#"{"a":undefined}"#, 5),
        // Numbers.
        (#"{"a":01}"#, 6), (#"{"a":-01}"#, 7), (#"{"a":+1}"#, 5), (#"{"a":.5}"#, 5), (#"{"a":1.}"#, 7), (#"{"a":1.e5}"#, 7),
        (#"{"a":1e}"#, 7), (#"{"a":1e+}"#, 8), (#"{"a":-}"#, 6), (#"{"a":--1}"#, 6), (#"{"a":0x10}"#, 6), (#"{"a":1_000}"#, 6),
        (#"{"a":-.5}"#, 6), (#"{"a":1e5.0}"#, 8),
        // Escapes.
        (#"{"a":"\x"}"#, 7), (#"{"a":"\u12"}"#, 10), (#"{"a":"\u12G4"}"#, 10), (#"{"a":"\U0041"}"#, 7), (#"{"a":"\'"}"#, 7),
        (#"{"a":"\"#, 7),
        // Lone or misordered surrogate escapes.
        (#"{"a":"\uD800"}"#, 12), (#"{"a":"\uD800x"}"#, 12), (#"{"a":"\uD800\u0041"}"#, 12), (#"{"a":"\uD800\uD800"}"#, 12),
        (#"{"a":"\uDC00"}"#, 6), (#"{"a":"\uDE00\uD83D"}"#, 6), (#"{"a":"\uDBFF\n"}"#, 13), (#"{"\uDFFF":1}"#, 2),
        // Control characters must be escaped.
        ("{\"a\":\"a\nb\"}", 7), ("{\"a\":\"a\tb\"}", 7), ("{\"a\":\"\u{1F}\"}", 6), ("{\"a\u{0}\":1}", 3),
    ] as [(String, Int)])
    func malformedText(json: String, offset: Int) {
        #expect(readEnvelope(json) == .failure(.invalidJSON(offset: offset)))
    }

    /// Strings go through UTF-8 validation byte by byte; each case is wrapped
    /// as `{"a":"…"}`, so its bytes start at offset 6.
    @Test(arguments: [
        ([0xFF], 6), ([0x80], 6), ([0xBF], 6),
        ([0xC0, 0xAF], 6), ([0xC1, 0xBF], 6),  // overlong two-byte forms
        ([0xE0, 0x80, 0xAF], 7), ([0xF0, 0x80, 0x80, 0xAF], 7),  // overlong longer forms
        ([0xED, 0xA0, 0x80], 7), ([0xED, 0xBF, 0xBF], 7),  // UTF-16 surrogates encoded in UTF-8
        ([0xF4, 0x90, 0x80, 0x80], 7), ([0xF5, 0x80, 0x80, 0x80], 6), ([0xF8, 0x88, 0x80, 0x80, 0x80], 6),  // beyond U+10FFFF
        ([0xC3], 7), ([0xE2, 0x82], 8), ([0xF0, 0x9F, 0x98], 9), ([0xC3, 0x28], 7), ([0xE2, 0x28, 0xA1], 7),  // cut short
    ] as [([UInt8], Int)])
    func malformedUTF8(bytes: [UInt8], offset: Int) {
        let document = Array(#"{"a":""#.utf8) + bytes + Array(#""}"#.utf8)
        #expect(JSONRPCEnvelopeReader.read(document) == .failure(.invalidJSON(offset: offset)))
    }

    @Test func malformedUTF8InANameOrAtTheEnd() {
        #expect(JSONRPCEnvelopeReader.read(Array(#"{""#.utf8) + [0xFF] + Array(#"":1}"#.utf8)) == .failure(.invalidJSON(offset: 2)))
        #expect(JSONRPCEnvelopeReader.read(Array(#"{"a":""#.utf8) + [0xE2, 0x82]) == .failure(.invalidJSON(offset: 8)))
        #expect(JSONRPCEnvelopeReader.read([0x80]) == .failure(.invalidJSON(offset: 0)))
    }

    @Test func wellFormedUTF8AtTheEdgesOfTheTable() {
        let characters: [[UInt8]] = [
            [0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF], [0xEE, 0x80, 0x80], [0xEF, 0xBF, 0xBF],
            [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF],
        ]
        for character in characters {
            let document = Array(#"{"method":""#.utf8) + character + Array(#""}"#.utf8)
            let expected = String(decoding: character, as: UTF8.self)
            #expect(JSONRPCEnvelopeReader.read(document) == .success(JSONRPCEnvelope(method: .string(expected))))
        }
    }

    @Test func otherEncodingsAreNotDetected() {
        let utf16LittleEndian: [UInt8] = [0x7B, 0x00, 0x7D, 0x00]
        #expect(JSONRPCEnvelopeReader.read(utf16LittleEndian) == .failure(.invalidJSON(offset: 1)))
        let utf16ByteOrderMark: [UInt8] = [0xFE, 0xFF, 0x00, 0x7B, 0x00, 0x7D]
        #expect(JSONRPCEnvelopeReader.read(utf16ByteOrderMark) == .failure(.invalidJSON(offset: 0)))
    }
}

@Suite("Batches and scalars are valid JSON but no message")
struct JSONEnvelopeTopLevelTests {
    @Test(arguments: [
        "[]", " [ ] ", "[1,2,3]", "[[[]]]", "[{}]", #"[{"jsonrpc":"2.0","id":1,"method":"m"},{"jsonrpc":"2.0","method":"n"}]"#,
        #"["a",{"b":[null,true,false,-1.5e-3]}]"#,
    ])
    func batch(json: String) {
        #expect(readEnvelope(json) == .failure(.batch))
    }

    @Test(arguments: [
        ("[", 1), ("[1,", 3), ("[1,]", 3), ("[{]", 2), (#"[{"a":1}"#, 8), ("[]]", 2), ("[] x", 3), ("[01]", 2), (#"["\q"]"#, 3),
    ] as [(String, Int)])
    func brokenBatchIsInvalidJSON(json: String, offset: Int) {
        #expect(readEnvelope(json) == .failure(.invalidJSON(offset: offset)))
    }

    @Test(arguments: ["1", "-0.5e3", #""x""#, #""""#, "true", "false", "null", " 7 ", #""\u00e9""#, "0"])
    func scalar(json: String) {
        #expect(readEnvelope(json) == .failure(.notAnObject))
    }

    @Test(arguments: [("1 2", 2), (#""x"#, 2), ("tru", 3), ("nul", 3), ("1.", 2), ("-", 1), ("\"\u{1}\"", 1)] as [(String, Int)])
    func brokenScalarIsInvalidJSON(json: String, offset: Int) {
        #expect(readEnvelope(json) == .failure(.invalidJSON(offset: offset)))
    }
}

@Suite("Nesting is limited without recursion")
struct JSONEnvelopeDepthTests {
    private static let limit = JSONRPCEnvelopeReader.maximumDepth

    private func nestedArrays(_ depth: Int, prefix: String = "", suffix: String = "") -> String {
        prefix + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + suffix
    }

    @Test func arraysUpToTheLimit() {
        #expect(readEnvelope(nestedArrays(Self.limit)) == .failure(.batch))
        #expect(readEnvelope(nestedArrays(Self.limit + 1)) == .failure(.tooDeep(offset: Self.limit)))
    }

    @Test func objectsUpToTheLimit() {
        func nestedObjects(_ depth: Int) -> String {
            String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth)
        }
        #expect(readEnvelope(nestedObjects(Self.limit)) == .success(JSONRPCEnvelope()))
        #expect(readEnvelope(nestedObjects(Self.limit + 1)) == .failure(.tooDeep(offset: 5 * Self.limit)))
    }

    /// The top-level object and `params` count as levels like any other.
    @Test func depthCountsTheEnvelopeAndParams() {
        let prefix = #"{"params":{"x":"#
        #expect(readEnvelope(nestedArrays(Self.limit - 2, prefix: prefix, suffix: "}}")) == .success(JSONRPCEnvelope(params: .other(.object))))
        #expect(readEnvelope(nestedArrays(Self.limit - 1, prefix: prefix, suffix: "}}")) == .failure(.tooDeep(offset: prefix.utf8.count + Self.limit - 2)))
        #expect(readEnvelope(nestedArrays(Self.limit - 1, prefix: #"{"id":"#, suffix: "}")) == .success(JSONRPCEnvelope(id: .other(.array))))
        #expect(readEnvelope(nestedArrays(Self.limit, prefix: #"{"id":"#, suffix: "}")) == .failure(.tooDeep(offset: 6 + Self.limit - 1)))
    }

    @Test func aMebibyteOfOpeningBracketsStopsAtTheLimit() {
        let brackets = [UInt8](repeating: UInt8(ascii: "["), count: 1 << 20)
        #expect(JSONRPCEnvelopeReader.read(brackets) == .failure(.tooDeep(offset: Self.limit)))
        let objects = Array(String(repeating: #"{"a":["#, count: (1 << 20) / 6).utf8)
        #expect(JSONRPCEnvelopeReader.read(objects) == .failure(.tooDeep(offset: 6 * (Self.limit / 2))))
    }

    @Test func invalidJSONBeforeTheLimitIsReportedAsSuch() {
        #expect(readEnvelope(String(repeating: "[", count: 100) + "x") == .failure(.invalidJSON(offset: 100)))
    }
}
