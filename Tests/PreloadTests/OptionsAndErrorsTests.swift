import Foundation
import Synchronization
import Testing

// Bad pointers, foreign pointers and the BUDDY_* options, through Tests/Programs/badpointer.c.
// Every driver mode first checks malloc_usable_size(malloc(100)) == 128 and exits 3 when the
// library is not in use, so a silently ignored preload cannot pass.

private let badPointerBuild = Mutex<String?>(nil)

private func badPointerProgram() throws -> String {
    try badPointerBuild.withLock { built in
        if let built { return built }
        let path = try Harness.compileC("badpointer")
        built = path
        return path
    }
}

/// Runs the driver, under the preload unless `preload` is false. The preload is set by a nested
/// `env LD_PRELOAD=... program`, so that it applies to the driver only: `Harness.run(preload: true)`
/// also preloads the /usr/bin/env it starts the program with, which then prints its own copy of
/// every option warning before it execs the driver.
private func runDriver(_ arguments: [String], environment: [String: String] = [:], preload: Bool = true) throws -> Harness.Result {
    let program = try badPointerProgram()
    let argv = preload ? ["env", "LD_PRELOAD=\(try Harness.library)", program] : [program]
    return try Harness.run(argv + arguments, environment: environment, timeout: 60)
}

/// The allocator's own lines on stderr.
private func buddyLines(_ stderr: String) -> [String] {
    stderr.split(separator: "\n").map(String.init).filter { $0.hasPrefix("buddy:") }
}

/// The pointer the driver printed ("pointer 0x...") as a number.
private func printedPointer(_ stdout: String) -> UInt? {
    guard let line = stdout.split(separator: "\n").first(where: { $0.hasPrefix("pointer 0x") }) else { return nil }
    return UInt(line.dropFirst("pointer 0x".count), radix: 16)
}

/// Every hexadecimal number (0x...) in a line.
private func hexNumbers(_ line: String) -> [UInt] {
    var found: [UInt] = []
    var rest = Substring(line)
    while let range = rest.range(of: "0x") {
        let digits = rest[range.upperBound...].prefix { $0.isHexDigit }
        if let value = UInt(digits, radix: 16) { found.append(value) }
        rest = rest[range.upperBound...]
    }
    return found
}

/// "malloc(N) usable U" lines of the driver's usable mode.
private func usableSizes(_ stdout: String) -> [Int: Int] {
    var sizes: [Int: Int] = [:]
    for line in stdout.split(separator: "\n") where line.hasPrefix("malloc(") {
        let parts = line.split(separator: " ")
        guard parts.count == 3, let n = Int(parts[0].dropFirst(7).dropLast()), let u = Int(parts[2]) else { continue }
        sizes[n] = u
    }
    return sizes
}

/// A bad-pointer scenario: the driver mode, the function and the problem the message must name,
/// and the report counter that must reach 1 in log mode.
struct BadPointerCase: Sendable, CustomStringConvertible {
    var mode: String
    var function: String
    var problem: String
    var counter: String
    var otherCounter: String
    var description: String { mode }
}

private let badPointerCases: [BadPointerCase] = [
    BadPointerCase(mode: "double-free", function: "free()", problem: "double free",
                   counter: "double frees", otherCounter: "invalid pointers"),
    BadPointerCase(mode: "interior", function: "free()", problem: "invalid pointer",
                   counter: "invalid pointers", otherCounter: "double frees"),
    BadPointerCase(mode: "realloc-interior", function: "realloc()", problem: "invalid pointer",
                   counter: "invalid pointers", otherCounter: "double frees"),
    BadPointerCase(mode: "realloc-freed", function: "realloc()", problem: "use after free",
                   counter: "uses after free", otherCounter: "double frees"),
    // A cached block's links overwritten after free: caught at the next pop (FreeLinks).
    BadPointerCase(mode: "write-after-free", function: "malloc()", problem: "heap corruption",
                   counter: "invalid pointers", otherCounter: "double frees"),
    BadPointerCase(mode: "usable-interior", function: "malloc_usable_size()", problem: "invalid pointer",
                   counter: "invalid pointers", otherCounter: "double frees"),
]

