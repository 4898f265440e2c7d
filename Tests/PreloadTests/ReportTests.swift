import Foundation
import Synchronization
import Testing

// The report (README, "The report"): its JSON form (docs/report-format.md) parsed with
// JSONSerialization, the triggers (exit, signal, interval), bad-pointer backtraces, glibc's
// introspection calls, and the signal path's reachability check. C drivers: Tests/Programs/report_*.c.

private let builds = Mutex<[String: String]>([:])

/// Compiles a driver once per run (Harness.compileC caches by name).
private func program(_ name: String, _ flags: [String] = []) throws -> String {
    try builds.withLock { built in
        if let path = built[name] { return path }
        let path = try Harness.compileC(name, extraFlags: flags)
        built[name] = path
        return path
    }
}

private let includeFlags = ["-I", Harness.packageRoot.appendingPathComponent("Sources/BuddyMallocAPI/include").path]

/// Runs `argv` with only the program preloaded (a nested env, as LibraryCheckTests does).
private func runPreloaded(_ argv: [String], environment: [String: String] = [:], preload: String? = nil,
                          timeout: TimeInterval = 120) throws -> Harness.Result {
    try Harness.run(["env", "LD_PRELOAD=\(try preload ?? Harness.library)"] + argv, environment: environment, timeout: timeout)
}

/// A JSON document as a dictionary.
private func parse(_ text: String, _ what: String) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
    return try #require(object as? [String: Any], "\(what) is not a JSON object")
}

/// The profile's frames are `MODULE+0xOFFSET` (the library looks up no symbol inside malloc;
/// buddy-report names them offline): the function of `program` a frame of it lies in, from
/// `nm -n` (a PIE's first segment is at 0, so the offset is the address `nm` gives); the frame
/// as it is for other modules.
private func nameFrames(_ frames: [String], in program: String) throws -> [String] {
    let listing = try Harness.run(["nm", "-n", "--defined-only", program]).stdout
    let symbols: [(UInt64, String)] = listing.split(separator: "\n").compactMap { line in
        let parts = line.split(separator: " ")
        guard parts.count == 3, "tTwW".contains(parts[1]), let address = UInt64(parts[0], radix: 16) else { return nil }
        return (address, String(parts[2]))
    }
    return frames.map { frame in
        guard frame.hasPrefix(program + "+0x"), let offset = UInt64(frame.dropFirst(program.count + 3), radix: 16) else { return frame }
        // A return address: the call lies at the byte before it.
        guard let symbol = symbols.last(where: { $0.0 <= offset &- 1 }) else { return frame }
        return "\(symbol.1)+0x\(String(offset - symbol.0, radix: 16))"
    }
}

private func int(_ value: Any?) -> Int { (value as? NSNumber)?.intValue ?? -1 }
private func double(_ value: Any?) -> Double { (value as? NSNumber)?.doubleValue ?? -1 }
private func object(_ d: [String: Any], _ key: String) -> [String: Any] { d[key] as? [String: Any] ?? [:] }

/// The report files of a folder (name -> text), the exit report being report.<pid>.
private func reportFiles(_ folder: URL) throws -> [String: String] {
    var files: [String: String] = [:]
    for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) where name.hasPrefix("report.") {
        files[name] = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
    }
    return files
}

/// The schema's invariants every report holds (version 1).
private func checkDocument(_ d: [String: Any], _ what: String, exact: Bool) {
    #expect(d["format"] as? String == "buddymalloc-report" && int(d["version"]) == 1, "\(what): format/version: \(d["format"] ?? "nil") \(d["version"] ?? "nil")")
    for key in ["pid", "program", "reason", "sequence", "pool", "time", "config", "memory", "calls", "failures", "errors",
                "system", "segments", "orders", "slab_classes", "sizes", "alignments", "latency", "health", "profile", "bad_pointers"] {
        #expect(d[key] != nil, "\(what): no \"\(key)\"")
    }
    let memory = object(d, "memory")
    let reserved = int(memory["reserved"]), used = int(memory["used"]), cached = int(memory["cached"]), free = int(memory["free"])
    #expect(reserved > 0 && reserved == used + cached + free, "\(what): reserved \(reserved) != used \(used) + cached \(cached) + free \(free)")
    let orders = d["orders"] as? [[String: Any]] ?? []
    #expect(orders.count == 20, "\(what): \(orders.count) orders for 16 B ... 8 MiB (the default blocks)")
    // free = free blocks + slabs' spare bytes; used = live blocks + live slab objects.
    let slabs = d["slab_classes"] as? [[String: Any]] ?? []
    #expect(slabs.count == 43, "\(what): \(slabs.count) slab classes (8 under 1 KiB, 7 per doubling from 1 KiB to 32 KiB)")
    let liveBytes = orders.reduce(0) { $0 + int($1["live"]) * int($1["block_size"]) }
        + slabs.reduce(0) { $0 + int($1["live"]) * int($1["object_size"]) }
    let freeBytes = orders.reduce(0) { $0 + int($1["free"]) * int($1["block_size"]) }
    #expect(freeBytes + int(memory["slab_spare"]) == free,
            "\(what): free blocks per order hold \(freeBytes) B + slab spare \(int(memory["slab_spare"])), memory.free says \(free)")
    if exact {
        #expect(liveBytes == used, "\(what): live blocks and slab objects hold \(liveBytes) B, memory.used says \(used)")
        let live = orders.reduce(0) { $0 + int($1["live"]) } + slabs.reduce(0) { $0 + int($1["live"]) }
        #expect(live == int(memory["live_allocations"]), "\(what): live_allocations")
    }
    // Resident memory explained: the segments' resident bytes, part by part.
    let resident = object(d, "resident")
    let parts = ["used", "cached", "slab_spare", "free"].reduce(0) { $0 + int(resident[$1]) }
    #expect(parts == int(memory["resident"]), "\(what): resident parts \(resident) sum to \(parts), memory.resident says \(int(memory["resident"]))")
    let status = object(d, "health")["status"] as? String ?? ""
    #expect(["HEALTHY", "WARNING", "CRITICAL"].contains(status), "\(what): health \(status)")
    #expect(double(memory["usage"]) >= 0 && double(memory["usage"]) <= 1, "\(what): usage")
    #expect(double(memory["external_fragmentation"]) >= 0 && double(memory["external_fragmentation"]) < 1, "\(what): external fragmentation")
}

