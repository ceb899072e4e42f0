import Testing
@testable import TetherProxy

@Suite("xDS reconnect backoff")
struct ReconnectBackoffTests {
    @Test func afterAWorkingStreamRetriesStayWithinASecondForAMinute() {
        var backoff = ReconnectBackoff()
        let start = ContinuousClock.now
        backoff.streamEnded(healthy: true, at: start)
        var now = start
        for _ in 0..<20 {
            #expect(backoff.ceiling(at: now) <= .seconds(1))
            #expect(backoff.delay(at: now) <= .seconds(1))
            backoff.streamEnded(healthy: false, at: now)
            now += .seconds(2)
        }
        // The control plane stayed away: the ceiling grows to the maximum.
        now = start + .seconds(61)
        #expect(backoff.ceiling(at: now) == .seconds(15))
    }

    @Test func withoutAWorkingStreamTheCeilingDoublesToTheMaximum() {
        var backoff = ReconnectBackoff()
        let now = ContinuousClock.now
        var ceilings: [Duration] = []
        for _ in 0..<8 {
            backoff.streamEnded(healthy: false, at: now)
            ceilings.append(backoff.ceiling(at: now))
        }
        #expect(ceilings == [.milliseconds(400), .milliseconds(800), .milliseconds(1600), .milliseconds(3200), .milliseconds(6400), .milliseconds(12800), .seconds(15), .seconds(15)])
    }
}