/// The number after `label` in a report ("double frees 1").
private func reportCount(_ label: String, in report: String) -> Int? {
    guard let range = report.range(of: label + " ") else { return nil }
    return Int(report[range.upperBound...].prefix { $0.isNumber })
}

@Suite("Bad pointers and options")
struct OptionsAndErrorsTests {
    // MARK: - Bad pointers

    @Test("a bad pointer prints one line naming it, then aborts", arguments: badPointerCases)
    func badPointerAborts(_ scenario: BadPointerCase) throws {
        let result = try runDriver([scenario.mode])
        #expect(result.signal == SIGABRT, "\(scenario.mode): expected SIGABRT, got status \(result.status) signal \(result.signal)\nstdout: \(result.stdout)\nstderr: \(result.stderr)")
        #expect(!result.stdout.contains("survived"), "\(scenario.mode): the program went on after the bad pointer")
        let pointer = try #require(printedPointer(result.stdout), "no pointer printed (not under BuddyMalloc?):\n\(result.stdout)")
        let lines = buddyLines(result.stderr)
        #expect(lines.count == 1, "\(scenario.mode): expected exactly one buddy: line, got:\n\(result.stderr)")
        if let line = lines.first {
            #expect(line.contains(scenario.function), "\(scenario.mode): the message does not name \(scenario.function): \(line)")
            #expect(line.contains(scenario.problem), "\(scenario.mode): the message does not say \(scenario.problem): \(line)")
            #expect(hexNumbers(line).contains(pointer),
                    "\(scenario.mode): the message does not name the pointer 0x\(String(pointer, radix: 16)): \(line)")
        }
    }

    @Test("with BUDDY_ON_ERROR=log a bad pointer is reported, counted and survived", arguments: badPointerCases)
    func badPointerLogged(_ scenario: BadPointerCase) throws {
        let folder = try Harness.temporaryDirectory()
        let result = try runDriver([scenario.mode], environment: [
            "BUDDY_ON_ERROR": "log", "BUDDY_REPORT": folder.appendingPathComponent("report.%p").path,
        ])
        #expect(result.status == 0 && result.signal == 0,
                "\(scenario.mode): status \(result.status) signal \(result.signal)\nstdout: \(result.stdout)\nstderr: \(result.stderr)")
        #expect(result.stdout.contains("survived"), "\(scenario.mode): stdout: \(result.stdout)")
        #expect(result.stdout.contains("pool ok"), "\(scenario.mode): the pool is broken after the bad pointer:\n\(result.stdout)")
        let lines = buddyLines(result.stderr)
        #expect(lines.count == 1, "\(scenario.mode): expected one buddy: line, got:\n\(result.stderr)")
        if let line = lines.first, let pointer = printedPointer(result.stdout) {
            #expect(line.contains(scenario.function) && line.contains(scenario.problem) && hexNumbers(line).contains(pointer),
                    "\(scenario.mode): \(line)")
        }
        let reports = try Harness.reports(in: folder)
        #expect(reports.count == 1, "\(scenario.mode): expected one report in \(folder.path), found \(reports.count)")
        // %p became the pid.
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        #expect(names.allSatisfy { $0.hasPrefix("report.") && Int($0.dropFirst(7)) != nil }, "report files: \(names)")
        if let report = reports.first {
            #expect(reportCount(scenario.counter, in: report) == 1, "\(scenario.mode): expected '\(scenario.counter) 1' in:\n\(report)")
            #expect(reportCount(scenario.otherCounter, in: report) == 0, "\(scenario.mode): expected '\(scenario.otherCounter) 0' in:\n\(report)")
            #expect(Harness.allocations(inReport: report) >= 3000, "the pool check's allocations were not counted:\n\(report)")
        }
    }

    @Test("a free block of the pool's free areas written after free stops the program, whatever BUDDY_ON_ERROR says",
          arguments: ["abort", "log"])
    func freeAreaCorruption(strategy: String) throws {
        let result = try runDriver(["write-after-free-large"], environment: ["BUDDY_ON_ERROR": strategy])
        #expect(result.signal == SIGABRT, "status \(result.status) signal \(result.signal)\nstdout: \(result.stdout)\nstderr: \(result.stderr)")
        let pointer = try #require(printedPointer(result.stdout), "no pointer printed:\n\(result.stdout)")
        let lines = buddyLines(result.stderr)
        #expect(lines.count == 1 && lines[0].contains("heap corruption") && hexNumbers(lines[0]).contains(pointer),
                "expected one heap-corruption line naming 0x\(String(pointer, radix: 16)):\n\(result.stderr)")
    }

    @Test("the realloc of an interior pointer fails with NULL in log mode and leaves the block alone")
    func reallocInteriorReturnsNull() throws {
        let result = try runDriver(["realloc-interior"], environment: ["BUDDY_ON_ERROR": "log"])
        #expect(result.stdout.contains("realloc returned NULL"), "stdout: \(result.stdout)")
        #expect(!result.stdout.contains("block changed"), "stdout: \(result.stdout)")
    }

    @Test("glibc also aborts on a double free, but without BuddyMalloc's message (the driver's control run)")
    func glibcControl() throws {
        let result = try runDriver(["--any", "double-free"], preload: false)
        #expect(result.signal == SIGABRT, "glibc: status \(result.status) signal \(result.signal)")
        #expect(buddyLines(result.stderr).isEmpty, "glibc printed a buddy: line?\n\(result.stderr)")
        let refused = try runDriver(["double-free"], preload: false)
        #expect(refused.status == 3, "the driver did not notice the missing preload: status \(refused.status)")
    }

    @Test("a pointer from glibc's own allocator is accepted silently")
    func foreignPointerAccepted() throws {
        let result = try runDriver(["foreign"])
        #expect(result.status == 0, "status \(result.status) signal \(result.signal)\nstdout: \(result.stdout)\nstderr: \(result.stderr)")
        #expect(result.stdout.contains("foreign ok"), "stdout: \(result.stdout)")
        #expect(buddyLines(result.stderr).isEmpty, "messages for foreign pointers:\n\(result.stderr)")
        // Even in abort mode nothing was reported: the run did not die.
        #expect(result.signal == 0)
    }

    // MARK: - Options

    @Test("BUDDY_MAX_BLOCK=64K maps larger requests on their own: whole pages, not a block")
    func maxBlockOption() throws {
        let sizes = ["100000", "65537", "60000", "65536", "100"]
        let limited = usableSizes(try runDriver(["usable"] + sizes, environment: ["BUDDY_MAX_BLOCK": "64K"]).stdout)
        let defaults = usableSizes(try runDriver(["usable"] + sizes).stdout)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        func pages(_ n: Int) -> Int { (n + page - 1) / page * page }
        #expect(defaults[100_000] == 131_072, "control: without the option malloc(100000) is a 128 KiB block: \(defaults)")
        #expect(limited[100_000] == pages(100_000),
                "malloc(100000) under BUDDY_MAX_BLOCK=64K: usable \(String(describing: limited[100_000])), its pages are \(pages(100_000))")
        #expect(limited[65_537] == pages(65_537), "malloc(65537): \(String(describing: limited[65_537])) vs \(pages(65_537))")
        #expect(limited[60_000] == 65_536, "malloc(60000): \(String(describing: limited[60_000]))")
        #expect(limited[65_536] == 65_536, "malloc(65536): \(String(describing: limited[65_536]))")
        #expect(limited[100] == 128, "malloc(100): \(String(describing: limited[100]))")
    }

    @Test("BUDDY_MIN_BLOCK=64 makes 64 bytes the smallest block")
    func minBlockOption() throws {
        let result = try runDriver(["usable", "1", "64", "65", "100"], environment: ["BUDDY_MIN_BLOCK": "64"])
        let sizes = usableSizes(result.stdout)
        #expect(sizes[1] == 64 && sizes[64] == 64 && sizes[65] == 128 && sizes[100] == 128, "\(sizes)")
        #expect(buddyLines(result.stderr).isEmpty, "\(result.stderr)")
        let defaults = usableSizes(try runDriver(["usable", "1"]).stdout)
        #expect(defaults[1] == 16, "control: the default smallest block is 16 bytes: \(defaults)")
    }

    @Test("BUDDY_MAX_POOL=2M stops the pool with ENOMEM, and freeing makes room again")
    func maxPoolOption() throws {
        let result = try runDriver(["pool-limit"], environment: ["BUDDY_MAX_POOL": "2M", "BUDDY_INITIAL_SIZE": "1M", "BUDDY_MAX_BLOCK": "1M"])
        #expect(result.status == 0, "status \(result.status)\n\(result.stdout)\n\(result.stderr)")
        let line = result.stdout.split(separator: "\n").first { $0.hasPrefix("blocks ") }.map(String.init) ?? ""
        let parts = line.split(separator: " ")
        let count = parts.count >= 4 ? Int(parts[1]) : nil
        #expect(count != nil && (1...4).contains(count!), "512 KiB blocks in a 2 MiB pool: \(line)")
        #expect(parts.count >= 4 && parts[3] == "12", "errno after the failing malloc: \(line) (ENOMEM is 12)")
        #expect(result.stdout.contains("after free \(count ?? -1)\n"), "after freeing, the same number fit again:\n\(result.stdout)")
        #expect(result.stdout.contains("large ok"), "\(result.stdout)")
        #expect(buddyLines(result.stderr).isEmpty, "\(result.stderr)")

        let unlimited = try runDriver(["pool-limit"])
        #expect(unlimited.stdout.contains("blocks 64 errno 0"), "control: without the limit 64 blocks fit:\n\(unlimited.stdout)")
    }

    struct InvalidOption: Sendable, CustomStringConvertible {
        var variable: String
        var value: String
        var description: String { "\(variable)=\(value)" }
    }

    @Test("an invalid value prints one warning naming the variable, and the defaults apply", arguments: [
        InvalidOption(variable: "BUDDY_MAX_BLOCK", value: "abc"),
        InvalidOption(variable: "BUDDY_GROWTH_FACTOR", value: "zero"),
        InvalidOption(variable: "BUDDY_THREAD_SAFETY", value: "maybe"),
        InvalidOption(variable: "BUDDY_MIN_BLOCK", value: "16M"),
        InvalidOption(variable: "BUDDY_ON_ERROR", value: "never"),
        InvalidOption(variable: "BUDDY_INITIAL_SIZE", value: "-5"),
        InvalidOption(variable: "BUDDY_MAX_POOL", value: "1x"),
        InvalidOption(variable: "BUDDY_GROWTH_FACTOR", value: "100"),
    ])
    func invalidOption(_ option: InvalidOption) throws {
        let environment = [option.variable: option.value]
        let result = try runDriver(["usable", "1", "100", "100000"], environment: environment)
        #expect(result.status == 0, "\(option): status \(result.status) signal \(result.signal)\n\(result.stderr)")
        let lines = buddyLines(result.stderr)
        #expect(lines.count == 1, "\(option): expected one warning line, got:\n\(result.stderr)")
        #expect(lines.first?.contains(option.variable) == true,
                "\(option): the warning does not name \(option.variable): \(lines.first ?? "(none)")")
        #expect(usableSizes(result.stdout) == [1: 16, 100: 128, 100_000: 131_072],
                "\(option): not the default geometry: \(result.stdout)")
        let work = try runDriver(["workload", "2"], environment: environment)
        #expect(work.status == 0 && work.stdout.contains("workload ok"), "\(option): \(work.stdout)\n\(work.stderr)")
    }

    @Test("a rejected value does not discard the other, valid options")
    func rejectedValueKeepsOtherOptions() throws {
        // BUDDY_MIN_BLOCK=16M is a size, but larger than the default maximum block (8M): only it
        // may fall back to its default; BUDDY_ON_ERROR=log must still apply.
        let result = try runDriver(["double-free"], environment: ["BUDDY_MIN_BLOCK": "16M", "BUDDY_ON_ERROR": "log"])
        #expect(result.status == 0 && result.signal == 0,
                "BUDDY_ON_ERROR=log was dropped with BUDDY_MIN_BLOCK=16M: status \(result.status) signal \(result.signal)\n\(result.stderr)")
        #expect(result.stdout.contains("pool ok"), "\(result.stdout)")
        // Control: with a malformed value instead, the other option is kept.
        let control = try runDriver(["double-free"], environment: ["BUDDY_MAX_BLOCK": "abc", "BUDDY_ON_ERROR": "log"])
        #expect(control.status == 0 && control.stdout.contains("pool ok"), "control: \(control.stdout)\n\(control.stderr)")
    }

    @Test("BUDDY_THREAD_SAFETY=always runs a threaded workload correctly")
    func threadSafetyAlways() throws {
        let result = try runDriver(["workload", "4"], environment: ["BUDDY_THREAD_SAFETY": "always"])
        #expect(result.status == 0 && result.stdout.contains("workload ok (4 threads)"), "\(result.stdout)\n\(result.stderr)")
        #expect(buddyLines(result.stderr).isEmpty, "\(result.stderr)")
        let auto = try runDriver(["workload", "4"], environment: ["BUDDY_THREAD_SAFETY": "auto"])
        #expect(auto.status == 0 && auto.stdout.contains("workload ok (4 threads)"), "\(auto.stdout)\n\(auto.stderr)")
    }

    @Test("BUDDY_REPORT=stderr prints the report at exit")
    func reportToStderr() throws {
        let result = try runDriver(["usable", "100", "5000"], environment: ["BUDDY_REPORT": "stderr"])
        #expect(result.status == 0)
        #expect(result.stderr.contains("BuddyMalloc report, pid "), "stderr: \(result.stderr)")
        let calls = result.stderr.split(separator: "\n").first { $0.hasPrefix("  calls       allocations ") }
        #expect(calls != nil, "no calls line in:\n\(result.stderr)")
        #expect(Harness.allocations(inReport: result.stderr) >= 3, "the driver's allocations were not counted:\n\(result.stderr)")
        #expect(result.stderr.contains("  errors      invalid pointers 0, double frees 0"), "\(result.stderr)")
        let quiet = try runDriver(["usable", "100"])
        #expect(!quiet.stderr.contains("BuddyMalloc report"), "control: no report without BUDDY_REPORT:\n\(quiet.stderr)")
    }

    @Test("an unwritable BUDDY_REPORT path prints a clear message and keeps the exit status")
    func unwritableReport() throws {
        let path = "/nonexistent-buddy-dir/sub/report.%p"
        let result = try runDriver(["usable", "100"], environment: ["BUDDY_REPORT": path])
        #expect(result.status == 0, "status \(result.status)")
        let lines = buddyLines(result.stderr)
        #expect(lines.count == 1 && lines[0].contains("BUDDY_REPORT") && lines[0].contains("/nonexistent-buddy-dir/sub"),
                "expected one message naming BUDDY_REPORT and the path, got:\n\(result.stderr)")
        // A failing program keeps its own status (the driver exits 2 for an unknown mode).
        let failing = try runDriver(["no-such-mode"], environment: ["BUDDY_REPORT": path])
        let control = try runDriver(["no-such-mode"])
        #expect(failing.status == 2 && control.status == 2, "statuses \(failing.status) and \(control.status), expected 2")
    }
}

