import Benchmark
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension BenchmarkMetric {
    /// CPU time of the whole process (every thread, so a hop to another
    /// executor counts too), read with nanosecond resolution around the
    /// inner loop. The built-in `cpuTotal` comes from the kernel's tick
    /// counters on Linux: 10 ms steps, which say nothing about a
    /// microsecond operation.
    public static let processCPU = BenchmarkMetric.custom("CPU time, process clock (ns)", polarity: .prefersSmaller, useScalingFactor: true)
}

extension Benchmark.Configuration {
    /// What every micro-benchmark reports: wall clock, CPU time,
    /// throughput, allocations (count and bytes, via the malloc
    /// interposer), and instructions where the kernel exposes a PMU to
    /// perf_events (virtual machines often do not; the row is then left
    /// out). `scalingFactor` runs an inner loop so a sub-microsecond
    /// operation is not lost in the measurement's own cost; the table shows
    /// the metrics marked `*` per inner iteration.
    public static func hotPath(_ scalingFactor: BenchmarkScalingFactor = .kilo) -> Self {
        .init(
            metrics: [.wallClock, .processCPU, .throughput, .mallocCountTotal, .mallocBytesCount, .instructions],
            timeUnits: .nanoseconds,
            warmupIterations: 10,
            scalingFactor: scalingFactor,
            maxDuration: .seconds(2),
            maxIterations: 100_000
        )
    }
}

extension Benchmark {
    /// Runs `body` `scaledIterations` times and records the process CPU time it took.
    public func measure(_ body: () throws -> Void) rethrows {
        let start = Self.processCPUNanoseconds()
        for _ in scaledIterations { try body() }
        measurement(.processCPU, Self.processCPUNanoseconds() - start)
    }

    /// `measure` for async work.
    public func measure(_ body: () async throws -> Void) async rethrows {
        let start = Self.processCPUNanoseconds()
        for _ in scaledIterations { try await body() }
        measurement(.processCPU, Self.processCPUNanoseconds() - start)
    }

    static func processCPUNanoseconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now)
        return Int(now.tv_sec) * 1_000_000_000 + Int(now.tv_nsec)
    }
}
