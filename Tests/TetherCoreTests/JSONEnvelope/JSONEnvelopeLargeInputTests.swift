@testable import TetherCore
import Testing

/// Multi-megabyte bodies: the reason the reader exists. The timings are only
/// printed (they depend on the machine and on `-c release`), never asserted.
@Suite("Large bodies", .serialized)
struct JSONEnvelopeLargeInputTests {
    /// 40,000 small requests in one array, a little over 4 MiB.
    private static let batch: [UInt8] = {
        let requests = (0..<40_000).map { index in
            #"{"jsonrpc":"2.0","id":\#(index),"method":"tools/call","params":{"name":"echo","arguments":{"text":"payload \#(index)"}}}"#
        }
        return Array(("[" + requests.joined(separator: ",") + "]").utf8)
    }()

    /// One request whose arguments hold a little over 4 MiB of varied values.
    private static let object: [UInt8] = {
        let values = (0..<45_000).map { index in
            #"{"k\#(index)":[\#(index),-\#(index).5e-3,true,null,"caf\u00e9 \#(index) é😀",{"n":"\#(String(repeating: "y", count: 20))"}]}"#
        }
        return Array((#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"big","arguments":["# + values.joined(separator: ",") + "]}}").utf8)
    }()

    @Test func fourMebibyteBatchIsRefusedAsABatch() {
        #expect(Self.batch.count > 4 << 20)
        #expect(JSONRPCEnvelopeReader.read(Self.batch) == .failure(.batch))
        report("batch", Self.batch)
    }

    @Test func fourMebibyteObjectIsRead() {
        #expect(Self.object.count > 4 << 20)
        let expected = JSONRPCEnvelope(jsonrpc: .string("2.0"), id: .integer(1), method: .string("tools/call"), params: .other(.object), paramsName: .string("big"))
        #expect(JSONRPCEnvelopeReader.read(Self.object) == .success(expected))
        report("object", Self.object)
    }

    @Test func truncatedBatchIsInvalidJSON() {
        let truncated = Array(Self.batch.dropLast())
        #expect(JSONRPCEnvelopeReader.read(truncated) == .failure(.invalidJSON(offset: truncated.count)))
    }

    private func report(_ name: String, _ document: [UInt8]) {
        let clock = ContinuousClock()
        let rounds = 10
        let elapsed = clock.measure {
            for _ in 0..<rounds {
                _ = JSONRPCEnvelopeReader.read(document)
            }
        }
        print("reading a \(document.count)-byte \(name): \(elapsed / rounds) per read")
    }
}