@Suite("Report target")
struct ReportTargetTests {
    @Test("the report is written even when the program rewrites its environment (setproctitle)")
    func reportSurvivesEnvironmentRewrite() throws {
        let program = try Harness.compileC("env_clobber")
        let dir = try Harness.temporaryDirectory()
        let result = try Harness.run([program], environment: ["BUDDY_REPORT": dir.path + "/report.%p"], preload: true)
        #expect(result.status == 0)
        #expect(!result.stderr.contains("cannot open the report file"), "\(result.stderr)")
        let reports = try Harness.reports(in: dir)
        #expect(reports.count == 1)
        #expect(reports.first.map(Harness.allocations(inReport:)) ?? 0 > 0)
    }
}

@Suite("Option names and combinations")
struct OptionCheckTests {
    @Test("a misspelled BUDDY_* name is named, with the option it most likely meant; options and tool variables are not")
    func unknownNames() throws {
        let result = try runDriver(["usable", "100"], environment: [
            "BUDDY_MAXBLOCK": "4M", "BUDDY_MAX_BLOCKS": "1M", "BUDDY_max_pool": "8M", "BUDDY_NOSUCH": "1",
            "BUDDY_MAX_BLOCK": "1M", "BUDDY_LIB": "/nowhere", "BUDDY_TEST_JIT": "0",
        ])
        let lines = buddyLines(result.stderr)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(lines.contains("buddy: ignoring BUDDY_MAXBLOCK: not an option; did you mean BUDDY_MAX_BLOCK?"), "\(lines)")
        #expect(lines.contains("buddy: ignoring BUDDY_MAX_BLOCKS: not an option; did you mean BUDDY_MAX_BLOCK?"), "\(lines)")
        #expect(lines.contains("buddy: ignoring BUDDY_max_pool: not an option; did you mean BUDDY_MAX_POOL?"), "\(lines)")
        #expect(lines.contains { $0.hasPrefix("buddy: ignoring BUDDY_NOSUCH: not an option (") }, "\(lines)")
        #expect(lines.count == 4, "only the four unknown names: \(lines)")
    }

