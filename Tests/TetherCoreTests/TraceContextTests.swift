import Testing
@testable import TetherCore

@Suite("W3C trace context")
struct TraceContextTests {
    @Test func aValidTraceparentIsJoinedAndEachHopIsANewSpan() throws {
        let incoming = try #require(TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
        #expect(incoming.traceID == "4bf92f3577b34da6a3ce929d0e0e4736" && incoming.spanID == "00f067aa0ba902b7" && incoming.flags == "01")
        let next = incoming.child()
        #expect(next.traceID == incoming.traceID && next.flags == "01" && next.spanID != incoming.spanID)
        #expect(TraceContext(traceparent: next.traceparent) == next)
    }

    @Test(arguments: [
        "", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", // too few fields
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // uppercase
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero parent id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // forbidden version
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", // extra field in version 00
    ])
    func malformedTraceparentsStartANewTrace(header: String) {
        #expect(TraceContext(traceparent: header) == nil)
    }

    @Test func aLaterVersionIsReadByTheVersion00Layout() {
        #expect(TraceContext(traceparent: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future")?.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
    }

    @Test func newTracesAreWellFormed() throws {
        let trace = TraceContext.start()
        #expect(trace.traceID.count == 32 && trace.spanID.count == 16 && trace.flags == "01")
        #expect(TraceContext(traceparent: trace.traceparent) == trace)
    }
}
