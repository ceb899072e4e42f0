@testable import TetherCore
import Testing

@Suite("What the reader extracts from a message")
struct JSONEnvelopeExtractionTests {
    @Test func request() {
        let body = #"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"x":[1,2,{"y":null}],"name":"inner"}}}"#
        #expect(readEnvelope(body) == .success(JSONRPCEnvelope(
            jsonrpc: .string("2.0"), id: .integer(7), method: .string("tools/call"),
            params: .other(.object), paramsName: .string("echo")
        )))
    }

    @Test func notificationHasNoID() {
        #expect(readEnvelope(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#) == .success(JSONRPCEnvelope(
            jsonrpc: .string("2.0"), method: .string("notifications/initialized")
        )))
    }

    @Test func responseWithResult() {
        #expect(readEnvelope(#"{"jsonrpc":"2.0","id":"a-1","result":{"tools":[{"name":"x"}]}}"#) == .success(JSONRPCEnvelope(
            jsonrpc: .string("2.0"), id: .string("a-1"), hasResult: true
        )))
    }

    @Test func responseWithError() {
        #expect(readEnvelope(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"no"}}"#) == .success(JSONRPCEnvelope(
            jsonrpc: .string("2.0"), id: .other(.null), hasError: true
        )))
    }

    @Test func resultAndErrorCountWhateverTheirValue() {
        #expect(readEnvelope(#"{"result":null,"error":false}"#) == .success(JSONRPCEnvelope(hasResult: true, hasError: true)))
    }

    @Test func paramsURI() {
        #expect(readEnvelope(#"{"method":"resources/read","params":{"uri":"file:///a%20b","name":7}}"#) == .success(JSONRPCEnvelope(
            method: .string("resources/read"), params: .other(.object), paramsName: .integer(7), paramsURI: .string("file:///a%20b")
        )))
    }

    @Test func paramsThatIsNoObjectHasNoNameOrURI() {
        #expect(readEnvelope(#"{"params":[{"name":"x"}]}"#) == .success(JSONRPCEnvelope(params: .other(.array))))
        #expect(readEnvelope(#"{"params":"name"}"#) == .success(JSONRPCEnvelope(params: .string("name"))))
        #expect(readEnvelope(#"{"params":null}"#) == .success(JSONRPCEnvelope(params: .other(.null))))
        #expect(readEnvelope(#"{"params":{}}"#) == .success(JSONRPCEnvelope(params: .other(.object))))
    }

    @Test func nameAndURIAreReadOnlyDirectlyInParams() {
        let body = #"{"name":"top","uri":"top","params":{"arguments":{"name":"deep","uri":"deep"}},"other":{"method":"x","params":{"name":"y"}}}"#
        #expect(readEnvelope(body) == .success(JSONRPCEnvelope(params: .other(.object))))
    }

    @Test func emptyObject() {
        #expect(readEnvelope("{}") == .success(JSONRPCEnvelope()))
        #expect(readEnvelope(" \t\r\n{ \n } \r\n") == .success(JSONRPCEnvelope()))
    }

    @Test func whitespaceBetweenEveryToken() {
        let body = " {\n\t\"id\" :\r 1 ,\"method\"\n:\"m\" , \"params\" : { \"name\" : \"n\" } } \n"
        #expect(readEnvelope(body) == .success(JSONRPCEnvelope(id: .integer(1), method: .string("m"), params: .other(.object), paramsName: .string("n"))))
    }

    @Test func byteOrderMarkIsSkipped() {
        let body: [UInt8] = [0xEF, 0xBB, 0xBF] + Array(#"{"id":1}"#.utf8)
        #expect(JSONRPCEnvelopeReader.read(body) == .success(JSONRPCEnvelope(id: .integer(1))))
    }

    @Test func rawBufferAndArrayReadTheSame() {
        let body = Array(#"{"id":"x","method":"m"}"#.utf8)
        let fromBuffer = body.withUnsafeBytes { JSONRPCEnvelopeReader.read($0) }
        #expect(fromBuffer == JSONRPCEnvelopeReader.read(body))
    }
}

@Suite("Names and strings are compared and kept unescaped")
struct JSONEnvelopeEscapeTests {
    @Test func escapedNamesAreRecognized() {
        let body = #"{"jsonr\u0070c":"2.0","\u0069\u0064":1,"met\u0068od":"m","par\u0061ms":{"n\u0061me":"t","\u0075ri":"u"},"r\u0065sult":1,"err\u006Fr":2}"#
        #expect(readEnvelope(body) == .success(JSONRPCEnvelope(
            jsonrpc: .string("2.0"), id: .integer(1), method: .string("m"), hasResult: true, hasError: true,
            params: .other(.object), paramsName: .string("t"), paramsURI: .string("u")
        )))
    }

    @Test(arguments: [
        #"{"methods":"x"}"#, #"{"Method":"x"}"#, #"{"metho":"x"}"#, #"{"method ":"x"}"#,
        #"{"method\u0000":"x"}"#, #"{"\u0000method":"x"}"#, #"{"jsonrpcx":"x"}"#, #"{"i":1}"#, #"{"":1}"#,
        #"{"m\u00e9thod":"x"}"#, #"{"me\u0074hodology":"x"}"#,
    ])
    func namesThatOnlyLookAlikeAreIgnored(body: String) {
        #expect(readEnvelope(body) == .success(JSONRPCEnvelope()))
    }

    @Test(arguments: [
        (#""tools\/call""#, "tools/call"),
        (#""a\"b\\c""#, "a\"b\\c"),
        (#""\b\f\n\r\t""#, "\u{08}\u{0C}\n\r\t"),
        (#""\u00e9\u00C9""#, "éÉ"),
        (#""\u20AC""#, "€"),
        (#""\uD83D\uDE00!""#, "😀!"),
        (#""\u0000""#, "\u{0}"),
        (#""héllo 😀 \u0041""#, "héllo 😀 A"),
        (#""""#, ""),
        ("\"\u{7F}\"", "\u{7F}"),
    ])
    func valuesAreUnescaped(json: String, expected: String) {
        #expect(readEnvelope(#"{"method":\#(json)}"#) == .success(JSONRPCEnvelope(method: .string(expected))))
    }
}

@Suite("When a member occurs twice the last one wins")
struct JSONEnvelopeDuplicateMemberTests {
    @Test func topLevelMembers() {
        let body = #"{"id":1,"method":"a","jsonrpc":"1.0","id":"two","method":"b","jsonrpc":"2.0"}"#
        #expect(readEnvelope(body) == .success(JSONRPCEnvelope(jsonrpc: .string("2.0"), id: .string("two"), method: .string("b"))))
    }

    @Test func escapedDuplicateReplacesPlainOne() {
        #expect(readEnvelope(#"{"method":"a","met\u0068od":"b"}"#) == .success(JSONRPCEnvelope(method: .string("b"))))
        #expect(readEnvelope(#"{"met\u0068od":"a","method":{}}"#) == .success(JSONRPCEnvelope(method: .other(.object))))
    }

    @Test func membersInsideParams() {
        let body = #"{"params":{"name":"first","uri":"u1","name":"second","uri":null}}"#
        #expect(readEnvelope(body) == .success(JSONRPCEnvelope(params: .other(.object), paramsName: .string("second"), paramsURI: .other(.null))))
    }

    @Test func laterParamsObjectReplacesEarlierOneWhole() {
        let body = #"{"params":{"name":"first","uri":"u"},"params":{"arguments":{}}}"#
        #expect(readEnvelope(body) == .success(JSONRPCEnvelope(params: .other(.object))))
    }

    @Test func laterParamsThatIsNoObjectDropsNameAndURI() {
        #expect(readEnvelope(#"{"params":{"name":"first","uri":"u"},"params":[1]}"#) == .success(JSONRPCEnvelope(params: .other(.array))))
        #expect(readEnvelope(#"{"params":{"name":"first"},"params":"x"}"#) == .success(JSONRPCEnvelope(params: .string("x"))))
        #expect(readEnvelope(#"{"params":{"name":"first"},"params":3}"#) == .success(JSONRPCEnvelope(params: .integer(3))))
    }

    @Test func laterParamsObjectAfterNonObject() {
        #expect(readEnvelope(#"{"params":[],"params":{"name":"n"}}"#) == .success(JSONRPCEnvelope(params: .other(.object), paramsName: .string("n"))))
    }

    @Test func repeatedResultAndError() {
        #expect(readEnvelope(#"{"result":1,"result":2,"error":3}"#) == .success(JSONRPCEnvelope(hasResult: true, hasError: true)))
    }
}

@Suite("Which values are integers")
struct JSONEnvelopeIntegerTests {
    @Test(arguments: [
        ("1", 1), ("0", 0), ("-3", -3), ("-0", 0), ("-0.0", 0), ("1.0", 1), ("1e2", 100), ("1E+2", 100),
        ("100e-2", 1), ("0.1e1", 1), ("1.50e1", 15), ("0e0", 0), ("0.000", 0), ("0e999999999999999999999", 0),
        ("9007199254740993", 9_007_199_254_740_993),
        ("9223372036854775807", .max), ("-9223372036854775808", .min),
        ("9.223372036854775807e18", .max), ("92233720368547758070e-1", .max), ("-922337203685477580.8e1", .min),
        ("1e18", 1_000_000_000_000_000_000), ("100000000000000000000000e-5", 1_000_000_000_000_000_000),
        ("1000000000000000000000000000000000000000e-38", 10),
        ("0.00000000000000000000000000000000000000001e41", 1),
    ] as [(String, Int64)])
    func integral(json: String, expected: Int64) {
        #expect(readEnvelope(#"{"id":\#(json)}"#) == .success(JSONRPCEnvelope(id: .integer(expected))))
    }

    @Test(arguments: [
        "1.5", "-0.5", "0.1", "1e-1", "1e-400", "1.0000000000000000000000001",
        "9223372036854775808", "-9223372036854775809", "18446744073709551616", "1e19", "-1e19",
        "12345678901234567890123e-4", "1e999999999999999999", "123456789012345678901234567890",
        "9.2233720368547758075e18",
    ])
    func notIntegralOrOutOfRange(json: String) {
        #expect(readEnvelope(#"{"id":\#(json)}"#) == .success(JSONRPCEnvelope(id: .other(.number))))
    }

    @Test(arguments: [
        (#""abc""#, JSONRPCEnvelope.Value.string("abc")), (#""1""#, .string("1")),
        ("null", .other(.null)), ("true", .other(.bool)), ("false", .other(.bool)),
        ("[]", .other(.array)), ("[1,[2]]", .other(.array)), ("{}", .other(.object)), (#"{"a":{"b":[]}}"#, .other(.object)),
    ])
    func otherIDs(json: String, expected: JSONRPCEnvelope.Value) {
        #expect(readEnvelope(#"{"id":\#(json)}"#) == .success(JSONRPCEnvelope(id: expected)))
    }
}
