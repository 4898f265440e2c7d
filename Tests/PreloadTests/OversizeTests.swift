import Foundation
import Testing

// Blocks above the maximum block (Oversize.swift) and the misuses the C layer reports, each
// checked by Tests/Programs/oversize.c under LD_PRELOAD.

private func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Harness.Result {
    try Harness.run([try Harness.compileC("oversize", extraFlags: ["-I", Harness.packageRoot.appendingPathComponent("Sources/BuddyMallocAPI/include").path])] + arguments, environment: environment, preload: true, timeout: 60)
}

private func buddyLines(_ stderr: String) -> [String] {
    stderr.split(separator: "\n").map(String.init).filter { $0.hasPrefix("buddy: ") }
}

/// The pointers the driver printed ("pointer 0x...").
private func printedPointers(_ stdout: String) -> [String] {
    stdout.split(separator: "\n").compactMap { line in
        line.hasPrefix("pointer 0x") ? String(line.dropFirst("pointer ".count)) : nil
    }
}

/// The number after `label` in a text report ("uses after free 1").
private func count(_ label: String, in report: String) -> Int? {
    guard let range = report.range(of: label + " ") else { return nil }
    return Int(report[range.upperBound...].prefix { $0.isNumber })
}

private func parseJSON(_ text: String) throws -> [String: Any] {
    let start = try #require(text.firstIndex(of: "{"), "no JSON in:\n\(text)")
    return try #require(try JSONSerialization.jsonObject(with: Data(text[start...].utf8)) as? [String: Any])
}

/// A misuse scenario: the driver mode, the problem the one buddy: line must name with its
/// function, and the text report's counter that must be 1.
struct MisuseCase: Sendable, CustomStringConvertible {
    var mode: String
    var function: String
    var problem: String
    var counter: String
    var description: String { mode }
}

private let misuseCases: [MisuseCase] = [
    MisuseCase(mode: "interior", function: "free()", problem: "invalid pointer", counter: "invalid pointers"),
    MisuseCase(mode: "double", function: "free()", problem: "double free", counter: "double frees"),
    MisuseCase(mode: "realloc-freed", function: "realloc()", problem: "use after free", counter: "uses after free"),
    MisuseCase(mode: "usable-freed", function: "malloc_usable_size()", problem: "use after free", counter: "uses after free"),
    MisuseCase(mode: "sized-wrong", function: "free_sized()", problem: "wrong size", counter: "wrong sizes"),
]

@Suite("Blocks above the maximum block, and misuses")
struct OversizeTests {
    @Test("oversize blocks: realloc in place, with mremap, into and out of the pool; calloc; large alignments; exact usable sizes")
    func operations() throws {
        let result = try run(["ops"])
        #expect(result.status == 0 && result.stdout.contains("ops ok"), "stdout: \(result.stdout)\nstderr: \(result.stderr)")
        #expect(buddyLines(result.stderr).isEmpty, "\(result.stderr)")
    }

    @Test("glibc's own blocks, small and large, still go back to glibc while oversize blocks live")
    func glibcPointers() throws {
        let result = try run(["glibc"])
        #expect(result.status == 0 && result.stdout.contains("glibc ok"), "stdout: \(result.stdout)\nstderr: \(result.stderr)")
    }

    @Test("fork while four threads map, resize and unmap oversize blocks: every child allocates and exits")
    func forkWhileBusy() throws {
        let result = try run(["fork"])
        #expect(result.status == 0 && result.stdout.contains("fork ok"), "stdout: \(result.stdout)\nstderr: \(result.stderr)")
    }

    @Test("free_sized and free_aligned_sized with the sizes asked for are accepted (malloc(0), shrunk blocks, alignments)")
    func correctSizes() throws {
        let result = try run(["sized-ok"])
        #expect(result.status == 0 && result.stdout.contains("sized ok"), "stdout: \(result.stdout)\nstderr: \(result.stderr)")
        #expect(buddyLines(result.stderr).isEmpty, "\(result.stderr)")
    }

    @Test("a misuse aborts with one line naming the function, the problem and the pointer", arguments: misuseCases)
    func misuseAborts(_ scenario: MisuseCase) throws {
        let result = try run([scenario.mode])
        #expect(result.signal == SIGABRT, "\(scenario): status \(result.status) signal \(result.signal)\nstdout: \(result.stdout)\nstderr: \(result.stderr)")
        let lines = buddyLines(result.stderr)
        let pointer = try #require(printedPointers(result.stdout).first, "stdout: \(result.stdout)")
        #expect(lines.count == 1, "\(scenario): \(result.stderr)")
        if let line = lines.first {
            #expect(line.contains(scenario.function) && line.contains(scenario.problem) && line.contains(pointer), "\(scenario): \(line)")
        }
    }

    @Test("with BUDDY_ON_ERROR=log a misuse is reported, counted, and the program goes on", arguments: misuseCases)
    func misuseLogged(_ scenario: MisuseCase) throws {
        let result = try run([scenario.mode], environment: ["BUDDY_ON_ERROR": "log", "BUDDY_REPORT": "stderr"])
        #expect(result.status == 0 && result.stdout.contains("survived"), "\(scenario): stdout: \(result.stdout)\nstderr: \(result.stderr)")
        let expected = scenario.mode == "sized-wrong" ? 2 : 1
        #expect(buddyLines(result.stderr).count == expected, "\(scenario): \(result.stderr)")
        #expect(count(scenario.counter, in: result.stderr) == expected, "\(scenario): \(result.stderr)")
    }