/// The debug library, and the release one of the same build folder when it is up to date.
private enum ReportLibraries {
    static var all: [String] {
        var list = [(try? Harness.library) ?? Harness.binDirectory.appendingPathComponent("libBuddyMalloc.so").path]
        let release = Harness.binDirectory.deletingLastPathComponent().appendingPathComponent("release/libBuddyMalloc.so").path
        let sources = Harness.packageRoot.appendingPathComponent("Sources").path
        if let built = modified(release) {
            let files = FileManager.default.enumerator(atPath: sources)?.compactMap { $0 as? String } ?? []
            let newest = files.compactMap { modified(sources + "/" + $0) }.max()
            if newest.map({ built >= $0 }) ?? true { list.append(release) }
        }
        return list
    }

    private static func modified(_ path: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
    }
}

@Suite("Reports")
struct ReportTests {
    @Test("python3 writes a JSON report at exit that parses and counts its allocations")
    func pythonJSONReport() throws {
        guard Harness.has("python3") else { return }
        let folder = try Harness.temporaryDirectory()
        let result = try runPreloaded(["python3", "-c", "import json; print(len(json.dumps([list(range(i)) for i in range(300)])))"],
                                      environment: ["PYTHONMALLOC": "malloc", "BUDDY_REPORT_FORMAT": "json",
                                                    "BUDDY_REPORT": folder.appendingPathComponent("report.%p").path])
        #expect(result.status == 0, "python3: \(result.status)\n\(result.stderr)")
        let documents = try reportFiles(folder).map { try parse($0.value, $0.key) }
        // (python3 may be a wrapper script: its shell writes a report of its own.)
        let python = try #require(documents.first { ($0["program"] as? String ?? "").hasPrefix("python") },
                                  "no report from python among \(documents.map { $0["program"] ?? "?" })")
        checkDocument(python, "python's exit report", exact: true)
        #expect(python["reason"] as? String == "exit")
        #expect(python["pool"] as? String == "process")
        let calls = object(python, "calls")
        #expect(int(calls["malloc"]) > 1000 && int(calls["free"]) > 1000 && int(calls["realloc"]) > 0,
                "python's allocations were not counted: \(calls)")
        let orders = python["orders"] as? [[String: Any]] ?? []
        #expect(orders.reduce(0) { $0 + int($1["allocations"]) } > 1000)
        #expect(orders.reduce(0) { $0 + int($1["splits"]) } > 0)
        let sizes = python["sizes"] as? [[String: Any]] ?? []
        #expect(sizes.reduce(0) { $0 + int($1["count"]) } >= orders.reduce(0) { $0 + int($1["allocations"]) })
        let time = object(python, "time")
        #expect(double(time["now"]) >= double(time["created"]) && double(time["created"]) > 1.6e9, "time: \(time)")
        let latency = object(python, "latency")
        #expect(latency["mode"] as? String == "sampled" && int(latency["sample_period"]) == 1024 && int(latency["samples"]) > 0,
                "latency: \(latency)")
        #expect(int(object(python, "memory")["resident"]) > 0)
    }

    @Test("BUDDY_STATS_LATENCY=sampled:N times one malloc in N and the free after it")
    func sampledLatencyPeriod() throws {
        let result = try runPreloaded([try program("report_double_free", ["-fno-omit-frame-pointer", "-rdynamic"]), "clean"],
                                      environment: ["BUDDY_REPORT": "stderr", "BUDDY_STATS_LATENCY": "sampled:2"])
        #expect(result.status == 0, "\(result.stderr)")
        let line = result.stderr.split(separator: "\n").first { $0.hasPrefix("  latency ") }.map(String.init) ?? ""
        // Both halves measured: mallocs, and the frees each sampled malloc arms.
        #expect(line.hasPrefix("  latency     1 malloc in 2: allocations avg ") && line.contains("frees avg "), "\(result.stderr)")
        let bad = try runPreloaded([try program("report_double_free", ["-fno-omit-frame-pointer", "-rdynamic"]), "clean"],
                                   environment: ["BUDDY_REPORT": "stderr", "BUDDY_STATS_LATENCY": "sampled:0"])
        #expect(bad.stderr.contains("BUDDY_STATS_LATENCY") && bad.stderr.contains("sampled:N"), "\(bad.stderr)")
    }

    @Test("sampled latency times one malloc in the period and the free after it; a thread that only frees is timed too")
    func sampledLatencyFollowsMallocs() throws {
        let driver = try program("report_latency")
        let environment = ["BUDDY_REPORT": "stderr", "BUDDY_REPORT_FORMAT": "json"]
        // Random sizes overflow and empty the bins every hundred calls or so. Each flush used to
        // arm a timed free: about seven frees timed for each malloc timed.
        let churn = try runPreloaded([driver, "churn", "1000000"], environment: environment)
        #expect(churn.status == 0, "\(churn.stderr)")
        let latency = object(try parse(String(churn.stderr.drop { $0 != "{" }), "churn's JSON"), "latency")
        let mallocs = int(latency["alloc_samples"]), frees = int(latency["free_samples"])
        #expect(mallocs >= 900 && mallocs <= 1100, "one malloc in 1024 of about 1,004,000: \(latency)")
        #expect(frees <= mallocs + mallocs / 8 + 8, "frees timed beyond the mallocs timed: \(latency)")
        #expect(frees >= mallocs / 2, "the free after a timed malloc is timed: \(latency)")
        // The consumer never allocates: only its flushes arm its timed frees.
        let consumer = try runPreloaded([driver, "consumer", "100000"], environment: environment)
        #expect(consumer.status == 0, "\(consumer.stderr)")
        let consumed = object(try parse(String(consumer.stderr.drop { $0 != "{" }), "consumer's JSON"), "latency")
        #expect(int(consumed["alloc_samples"]) >= 90, "\(consumed)")
        #expect(int(consumed["free_samples"]) > 0 && int(consumed["free_samples"]) <= 2 * 100_000 / 1024 + 16,
                "about one free in 1024 timed: \(consumed)")
    }

    @Test("the text report at exit has its summary lines and the per-order table")
    func textReport() throws {
        let result = try runPreloaded([try program("report_double_free", ["-fno-omit-frame-pointer", "-rdynamic"]), "clean"], environment: ["BUDDY_REPORT": "stderr"])
        #expect(result.status == 0, "\(result.stderr)")
        for line in ["BuddyMalloc report, pid ", "  health      HEALTHY: usage ", "  calls       allocations ",
                     "  entries     malloc ", "  errors      invalid pointers 0, double frees 0",
                     "  order   block     live     free   cached  allocations        frees     splits  coalesces",
                     "  latency     1 malloc in 1024: ", "  bad pointers 0"] {
            #expect(result.stderr.contains(line), "no \"\(line)\" in:\n\(result.stderr)")
        }
        let json = try runPreloaded([try program("report_double_free", ["-fno-omit-frame-pointer", "-rdynamic"]), "clean"],
                                    environment: ["BUDDY_REPORT": "stderr", "BUDDY_REPORT_FORMAT": "json", "BUDDY_STATS_LATENCY": "off"])
        let document = try parse(String(json.stderr.drop { $0 != "{" }), "stderr JSON")
        checkDocument(document, "stderr JSON", exact: true)
        #expect(object(document, "latency")["mode"] as? String == "off" && int(object(document, "latency")["samples"]) == 0)
    }

    @Test("the resident bytes are explained: the program's, the free ones it wrote, the oversize ones, the process's")
    func residentMemoryExplained() throws {
        let result = try runPreloaded([try program("report_resident")],
                                      environment: ["BUDDY_REPORT": "stderr", "BUDDY_REPORT_FORMAT": "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let document = try parse(String(result.stderr.drop { $0 != "{" }), "report_resident's JSON")
        checkDocument(document, "report_resident", exact: true)
        let r = object(document, "resident")
        let mib = 1 << 20
        // 8 MiB of written 4 KiB blocks held; the untouched 4 MiB block adds at most its first
        // page (a free-list link was written there while it was free).
        #expect(int(r["used"]) >= 8 * mib && int(r["used"]) < 8 * mib + mib, "used: \(r)")
        // The 8 MiB freed stay resident until given back: in caches, the depot or free blocks.
        #expect(int(r["cached"]) + int(r["free"]) >= 8 * mib - 64 * 1024, "freed: \(r)")
        // 8 MiB of the oversize block written (its pages exactly).
        #expect(int(r["oversize"]) >= 8 * mib && int(r["oversize"]) <= 8 * mib + 64 * 1024, "oversize: \(r)")
        #expect(int(r["metadata"]) > 0)
        // The process holds all of it and more (its code, stack, libraries).
        let inside = int(object(document, "memory")["resident"]) + int(r["metadata"]) + int(r["oversize"]) + int(r["retained"])
        #expect(int(r["process"]) >= inside && int(r["outside"]) == int(r["process"]) - inside, "process: \(r)")
    }

    /// The segments a phase of small blocks emptied serve the next phase's large blocks
    /// (BuddyEngine.takeFromEmptySegment): the pool's resident memory stays near one phase's, not
    /// one phase's per size class. (Mapping a segment per class: 56 MiB resident for 24 MiB
    /// phases, in 4 segments; reusing them: 32 MiB, in 3.)
    @Test("a program that moves through sizes reuses the segments an earlier size emptied")
    func sizePhasesReuseSegments() throws {
        let result = try runPreloaded([try program("size_phases"), "4"],
                                      environment: ["BUDDY_REPORT": "stderr", "BUDDY_REPORT_FORMAT": "json"])
        #expect(result.status == 0 && result.stdout.contains("size_phases: ok"), "\(result.stderr)")
        let document = try parse(String(result.stderr.drop { $0 != "{" }), "size_phases' JSON")
        let memory = object(document, "memory")
        let resident = int(memory["resident"]), peak = int(memory["peak_used"])
        #expect(peak >= 24 << 20, "peak used: \(memory)")
        #expect(resident <= peak + peak / 2, "resident \(resident) B for a peak of \(peak) B: \(object(document, "segments"))")
    }

    @Test("20 SIGUSR1 to a busy multithreaded program: complete reports, and the program keeps working")
    func signalReports() throws {
        let folder = try Harness.temporaryDirectory()
        let ready = folder.appendingPathComponent("ready")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["LD_PRELOAD=\(try Harness.library)", try program("report_threads"), "6", "3", ready.path]
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "LD_PRELOAD")
        environment["BUDDY_REPORT"] = folder.appendingPathComponent("report.%p").path
        environment["BUDDY_REPORT_FORMAT"] = "json"
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        // Wait for the pid, not for the file: the driver creates it (fopen) before it writes it.
        func readyPid() -> Int32? {
            Int32(((try? String(contentsOf: ready, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let start = Date()
        while readyPid() == nil && process.isRunning && Date().timeIntervalSince(start) < 30 {
            usleep(5_000)
        }
        let pidText = (try? String(contentsOf: ready, encoding: .utf8)) ?? ""
        let pid = try #require(Int32(pidText.trimmingCharacters(in: .whitespacesAndNewlines)), "the driver did not start: \(pidText)")
        var sent = 0
        for _ in 0..<20 where process.isRunning {
            kill(pid, SIGUSR1)
            sent += 1
            usleep(60_000)
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(sent == 20, "the program ended before the 20 signals were sent")
        #expect(process.terminationReason == .exit && process.terminationStatus == 0, "status \(process.terminationStatus):\n\(text)")
        #expect(text.contains("threads ok 6"), "\(text)")
        let files = try reportFiles(folder)
        let signalFiles = files.filter { $0.key.hasPrefix("report.\(pid).") && !$0.key.contains(".tmp") }
        // Signals that arrive while a report is being written share it: at least some, never torn.
        #expect(signalFiles.count >= 5 && signalFiles.count <= 20, "\(signalFiles.count) signal reports: \(files.keys.sorted())")
        var sequences = Set<Int>()
        for (name, body) in signalFiles {
            let document = try parse(body, name)
            checkDocument(document, name, exact: false)
            #expect(document["reason"] as? String == "signal", "\(name): reason \(document["reason"] ?? "nil")")
            #expect(int(document["pid"]) == Int(pid))
            sequences.insert(int(document["sequence"]))
            #expect(name == "report.\(pid).\(int(document["sequence"]))", "\(name) holds sequence \(int(document["sequence"]))")
        }
        #expect(sequences.count == signalFiles.count)
        let exit = try parse(try #require(files["report.\(pid)"], "no exit report: \(files.keys.sorted())"), "exit report")
        checkDocument(exit, "exit report", exact: true)
        #expect(exit["reason"] as? String == "exit" && int(exit["sequence"]) == signalFiles.count)
        #expect(int(object(exit, "calls")["malloc"]) > 10_000)
    }

    @Test("signal reports on stderr: one complete text report per signal, then the exit report")
    func signalReportsOnStderr() throws {
        let result = try runPreloaded([try program("report_handlers"), "earlier"],
                                      environment: ["BUDDY_REPORT": "stderr", "BUDDY_REPORT_SIGNAL": "SIGUSR1"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains(": signal, report #0\n") && result.stderr.contains(": exit, report #1\n"), "\(result.stderr)")
        #expect(result.stderr.components(separatedBy: "  order   block").count == 3, "\(result.stderr)")
        // none: the signal keeps its default action (the driver dies of it).
        let none = try runPreloaded([try program("report_handlers"), "earlier"],
                                    environment: ["BUDDY_REPORT": "stderr", "BUDDY_REPORT_SIGNAL": "none"])
        #expect(none.signal == SIGUSR1, "BUDDY_REPORT_SIGNAL=none: status \(none.status) signal \(none.signal)")
    }

    /// A process that starts with the report signal ignored keeps it ignored (exec passes SIG_IGN
    /// on: a parent, a `trap '' USR1` or a supervisor chose it): the library installs no handler,
    /// so the signal is discarded as before and interrupts no sleep; that process writes no signal
    /// report. The control, without the trap, writes one.
    @Test("a report signal the process started with ignored stays ignored")
    func inheritedIgnoredSignalStaysIgnored() throws {
        for ignored in [true, false] {
            let folder = try Harness.temporaryDirectory()
            let command = (ignored ? "trap '' USR1; " : "") + "exec \"$@\""
            let result = try Harness.run(["sh", "-c", command, "sh", "env", "LD_PRELOAD=\(try Harness.library)",
                                          try program("report_handlers"), "earlier"],
                                         environment: ["BUDDY_REPORT": folder.appendingPathComponent("report.%p").path],
                                         timeout: 120)
            let what = ignored ? "started with SIGUSR1 ignored" : "control"
            #expect(result.status == 0 && result.signal == 0 && result.stdout.contains("program handler ran 0"),
                    "\(what): status \(result.status) signal \(result.signal): \(result.stdout)\(result.stderr)")
            let names = try reportFiles(folder).keys.sorted()
            #expect(names.count == (ignored ? 1 : 2), "\(what): reports \(names)")
            #expect(names.contains { $0.hasSuffix(".0") } == !ignored, "\(what): a signal report? \(names)")
        }
    }

    @Test("a handler the program installs later takes precedence; one installed before the library is chained")
    func signalHandlerChaining() throws {
        let folder = try Harness.temporaryDirectory()
        let environment = ["BUDDY_REPORT": folder.appendingPathComponent("report.%p").path]
        let later = try runPreloaded([try program("report_handlers"), "later"], environment: environment)
        #expect(later.status == 0 && later.stdout.contains("program handler ran 1"), "\(later.stdout)\(later.stderr)")
        let afterLater = try reportFiles(folder).keys.sorted()
        #expect(afterLater.count == 1, "a signal report despite the program's own handler: \(afterLater)")

        // A library whose constructor runs before libBuddyMalloc.so's installs the first handler.
        let handlerLibrary = folder.appendingPathComponent("libreport_handler.so").path
        let source = Harness.packageRoot.appendingPathComponent("Tests/Programs/report_handlers.c").path
        let build = try Harness.run(["gcc", "-O2", "-shared", "-fPIC", "-DHANDLER_LIBRARY", "-o", handlerLibrary, source])
        try #require(build.status == 0, "gcc: \(build.stderr)")
        let second = try Harness.temporaryDirectory()
        let earlier = try runPreloaded([try program("report_handlers"), "earlier"],
                                       environment: ["BUDDY_REPORT": second.appendingPathComponent("report.%p").path],
                                       preload: "\(try Harness.library) \(handlerLibrary)")
        #expect(earlier.status == 0 && earlier.stdout.contains("early handler ran"), "\(earlier.stdout)\(earlier.stderr)")
        let names = try reportFiles(second).keys.sorted()
        #expect(names.count == 2 && names.contains { $0.hasSuffix(".0") }, "expected the exit and one signal report: \(names)")
    }

    @Test("BUDDY_REPORT_INTERVAL writes a series of complete reports while the program runs")
    func periodicReports() throws {
        let folder = try Harness.temporaryDirectory()
        let result = try runPreloaded([try program("report_threads"), "3", "1.5", folder.appendingPathComponent("ready").path],
                                      environment: ["BUDDY_REPORT": folder.appendingPathComponent("report.%p").path,
                                                    "BUDDY_REPORT_FORMAT": "json", "BUDDY_REPORT_INTERVAL": "0.25"])
        #expect(result.status == 0 && result.stdout.contains("threads ok 3"), "\(result.stdout)\(result.stderr)")
        let files = try reportFiles(folder)
        var uptimes: [(Int, Double)] = []
        for (name, body) in files {
            let document = try parse(body, name)
            checkDocument(document, name, exact: false)
            if document["reason"] as? String == "interval" {
                uptimes.append((int(document["sequence"]), double(object(document, "time")["uptime"])))
            } else {
                #expect(document["reason"] as? String == "exit", "\(name): \(document["reason"] ?? "nil")")
            }
        }
        #expect(uptimes.count >= 3, "\(uptimes.count) interval reports in \(files.keys.sorted())")
        let ordered = uptimes.sorted { $0.0 < $1.0 }.map(\.1)
        #expect(ordered == ordered.sorted(), "uptimes out of order: \(ordered)")
    }

    @Test("a double free is logged with the call stack that freed twice, and kept in the report")
    func doubleFreeBacktrace() throws {
        let driver = try program("report_double_free", ["-fno-omit-frame-pointer", "-rdynamic"])
        let aborted = try runPreloaded([driver])
        #expect(aborted.signal == SIGABRT, "status \(aborted.status) signal \(aborted.signal)\n\(aborted.stderr)")
        let lines = aborted.stderr.split(separator: "\n").map(String.init)
        let message = try #require(lines.firstIndex { $0.hasPrefix("buddy: free(): double free of ") }, "\(aborted.stderr)")
        let frames = lines[(message + 1)...].prefix { $0.hasPrefix("    #") }
        #expect(frames.first?.contains("release_twice+0x") == true, "the first frame is not the function that freed twice:\n\(aborted.stderr)")
        #expect(frames.contains { $0.contains("caller_of_the_bad_free") } && frames.contains { $0.contains("main+") },
                "\(aborted.stderr)")
        #expect(lines.filter { $0.hasPrefix("buddy:") }.count == 1, "\(aborted.stderr)")

        let folder = try Harness.temporaryDirectory()
        for mode in ["double", "interior"] {
            let path = folder.appendingPathComponent("report.\(mode)").path
            let logged = try runPreloaded([driver] + (mode == "interior" ? ["interior"] : []),
                                          environment: ["BUDDY_ON_ERROR": "log", "BUDDY_REPORT": path, "BUDDY_REPORT_FORMAT": "json"])
            #expect(logged.status == 0 && logged.stdout.contains("survived"), "\(mode): \(logged.stdout)\(logged.stderr)")
            let document = try parse(try String(contentsOfFile: path, encoding: .utf8), mode)
            let bad = try #require((document["bad_pointers"] as? [[String: Any]])?.first, "\(mode): no bad_pointers")
            #expect(bad["kind"] as? String == (mode == "interior" ? "invalid_pointer" : "double_free"), "\(bad)")
            #expect(bad["function"] as? String == "free")
            let recorded = bad["frames"] as? [String] ?? []
            let function = mode == "interior" ? "release_inside+0x" : "release_twice+0x"
            #expect(recorded.first?.hasPrefix(function) == true, "\(mode): frames \(recorded)")
            #expect(logged.stdout.contains("pointer \(bad["pointer"] as? String ?? "?")"), "\(mode): \(bad) vs \(logged.stdout)")
            #expect(object(document, "health")["status"] as? String == "CRITICAL")
            let errors = object(document, "errors")
            #expect(int(errors[mode == "interior" ? "invalid_pointer" : "double_free"]) == 1, "\(errors)")
        }
    }

    @Test("BUDDY_PROFILE_SAMPLE lists the allocation site holding the live bytes, not the ones that freed theirs")
    func allocationProfile() throws {
        let driver = try program("report_profile", ["-fno-omit-frame-pointer", "-rdynamic"])
        let folder = try Harness.temporaryDirectory()
        let path = folder.appendingPathComponent("report").path
        let result = try runPreloaded([driver], environment: ["BUDDY_PROFILE_SAMPLE": "64K", "BUDDY_REPORT": path, "BUDDY_REPORT_FORMAT": "json"])
        #expect(result.status == 0 && result.stdout.contains("profile ok"), "\(result.stdout)\(result.stderr)")
        let document = try parse(try String(contentsOfFile: path, encoding: .utf8), "profile report")
        checkDocument(document, "profile report", exact: true)
        let profile = object(document, "profile")
        #expect(int(profile["sample_bytes"]) == 65536)
        let sites = profile["sites"] as? [[String: Any]] ?? []
        let top = try #require(sites.first, "no sites: \(profile)")
        let frames = try nameFrames(top["frames"] as? [String] ?? [], in: driver)
        #expect(frames.first?.hasPrefix("keep_large_blocks+0x") == true, "top site: \(top)")
        // 200 blocks of 64 KiB, each sampled (64 KiB >= the period): 12.5 MiB, exactly.
        #expect(int(top["live_bytes"]) == 200 * 65536 && int(top["live_count"]) == 200, "\(top)")
        let live = sites.reduce(0) { $0 + int($1["live_bytes"]) }
        #expect(live < 200 * 65536 + 4 * 65536, "freed samples still counted: \(sites)")
        #expect(try !sites.contains { try nameFrames($0["frames"] as? [String] ?? [], in: driver).contains { $0.hasPrefix("churn_small_blocks") } },
                "a site that freed everything is listed: \(sites)")
        let text = try runPreloaded([driver], environment: ["BUDDY_PROFILE_SAMPLE": "64K", "BUDDY_REPORT": "stderr"])
        let first = frames.first.map { _ in (top["frames"] as? [String] ?? [])[0] } ?? "?"
        #expect(text.stderr.contains("  profile     one sample per 64.0K allocated") && text.stderr.contains("12.5M in about 200 blocks (200 samples live)")
                && text.stderr.contains("#0 \(first)"), "\(text.stderr)")
    }

    @Test("without libunwind (glibc's backtrace), the profile's sites are still the program's")
    func profileWithoutLibunwind() throws {
        let driver = try program("report_profile", ["-fno-omit-frame-pointer", "-rdynamic"])
        let hide = try program("no_libunwind", ["-shared", "-fPIC"])
        let path = try Harness.temporaryDirectory().appendingPathComponent("report").path
        let result = try runPreloaded([driver], environment: ["BUDDY_PROFILE_SAMPLE": "64K", "BUDDY_REPORT": path, "BUDDY_REPORT_FORMAT": "json"],
                                      preload: "\(hide):\(try Harness.library)")
        #expect(result.status == 0 && result.stdout.contains("profile ok"), "\(result.stdout)\(result.stderr)")
        let document = try parse(try String(contentsOfFile: path, encoding: .utf8), "profile report")
        let sites = object(document, "profile")["sites"] as? [[String: Any]] ?? []
        let top = try #require(sites.first, "no sites: \(document)")
        let frames = try nameFrames(top["frames"] as? [String] ?? [], in: driver)
        // The program's function, not the allocator's: at least the frame that called malloc.
        #expect(frames.first?.hasPrefix("keep_large_blocks+0x") == true, "top site: \(top)")
        #expect(int(top["live_bytes"]) == 200 * 65536, "\(top)")
    }

    @Test("a thread's first malloc, which makes its cache, is profiled too")
    func aThreadsFirstCallIsProfiled() throws {
        let driver = try program("profile_first_call", ["-fno-omit-frame-pointer", "-rdynamic"])
        let path = try Harness.temporaryDirectory().appendingPathComponent("report").path
        let result = try runPreloaded([driver], environment: ["BUDDY_PROFILE_SAMPLE": "64K", "BUDDY_REPORT": path, "BUDDY_REPORT_FORMAT": "json"])
        #expect(result.status == 0 && result.stdout.contains("first call ok"), "\(result.stdout)\(result.stderr)")
        let document = try parse(try String(contentsOfFile: path, encoding: .utf8), "first-call report")
        let sites = object(document, "profile")["sites"] as? [[String: Any]] ?? []
        // One block of 300,000 bytes (more than the period: always sampled, standing for itself).
        let site = try sites.first { try nameFrames($0["frames"] as? [String] ?? [], in: driver).first?.hasPrefix("first_in_thread+0x") == true }
        #expect(site.map { int($0["live_bytes"]) } == 300_000 && site.map { int($0["live_count"]) } == 1, "sites: \(sites)")
    }

    @Test("the profile's per-site bytes follow the sites' bytes on a repeating pattern of allocations")
    func profileFollowsBytesOnARepeatingPattern() throws {
        let driver = try program("profile_pattern", ["-fno-omit-frame-pointer", "-fno-optimize-sibling-calls", "-rdynamic"])
        let path = try Harness.temporaryDirectory().appendingPathComponent("report").path
        let result = try runPreloaded([driver], environment: ["BUDDY_PROFILE_SAMPLE": "4K", "BUDDY_REPORT": path, "BUDDY_REPORT_FORMAT": "json"])
        #expect(result.status == 0 && result.stdout.contains("pattern ok"), "\(result.stdout)\(result.stderr)")
        let document = try parse(try String(contentsOfFile: path, encoding: .utf8), "pattern report")
        // The parent (buddy-report's process trees): this test process, which started the driver.
        #expect(int(document["ppid"]) == Int(getpid()), "ppid \(String(describing: document["ppid"]))")
        let sites = object(document, "profile")["sites"] as? [[String: Any]] ?? []
        let named = try sites.map { try nameFrames($0["frames"] as? [String] ?? [], in: driver) }
        func estimate(_ function: String, _ key: String = "live_bytes") -> Int {
            zip(sites, named).filter { $0.1.contains { $0.hasPrefix(function + "+0x") } }
                .reduce(0) { $0 + int($1.0[key]) }
        }
        // About 14,000 samples in all, 470 of them for the smallest site: each estimate within
        // 20% of the truth (over 4 standard errors). A countdown that restarted at each sample
        // gave the three sites equal samples: 48-byte blocks estimated at several times their bytes.
        for (function, size) in [("site_small", 48), ("site_medium", 400), ("site_large", 1000)] {
            let truth = 40000 * size
            let got = estimate(function)
            #expect(abs(got - truth) < truth / 5, "\(function): estimated \(got) bytes, held \(truth)")
            // The blocks: each site holds 40,000 (a sample of s bytes stands for max(s, P) / s).
            let blocks = estimate(function, "live_blocks")
            #expect(abs(blocks - 40000) < 8000, "\(function): estimated \(blocks) blocks, holds 40000")
            #expect(estimate(function, "allocated_bytes") == got, "nothing was freed: allocated == live")
        }
        // The modules of the frames, for offline symbolization: the program by its own file's
        // absolute path and its build-id (as readelf reads it from the file).
        let modules = object(document, "profile")["modules"] as? [[String: Any]] ?? []
        let program = try #require(modules.first { ($0["path"] as? String) == driver }, "modules: \(modules)")
        let notes = try Harness.run(["readelf", "-n", driver])
        let buildId = try #require(program["build_id"] as? String)
        #expect(buildId.count == 40 && notes.stdout.contains("Build ID: \(buildId)"), "\(program) vs \(notes.stdout)")
        #expect(modules.contains { ($0["path"] as? String)?.contains("libc.so") == true })
    }

    @Test("glibc's introspection calls and buddy_stats_get answer from the pool's statistics")
    func introspection() throws {
        let result = try runPreloaded([try program("report_introspection", includeFlags)], environment: ["BUDDY_RELEASE_DELAY": "1000"])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        var values: [String: Int] = [:]
        for line in result.stdout.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count >= 2, let v = Int(parts[1]) ?? Int(parts[1], radix: 16) { values[String(parts[0])] = v }
        }
        #expect(values["stats_get"] == 0 && values["stats.version"] == 1 && values["null_get"] == -1)
        let used = try #require(values["stats.used"])
        #expect(used > 200 * 128 + 10 * 65536 && used == values["stats.live_bytes"], "\(values)")
        #expect(values["mallinfo2.uordblks"] == used && values["mallinfo.uordblks"] == used, "\(values)")
        #expect(values["mallinfo2.arena"] == values["stats.reserved"] && values["mallinfo.arena"] == values["stats.reserved"])
        #expect(values["mallinfo2.fordblks"] == (values["stats.free"] ?? 0) + (values["stats.cached"] ?? 0))
        #expect(values["mallinfo2.fsmblks"] == values["stats.cached"])
        #expect(values["stats.calls.posix_memalign"] == 1 && values["stats.alignment.4096"] == 1, "\(values)")
        // Per-thread counts: of threads that exited (folded) and of one still running (summed).
        #expect(values["stats.alignment.64"] == 3000 && values["stats.alignment.16"] == 500, "\(values)")
        #expect(values["realloc.reuse"] == 1, "realloc's old block did not come back from the cache: \(values)")
        #expect(values["small_get"] == 0 && values["small.size"] == 16, "an old 16-byte struct: \(values)")
        #expect(result.stdout.contains("small.canary 5a5a5a5a5a5a5a5a"), "buddy_stats_get wrote past the caller's size")
        // malloc_stats in glibc's shape, with our figures.
        #expect(result.stderr.contains("Arena 0:\nsystem bytes     = ") && result.stderr.contains(String(format: "in use bytes     = %10d\n", used)),
                "\(result.stderr)")
        #expect(values["malloc_info"] == 0 && result.stdout.contains("malloc_info_bad_options -1 1"), "\(result.stdout)")
        for tag in ["<malloc version=\"1\">", "<heap nr=\"0\">", "<size from=\"", "<total type=\"fast\" count=\"", "</malloc>"] {
            #expect(result.stdout.contains("xml \(tag)") || result.stdout.contains("xml   \(tag)"), "no \(tag) in malloc_info's XML:\n\(result.stdout)")
        }
        // malloc_trim gave memory back.
        #expect(values["malloc_trim"] == 1 && (values["released_after"] ?? 0) > (values["released_before"] ?? 0), "\(values)")
        #expect((values["resident_after"] ?? .max) < (values["resident_before"] ?? 0), "\(values)")
        // buddy_report_write.
        let json = result.stdout.components(separatedBy: "json-begin\n").last?.components(separatedBy: "report_write").first ?? ""
        let document = try parse(json, "buddy_report_write")
        checkDocument(document, "buddy_report_write", exact: true)
        #expect(document["reason"] as? String == "api" && values["report_write"] == 0 && values["report_write_bad_format"] == -1)
    }

    @Test("peak_live_allocations: exact with one thread; with T threads within (T - 1) x C of the true peak")
    func peakLiveAllocations() throws {
        let driver = try program("report_peak", includeFlags)
        func figures(_ result: Harness.Result) -> [String: Int] {
            var values: [String: Int] = [:]
            for line in result.stdout.split(separator: "\n") {
                let parts = line.split(separator: " ")
                if parts.count == 2, let v = Int(parts[1]) { values[String(parts[0])] = v }
            }
            return values
        }
        // One thread: N blocks at once (mixed sizes, cached and not, malloc, calloc and
        // posix_memalign), all freed, then M < N: the peak is the count before plus N, exactly.
        let single = try runPreloaded([driver, "single", "5000", "2000"])
        #expect(single.status == 0, "single: \(single.status)\n\(single.stdout)\(single.stderr)")
        let one = figures(single)
        let base = try #require(one["baseline_live"], "\(single.stdout)")
        #expect(one["peak"].map { $0 - base } == 5000, "single thread: \(one)")
        #expect(one["live"].map { $0 - base } == 2000, "single thread: \(one)")

        // T threads that each hold K blocks (and the array of their pointers) at one moment: the
        // true peak is at least base + T x (K + 1), at most a few blocks more (the threads' own
        // glibc allocations), and the recorded one within (T - 1) x C of it (README, "The
        // figures"). C = 1 + sum over the bins of (limit + 1), with ThreadCache's limits
        // min(64, max(1, 32 KiB / block)) for the blocks of 16 B ... 32 KiB, and
        // min(64, max(1, 16 KiB / object)) for the 35 slab classes: 633.
        let orderBins = (0...11).reduce(0) { $0 + min(64, max(1, 32768 / (16 << $1))) + 1 }
        let slabBins = (0..<35).reduce(0) { total, c in
            let base = 1024 << (c / 7)
            return total + min(64, max(1, 16384 / (base + base / 8 * (c % 7 + 1)))) + 1
        }
        let capacity = 1 + orderBins + slabBins
        #expect(capacity == 633)
        let (t, k) = (4, 5000)
        let threads = try runPreloaded([driver, "threads", "\(t)", "\(k)"])
        #expect(threads.status == 0, "threads: \(threads.status)\n\(threads.stdout)\(threads.stderr)")
        let many = figures(threads)
        let start = try #require(many["baseline_live"], "\(threads.stdout)")
        let peak = try #require(many["peak"], "\(threads.stdout)")
        let held = start + t * (k + 1)
        let bound = (t - 1) * capacity
        #expect(peak >= held - bound && peak <= held + 4 * t + bound,
                "peak \(peak), held at once \(held) (+ up to \(4 * t) of glibc's), bound +-\(bound): \(many)")
    }

    @Test("the signal handler and the report writers reach no allocation function (check-malloc-path.py --roots)",
          arguments: ReportLibraries.all)
    func signalPathAllocatesNothing(_ library: String) throws {
        let checker = Harness.packageRoot.appendingPathComponent("tools/check-malloc-path.py").path
        let roots = "buddy_report_signal_handler,buddy_report_write,buddy_exit_report,buddy_stats_get"
        let result = try Harness.run(["python3", checker, "--roots", roots, library], timeout: 120)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let reached = result.stdout.split(separator: "\n").first { $0.contains("external reached") }.map(String.init) ?? ""
        let names = Set((reached.split(separator: ":", maxSplits: 1).last ?? "").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) })
        #expect(!names.isEmpty && names.contains("write"), "no external functions listed: \(result.stdout)")
        for forbidden in ["malloc", "calloc", "realloc", "free", "__libc_malloc", "__libc_calloc", "__libc_realloc",
                          "__libc_free", "__libc_memalign", "mmap", "dlopen", "dladdr", "snprintf", "fwrite",
                          "pthread_mutex_lock", "pthread_mutex_trylock", "pthread_mutex_unlock"] {
            #expect(!names.contains(forbidden), "\(forbidden) is reachable from the signal/report path: \(reached)")
        }
        // The library's own allocation entry points are not reachable either.
        let verbose = try Harness.run(["python3", checker, "--verbose", "--roots", roots, library], timeout: 120)
        for function in ["buddy_malloc", "buddy_calloc", "buddy_realloc", "buddy_free", "$s15BuddyMallocCore8allocate"] {
            #expect(!verbose.stdout.split(separator: "\n").contains { $0.hasPrefix("    \(function)") },
                    "\(function) is reachable from the signal/report path")
        }
    }
}