    @Test("the warnings are printed once per process tree (BUDDY_WARNED)")
    func oncePerProcessTree() throws {
        // A shell under the library starts three more programs under it (its environment, with
        // BUDDY_WARNED, reaches them).
        let script = "/bin/true; /bin/true; env | grep -c '^BUDDY_WARNED=1$'"
        let result = try Harness.run(["env", "LD_PRELOAD=\(try Harness.library)", "sh", "-c", script],
                                     environment: ["BUDDY_MAXBLOCK": "4M"], timeout: 60)
        let lines = buddyLines(result.stderr)
        #expect(lines == ["buddy: ignoring BUDDY_MAXBLOCK: not an option; did you mean BUDDY_MAX_BLOCK?"], "\(result.stderr)")
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "children see the mark: \(result.stdout)")
        // A program without warnings leaves the environment alone.
        let clean = try Harness.run(["env", "LD_PRELOAD=\(try Harness.library)", "sh", "-c", "env | grep -c '^BUDDY_WARNED' || true"],
                                    timeout: 60)
        #expect(clean.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "\(clean.stdout)")
    }

    @Test("report options without BUDDY_REPORT say they have no effect")
    func reportOptionsNeedAReport() throws {
        let environment = ["BUDDY_REPORT_INTERVAL": "1", "BUDDY_REPORT_FORMAT": "json", "BUDDY_PROFILE_SAMPLE": "1M",
                           "BUDDY_REPORT_SIGNAL": "USR2"]
        let lines = buddyLines(try runDriver(["usable", "100"], environment: environment).stderr)
        for (name, value) in environment {
            #expect(lines.contains { $0.hasPrefix("buddy: \(name)=\(value) has no effect without BUDDY_REPORT") }, "\(name): \(lines)")
        }
        #expect(lines.count == environment.count, "\(lines)")
        // (A file of our own, never a system device: a regression in the report writer must not
        // be able to replace /dev/null.)
        let directory = try Harness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var withReport = environment
        withReport["BUDDY_REPORT"] = directory.appendingPathComponent("report").path
        #expect(buddyLines(try runDriver(["usable", "100"], environment: withReport).stderr).isEmpty)
    }

    @Test("BUDDY_INITIAL_SIZE below the smallest segment, or not a power of two, says what the first segment is")
    func initialSizeIsExplained() throws {
        let small = try runDriver(["usable", "100"], environment: ["BUDDY_INITIAL_SIZE": "1M", "BUDDY_REPORT": "stderr"])
        #expect(buddyLines(small.stderr).contains(
            "buddy: BUDDY_INITIAL_SIZE=1M is below the smallest segment (the maximum block, or 64K): the first segment is 8.0M"),
                "\(small.stderr.prefix(2000))")
        let odd = try runDriver(["usable", "100"], environment: ["BUDDY_INITIAL_SIZE": "12M"])
        #expect(buddyLines(odd.stderr) == ["buddy: BUDDY_INITIAL_SIZE=12M is not a power of two: the first segment is 16.0M"],
                "\(odd.stderr)")
        // The report shows the first segment as mapped, not as asked.
        let json = try runDriver(["usable", "100"], environment: ["BUDDY_INITIAL_SIZE": "1M", "BUDDY_REPORT": "stderr",
                                                                  "BUDDY_REPORT_FORMAT": "json"])
        #expect(json.stderr.contains("\"initial_size\": 8388608"), "\(json.stderr.prefix(3000))")
        // 0 (no first segment until needed) and exact sizes are quiet.
        #expect(buddyLines(try runDriver(["usable", "100"], environment: ["BUDDY_INITIAL_SIZE": "0"]).stderr).isEmpty)
        #expect(buddyLines(try runDriver(["usable", "100"], environment: ["BUDDY_INITIAL_SIZE": "16M"]).stderr).isEmpty)
    }
}