    @Test("free(malloc(8) + 4096) is reported on one line, as an invalid pointer or a double free")
    func badSmallPointer() throws {
        let result = try run(["bad-small"], environment: ["BUDDY_ON_ERROR": "log"])
        let lines = buddyLines(result.stderr)
        #expect(lines.count == 1, "\(result.stderr)")
        if let line = lines.first {
            // What that address is depends on the heap's history (the debug and release
            // libraries differ), and each answer is true: inside a block (an invalid pointer),
            // a block someone held and freed (a double free), or a block someone holds (the
            // release library: stdout's buffer). Freeing the last is a call the pool cannot tell
            // from a correct one; its owner writing to it afterwards is caught by the exit's
            // check of the cached blocks, which names it. bad-split makes the never-held case
            // certain.
            let pointer = result.stdout.split(separator: "\n").first { $0.hasPrefix("pointer ") }.map { String($0.dropFirst(8)) } ?? "?"
            #expect(line.contains("invalid pointer") && line.contains("not the start of a block")
                    || line.contains("double free")
                    || line.contains("exit(): heap corruption") && line.contains(pointer), "\(line)")
        }
    }

    @Test("the free upper half of a split, never handed out, is an invalid pointer, not a double free")
    func neverHandedOutIsInvalid() throws {
        let result = try run(["bad-split"], environment: ["BUDDY_ON_ERROR": "log"])
        let lines = buddyLines(result.stderr)
        #expect(lines.count == 1 && lines[0].contains("invalid pointer") && lines[0].contains("not the start of a block"),
                "\(result.stderr)")
    }

    @Test("six freed 20 MiB blocks are all retained (limit 128 MiB), and the next six reuse them")
    func retainedUpToTheLimit() throws {
        // A release delay no test machine's stall reaches: the limit is what is checked.
        let result = try run(["retain"], environment: ["BUDDY_RELEASE_DELAY": "60"])
        #expect(result.status == 0 && result.stdout.contains("retain ok"), "stdout: \(result.stdout)\nstderr: \(result.stderr)")
    }

    @Test("more live oversize blocks than half of vm.max_map_count maps: glibc serves the rest, nothing fails, one line says so")
    func pastTheMappingBudget() throws {
        let result = try run(["many"], environment: ["BUDDY_MAX_BLOCK": "4K"])
        #expect(result.status == 0 && result.stdout.contains("many ok"), "stdout: \(result.stdout)\nstderr: \(result.stderr)")
        let lines = buddyLines(result.stderr)
        #expect(lines.count == 1 && lines.first?.contains("near vm.max_map_count") == true
                && lines.first?.contains("Raise BUDDY_MAX_BLOCK") == true, "\(result.stderr)")
    }

    @Test("a 60 MB block held until exit is in the report: oversize live, held, and the JSON fields")
    func heldBlockIsReported() throws {
        let text = try run(["hold"], environment: ["BUDDY_REPORT": "stderr"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stderr.contains("  oversize    1 live, 57.3M") || text.stderr.contains("  oversize    1 live, 57.2M"), "\(text.stderr)")
        #expect(text.stderr.contains("held by the program in all 57."), "\(text.stderr)")
        let json = try parseJSON(try run(["hold"], environment: ["BUDDY_REPORT": "stderr", "BUDDY_REPORT_FORMAT": "json"]).stderr)
        let memory = try #require(json["memory"] as? [String: Any])
        let oversize = try #require(json["oversize"] as? [String: Any], "no oversize object: \(json.keys)")
        let bytes = (oversize["bytes"] as? NSNumber)?.intValue ?? -1
        #expect(bytes >= 60_000_000 && bytes < 60_000_000 + 4096, "\(oversize)")
        #expect((oversize["blocks"] as? NSNumber)?.intValue == 1 && (oversize["peak_blocks"] as? NSNumber)?.intValue == 1)
        #expect((memory["held"] as? NSNumber)?.intValue == ((memory["used"] as? NSNumber)?.intValue ?? 0) + bytes, "\(memory)")
        let errors = try #require(json["errors"] as? [String: Any])
        #expect(errors["use_after_free"] as? NSNumber == 0 && errors["wrong_size"] as? NSNumber == 0, "\(errors)")
    }

    @Test("the profile subtracts the frees of oversize blocks: nothing of 3 x 20 MB stays live")
    func profileSubtractsOversizeFrees() throws {
        let result = try run(["profile"], environment: ["BUDDY_PROFILE_SAMPLE": "1M", "BUDDY_REPORT": "stderr", "BUDDY_REPORT_FORMAT": "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try parseJSON(result.stderr)
        let sites = try #require((json["profile"] as? [String: Any])?["sites"] as? [[String: Any]])
        let live = sites.reduce(0) { $0 + ((($1["live_bytes"]) as? NSNumber)?.intValue ?? 0) }
        #expect(live < 20_000_000, "sampled bytes still live: \(live)\n\(sites)")
    }
}
