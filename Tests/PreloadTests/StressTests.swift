import Foundation
import Testing

// C drivers under LD_PRELOAD: Tests/Programs/stress.c (threads, cross-thread frees, realloc
// chains, aligned allocations, thread churn, fork while other threads allocate) and
// Tests/Programs/first_call.c / first_call_cpp.cpp (every entry point and size as a new thread's
// first call, in a priority-101 constructor, and from C++ static initializers).

private enum Drivers {
    // Compiled once per test run (static lets are initialized once, even with tests in parallel).
    static let stress = Result { try Harness.compileC("stress") }
    static let firstCall = Result { try Harness.compileC("first_call") }
    static let firstCallCpp = Result { try Harness.compileCxx("first_call_cpp") }
}

/// The block size only this allocator gives for malloc(100) (glibc says 104).
private let poolUsable100 = "usable(100)=128"

@Suite("Stress and first calls under LD_PRELOAD")
struct StressTests {
    /// Runs the stress driver under the preload and checks its exit, its own verdict and every
    /// report of the process tree (the parent's and those of the children that ran exit()).
    private func stressUnderPreload(seed: Int, environment: [String: String]) throws {
        let stress = try Drivers.stress.get()
        let argv = [stress, "8", "20000", String(seed), "50"]
        let run = try ProgramRunner.runPreloaded(argv, environment: environment, timeout: 150)
        let what = "stress 8 20000 \(seed) 50 with \(environment)"
        #expect(run.result.status == 0 && run.result.signal == 0,
                "\(what): exit status \(run.result.status), signal \(run.result.signal); stderr:\n\(run.result.stderr.prefix(4000))\nstdout: \(run.result.stdout.suffix(1000))")
        #expect(run.result.stdout.contains("stress: ok "), "\(what): no ok line: \(run.result.stdout.suffix(1000))")
        #expect(run.result.stdout.contains("fork-failures=0 "), "\(what): \(run.result.stdout.suffix(1000))")
        ProgramRunner.expectLibraryUsed(run, what)
        if let main = run.mainReport {
            // 8 x 20000 operations, about half of them allocations.
            #expect(Harness.allocations(inReport: main) > 50_000, "\(what): too few allocations reached the pool:\n\(main)")
        }
        // Every tenth of the 50 children leaves through exit() and writes its own report.
        #expect(run.reports.count >= 1 + 5, "\(what): expected reports from the parent and 5 children, got \(run.reports.count)")
    }

    @Test("stress: 8 threads, fork x50, default thread safety (auto)")
    func stressDefault() throws {
        try stressUnderPreload(seed: 1, environment: [:])
    }

    @Test("stress: 8 threads, fork x50, BUDDY_THREAD_SAFETY=always")
    func stressAlwaysLocked() throws {
        try stressUnderPreload(seed: 2, environment: ["BUDDY_THREAD_SAFETY": "always"])
    }

    @Test("stress: control run on glibc")
    func stressControl() throws {
        let stress = try Drivers.stress.get()
        let result = try Harness.run([stress, "8", "20000", "3", "50"], timeout: 150)
        #expect(result.status == 0 && result.signal == 0,
                "stress on glibc: status \(result.status), signal \(result.signal): \(result.stderr.prefix(3000))")
        #expect(result.stdout.contains("stress: ok "), "stress on glibc: \(result.stdout)")
    }

    static let constructorEntries = ["malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc",
                                     "memalign", "valloc", "pvalloc"]

    @Test("first call: each entry point in a constructor(101), then every entry point and size as a new thread's first call",
          arguments: constructorEntries)
    func firstCall(constructorEntry: String) throws {
        let program = try Drivers.firstCall.get()
        let run = try ProgramRunner.runPreloaded([program], environment: ["FIRST_CALL_CTOR": constructorEntry], timeout: 60)
        let what = "first_call with FIRST_CALL_CTOR=\(constructorEntry)"
        #expect(run.result.status == 0 && run.result.signal == 0,
                "\(what): status \(run.result.status), signal \(run.result.signal); stderr:\n\(run.result.stderr.prefix(4000))")
        let lines = run.result.stdout.split(separator: "\n").map(String.init)
        let expectedName = constructorEntry == "realloc" ? "realloc(NULL)" : constructorEntry
        #expect(lines.first == "constructor: \(expectedName) ok, \(poolUsable100)", "\(what): \(run.result.stdout)")
        #expect(lines.contains { $0.hasPrefix("threads: ") && $0.hasSuffix(" cases ok") }, "\(what): \(run.result.stdout)")
        #expect(lines.contains { $0.hasPrefix("concurrent: ") && $0.hasSuffix(" cases ok") }, "\(what): \(run.result.stdout)")
        #expect(lines.last == poolUsable100, "\(what): \(run.result.stdout)")
        ProgramRunner.expectLibraryUsed(run, what)
    }

    @Test("first call: control run on glibc")
    func firstCallControl() throws {
        let program = try Drivers.firstCall.get()
        let result = try Harness.run([program], timeout: 60)
        #expect(result.status == 0 && result.signal == 0, "first_call on glibc: \(result.stdout) \(result.stderr.prefix(3000))")
        #expect(result.stdout.contains("threads: ") && !result.stdout.contains("FAILED"), "first_call on glibc: \(result.stdout)")
    }

    @Test("first call from C++ static initializers", .enabled(if: Harness.has("g++"), "g++ is not installed"))
    func firstCallCpp() throws {
        let program = try Drivers.firstCallCpp.get()
        let control = try Harness.run([program], timeout: 60)
        #expect(control.status == 0 && control.stdout.hasSuffix("main: ok\n"), "first_call_cpp on glibc: \(control.stdout) \(control.stderr)")
        for environment in [[:], ["BUDDY_THREAD_SAFETY": "always"]] {
            let run = try ProgramRunner.runPreloaded([program], environment: environment, timeout: 60)
            let what = "first_call_cpp with \(environment)"
            #expect(run.result.status == 0 && run.result.signal == 0,
                    "\(what): status \(run.result.status), signal \(run.result.signal); stderr:\n\(run.result.stderr.prefix(4000))")
            #expect(run.result.stdout == "static init: ok, \(poolUsable100)\nmain: ok\n", "\(what): \(run.result.stdout)")
            ProgramRunner.expectLibraryUsed(run, what)
        }
    }
}
