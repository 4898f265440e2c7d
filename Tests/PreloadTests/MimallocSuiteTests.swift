import Foundation
import Testing

// mimalloc's standard-API tests, rewritten for this project (issue 13): Tests/Programs/mimalloc
// holds mi_api.c (every check of mimalloc's test/test-api.c that has a C library counterpart, one
// function each) and mi_stress.c (the shape of test/test-stress.c: threads recreated each round,
// objects swapped through atomic transfer slots, every word checked before free). Each program
// runs on glibc (the control: it must pass there) and under the preload, where the library must
// have served it: the program names the object its malloc came from and
// malloc_usable_size(malloc(100)) (128 from the pool, 104 from glibc), and the exit report counts
// allocations. Arguments run in parallel; the suite takes ~14 s on 2 cores.

struct MimallocProgram: CustomTestStringConvertible, Sendable {
    /// mimalloc's test (test/*.c).
    var original: String
    /// The program's name under Tests/Programs/mimalloc, without ".c".
    var name: String
    var arguments: [String] = []
    /// The library's options for the preloaded run (the control run gets them too; glibc ignores them).
    var environment: [String: String] = [:]
    /// What the configuration is, for the test's name.
    var configuration: String = "defaults"
    /// Why the preloaded run is expected to fail today (a defect being fixed elsewhere), or nil.
    var knownIssue: String? = nil

    var program: String { "mimalloc/\(name)" }
    var testDescription: String {
        "\(original) (\(([name] + arguments).joined(separator: " ")), \(configuration))"
    }

    static let all: [MimallocProgram] = [
        MimallocProgram(original: "test-api", name: "mi_api"),
        // mi_stress THREADS ROUNDS SCALE.
        MimallocProgram(original: "test-stress", name: "mi_stress", arguments: ["4", "30", "50"]),
        // The original's default thread count (more threads than cores), fewer rounds.
        MimallocProgram(original: "test-stress", name: "mi_stress", arguments: ["32", "10", "10"]),
        MimallocProgram(original: "test-stress", name: "mi_stress", arguments: ["4", "30", "50"],
                        environment: ["BUDDY_THREAD_SAFETY": "always"], configuration: "BUDDY_THREAD_SAFETY=always"),
        MimallocProgram(original: "test-stress", name: "mi_stress", arguments: ["8", "10", "20"],
                        environment: ["BUDDY_SLABS": "off"], configuration: "BUDDY_SLABS=off"),
    ]
}

@Suite("mimalloc's standard-API tests, rewritten")
struct MimallocSuiteTests {
    @Test("passes on glibc and under the preload", arguments: MimallocProgram.all)
    func program(_ entry: MimallocProgram) throws {
        let path = try Harness.compileC(entry.program)
        let what = entry.testDescription
        let success = "\(entry.name): ok "

        // The control: glibc's own malloc.
        let plain = try Harness.run([path] + entry.arguments, environment: entry.environment, timeout: 90)
        #expect(plain.status == 0 && plain.signal == 0 && plain.stdout.contains(success),
                "\(what) fails on glibc (status \(plain.status), signal \(plain.signal)):\n\(plain.stdout.suffix(3000))\n\(plain.stderr.suffix(1000))")
        #expect(plain.stdout.contains("malloc from libc.so"),
                "\(what): the control run's malloc was not glibc's:\n\(plain.stdout.suffix(500))")

        // Under the preload.
        let run = try ProgramRunner.runPreloaded([path] + entry.arguments, environment: entry.environment, timeout: 90)
        let check = {
            #expect(run.result.status == 0 && run.result.signal == 0 && run.result.stdout.contains(success),
                    "\(what) fails under the preload (status \(run.result.status), signal \(run.result.signal)):\n\(run.result.stdout.suffix(3000))\n\(run.result.stderr.suffix(1000))")
        }
        if let reason = entry.knownIssue {
            withKnownIssue(Comment(rawValue: reason)) { check() }
        } else {
            check()
        }
        if run.result.stdout.contains(success) {
            #expect(run.result.stdout.contains("malloc from libBuddyMalloc.so; malloc_usable_size(malloc(100)) = 128"),
                    "\(what): the preloaded run's malloc was not the pool's:\n\(run.result.stdout.suffix(500))")
        }
        // Every check printed a verdict, and the same checks ran on both sides.
        let verdicts = { (out: String) in
            out.split(separator: "\n").filter { $0.hasPrefix("pass ") || $0.hasPrefix("FAIL ") }
                .map { $0.split(separator: ":").first.map(String.init) ?? "" }
                .map { $0.replacingOccurrences(of: "FAIL ", with: "").replacingOccurrences(of: "pass ", with: "") }
        }
        if run.result.status == 0 && plain.status == 0 {
            #expect(verdicts(run.result.stdout) == verdicts(plain.stdout),
                    "\(what): the runs made different checks:\n\(verdicts(run.result.stdout))\n\(verdicts(plain.stdout))")
        }
        ProgramRunner.expectLibraryUsed(run, what)
        if let report = run.mainReport, entry.name == "mi_stress" {
            // The threads' calls reached the pool, not only the main thread's.
            #expect(Harness.allocations(inReport: report) > 100_000,
                    "\(what): the report counts few allocations:\n\(report.prefix(1500))")
        }
    }
}
