import Foundation
import Synchronization
import Testing

// Where BUDDY_REPORT's reports land (README, "The report", "Where"): a regular file is replaced
// by rename from a temporary created beside it; a device or FIFO is written in place, never
// replaced; a symlink is followed as open(2) would; /dev/fd/N writes to the descriptor; what
// cannot be written safely is refused with one line on stderr; a closed stderr falls back to a
// file. Also: reports of a process tree on one stderr never interleave. Drivers:
// Tests/Programs/report_double_free.c (clean) and report_fork_stderr.c.

private let builds = Mutex<[String: String]>([:])

/// Harness.compileC caches a driver by name for the whole run, whichever suite builds it first:
/// build report_double_free with the flags ReportTests needs for its backtraces.
private func program(_ name: String) throws -> String {
    try builds.withLock { built in
        if let path = built[name] { return path }
        let path = try Harness.compileC(name, extraFlags: name == "report_double_free" ? ["-fno-omit-frame-pointer", "-rdynamic"] : [])
        built[name] = path
        return path
    }
}

/// The clean driver: a few hundred allocations, "survived" on stdout.
private func cleanDriver() throws -> String { try program("report_double_free") }

/// Runs the clean driver with BUDDY_REPORT=`target` (JSON) and only the driver preloaded.
private func runReporting(to target: String, extra: [String: String] = [:]) throws -> Harness.Result {
    var environment = ["BUDDY_REPORT": target, "BUDDY_REPORT_FORMAT": "json"]
    for (k, v) in extra { environment[k] = v }
    return try Harness.run(["env", "LD_PRELOAD=\(try Harness.library)", try cleanDriver(), "clean"],
                           environment: environment, timeout: 30)
}

/// Runs `script` with sh (the driver is "$0"), with the library preloaded: the script must
/// `exec` the driver, so that sh itself writes no report.
private func runScript(_ script: String, _ arguments: [String] = [], environment: [String: String]) throws -> Harness.Result {
    var env = environment
    env["LD_PRELOAD"] = try Harness.library
    return try Harness.run(["sh", "-c", script, try cleanDriver()] + arguments, environment: env, timeout: 30)
}

/// True when `text` is one complete JSON report of the clean driver's exit.
private func isExitReport(_ text: String) -> Bool {
    guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return false }
    return object["format"] as? String == "buddymalloc-report" && object["reason"] as? String == "exit"
}

private func fileType(_ path: String) -> mode_t? {
    var st = stat()
    guard lstat(path, &st) == 0 else { return nil }
    return st.st_mode & S_IFMT
}

private func inode(_ path: String) -> ino_t? {
    var st = stat()
    guard lstat(path, &st) == 0 else { return nil }
    return st.st_ino
}

private func contents(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

/// The allocator's own lines on stderr.
private func buddyLines(_ stderr: String) -> [String] {
    stderr.split(separator: "\n").map(String.init).filter { $0.hasPrefix("buddy:") }
}

/// Splits a stream of JSON documents at the top-level braces (outside strings); the text between
/// documents, if any besides white space, is returned as a piece of its own (so it fails to parse).
private func documents(in stream: String) -> [String] {
    var pieces: [String] = []
    var current: [UInt8] = []
    var depth = 0, inString = false, escaped = false
    for byte in Array(stream.utf8) {
        if depth == 0 && !inString {
            if byte == UInt8(ascii: "{") {
                if current.contains(where: { ![0x20, 0x0a, 0x0d, 0x09].contains($0) }) { pieces.append(String(decoding: current, as: UTF8.self)) }
                current = []
            }
        }
        current.append(byte)
        if inString {
            if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            continue
        }
        switch byte {
        case UInt8(ascii: "\""): inString = true
        case UInt8(ascii: "{"): depth += 1
        case UInt8(ascii: "}"):
            depth -= 1
            if depth == 0 { pieces.append(String(decoding: current, as: UTF8.self)); current = [] }
        default: break
        }
    }
    if current.contains(where: { ![0x20, 0x0a, 0x0d, 0x09].contains($0) }) { pieces.append(String(decoding: current, as: UTF8.self)) }
    return pieces
}

@Suite("Report destinations")
struct ReportDestinationTests {
    @Test("a regular file is replaced by rename from a new temporary beside it; a planted .tmp symlink is never followed")
    func regularFileAtomicRename() throws {
        let folder = try Harness.temporaryDirectory()
        let path = folder.appendingPathComponent("report").path
        try "old".write(toFile: path, atomically: false, encoding: .utf8)
        let before = try #require(inode(path))
        // A symlink at the old temporary name, pointing at a file that must stay untouched.
        let victim = folder.appendingPathComponent("victim").path
        try "precious".write(toFile: victim, atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: path + ".tmp", withDestinationPath: victim)
        let result = try runReporting(to: path)
        #expect(result.status == 0 && result.stdout.contains("survived"), "\(result.stdout)\(result.stderr)")
        #expect(isExitReport(contents(path)), "no report in \(path): \(contents(path).prefix(200))\n\(result.stderr)")
        #expect(fileType(path) == S_IFREG && inode(path) != before, "the report was not renamed into place")
        #expect(contents(victim) == "precious", "the planted \(path).tmp symlink was followed: \(contents(victim).prefix(100))")
        #expect(fileType(path + ".tmp") == S_IFLNK)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(names == ["report", "report.tmp", "victim"], "temporaries left behind: \(names)")
        #expect(buddyLines(result.stderr).isEmpty, "\(result.stderr)")
    }

    @Test("a symlink to a regular file: the target gets the report, the symlink stays a symlink")
    func symlinkToRegularFile() throws {
        let folder = try Harness.temporaryDirectory()
        let sub = folder.appendingPathComponent("sub")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        let target = folder.appendingPathComponent("target.json").path
        try "old".write(toFile: target, atomically: false, encoding: .utf8)
        // Absolute, relative (resolved from the link's own folder, not the current one), chained, dangling.
        let absolute = folder.appendingPathComponent("absolute").path
        try FileManager.default.createSymbolicLink(atPath: absolute, withDestinationPath: target)
        let relative = sub.appendingPathComponent("relative").path
        try FileManager.default.createSymbolicLink(atPath: relative, withDestinationPath: "../target.json")
        let chained = sub.appendingPathComponent("chained").path
        try FileManager.default.createSymbolicLink(atPath: chained, withDestinationPath: "relative")
        for link in [absolute, relative, chained] {
            try "old".write(toFile: target, atomically: false, encoding: .utf8)
            let result = try runReporting(to: link)
            #expect(result.status == 0, "\(link): \(result.stderr)")
            #expect(fileType(link) == S_IFLNK, "\(link) is no longer a symlink")
            #expect(isExitReport(contents(target)), "\(link): the target holds \(contents(target).prefix(100))\n\(result.stderr)")
            #expect(buddyLines(result.stderr).isEmpty, "\(link): \(result.stderr)")
        }
        let dangling = folder.appendingPathComponent("dangling").path
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: "created.json")
        let result = try runReporting(to: dangling)
        #expect(fileType(dangling) == S_IFLNK && isExitReport(contents(folder.appendingPathComponent("created.json").path)),
                "a dangling symlink: open(2) would create its target\n\(result.stderr)")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(names == ["absolute", "created.json", "dangling", "sub", "target.json"], "\(names)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: sub.path).sorted() == ["chained", "relative"])
    }

    @Test("devices are written in place, never replaced (a symlink to /dev/null, and a device node of our own)")
    func devicesStayDevices() throws {
        let folder = try Harness.temporaryDirectory()
        let link = folder.appendingPathComponent("null").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "/dev/null")
        let result = try runReporting(to: link)
        #expect(result.status == 0 && result.stdout.contains("survived"), "\(result.stderr)")
        #expect(fileType(link) == S_IFLNK, "the symlink to /dev/null was replaced")
        #expect(fileType("/dev/null") == S_IFCHR, "/dev/null is no longer a character device")
        #expect(buddyLines(result.stderr).isEmpty, "\(result.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["null"])
        // A character device named directly: a copy of /dev/null's node (1, 3), when we may create one.
        let node = folder.appendingPathComponent("devnull").path
        if mknod(node, S_IFCHR | 0o666, 0x103 /* makedev(1, 3) */) == 0 {
            let direct = try runReporting(to: node)
            #expect(direct.status == 0, "\(direct.stderr)")
            #expect(fileType(node) == S_IFCHR, "the device node was replaced by a regular file")
            #expect(buddyLines(direct.stderr).isEmpty, "\(direct.stderr)")
        }
        // A block device is never written: refused with one line.
        let block = folder.appendingPathComponent("block").path
        if mknod(block, S_IFBLK | 0o600, 0x7c8 /* makedev(7, 200) */) == 0 { // a loop device number: never opened
            let refused = try runReporting(to: block)
            #expect(refused.status == 0 && fileType(block) == S_IFBLK, "\(refused.stderr)")
            let lines = buddyLines(refused.stderr)
            #expect(lines.count == 1 && lines[0].contains("block device"), "\(refused.stderr)")
        }
    }

    @Test("a FIFO with a reader gets the report in place; one without a reader is refused at once, never waited for")
    func fifo() throws {
        let folder = try Harness.temporaryDirectory()
        let path = folder.appendingPathComponent("fifo").path
        try #require(mkfifo(path, 0o600) == 0)
        // The reader opens first (non-blocking, so it needs no writer yet) and reads after the
        // program ended: a report fits in the pipe's 64 KiB.
        let reader = open(path, O_RDONLY | O_NONBLOCK)
        try #require(reader >= 0)
        let result = try runReporting(to: path)
        var received = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(reader, &buffer, buffer.count)
            if n <= 0 { break }
            received.append(contentsOf: buffer[0..<n])
        }
        close(reader)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(isExitReport(String(decoding: received, as: UTF8.self)), "the FIFO's reader got \(received.count) bytes\n\(result.stderr)")
        #expect(fileType(path) == S_IFIFO, "the FIFO was replaced")
        // No reader: a warning, and the program exits at once.
        let started = Date()
        let alone = try runReporting(to: path)
        #expect(alone.status == 0 && Date().timeIntervalSince(started) < 10, "\(alone.stderr)")
        let lines = buddyLines(alone.stderr)
        #expect(lines.count == 1 && lines[0].contains("FIFO") && lines[0].contains("reader"), "\(alone.stderr)")
        #expect(fileType(path) == S_IFIFO)
    }

    @Test("BUDDY_REPORT=/dev/fd/N writes to descriptor N (3>file); a closed one is refused with one line")
    func descriptorPaths() throws {
        let folder = try Harness.temporaryDirectory()
        let out = folder.appendingPathComponent("out.json").path
        let result = try runScript("exec \"$0\" clean 3>\"$1\"", [out],
                                   environment: ["BUDDY_REPORT": "/dev/fd/3", "BUDDY_REPORT_FORMAT": "json"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(isExitReport(contents(out)), "\(out): \(contents(out).prefix(200))\n\(result.stderr)")
        #expect(buddyLines(result.stderr).isEmpty, "\(result.stderr)")
        // /dev/stdout: the report follows the program's own output on the same descriptor.
        let stdout = try runReporting(to: "/dev/stdout")
        // (The library's destructor runs before stdio's buffers are flushed: the report comes first.)
        #expect(stdout.stdout.contains("survived\n") && isExitReport(stdout.stdout.replacingOccurrences(of: "survived\n", with: "")),
                "\(stdout.stdout.prefix(200))\n\(stdout.stderr)")
        let closed = try runReporting(to: "/dev/fd/7")
        #expect(closed.status == 0, "\(closed.stderr)")
        let lines = buddyLines(closed.stderr)
        #expect(lines.count == 1 && lines[0].contains("/dev/fd/7") && lines[0].contains("descriptor 7"), "\(closed.stderr)")
    }

    @Test("what cannot be written safely is refused with one line that says what to do")
    func refusals() throws {
        let folder = try Harness.temporaryDirectory()
        let directory = try runReporting(to: folder.path)
        #expect(directory.status == 0, "\(directory.stderr)")
        var lines = buddyLines(directory.stderr)
        #expect(lines.count == 1 && lines[0].contains("is a directory") && lines[0].contains("name a file"), "\(directory.stderr)")
        let missing = try runReporting(to: folder.appendingPathComponent("no/such/folder/report").path)
        lines = buddyLines(missing.stderr)
        #expect(lines.count == 1 && lines[0].contains("folder") && lines[0].contains("does not exist"), "\(missing.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }

    @Test("a closed stderr (coreutils close it at exit): the report goes to /tmp/buddy-report.<pid>")
    func closedStderr() throws {
        // `exec 2>&-` closes it before the program starts; ls closes it itself in its atexit handler.
        for script in ["echo $$; exec \"$0\" clean 2>&-", "echo $$; exec ls / >/dev/null"] {
            let result = try runScript(script, environment: ["BUDDY_REPORT": "stderr", "BUDDY_REPORT_FORMAT": "json"])
            #expect(result.status == 0, "\(script): \(result.stdout)\(result.stderr)")
            let pid = try #require(Int(result.stdout.split(separator: "\n").first ?? ""), "\(result.stdout)")
            let path = "/tmp/buddy-report.\(pid)"
            defer { unlink(path) }
            #expect(isExitReport(contents(path)), "\(script): \(path) holds \(contents(path).prefix(200))")
            #expect(fileType(path) == S_IFREG)
        }
    }

    @Test("a process tree reporting on one stderr pipe at once (signals and exits): every JSON document arrives whole")
    func concurrentStderrReports() throws {
        let (children, signals) = (12, 6)
        for round in 0..<3 {
            let result = try Harness.run(["env", "LD_PRELOAD=\(try Harness.library)", try program("report_fork_stderr"), "\(children)", "\(signals)"],
                                         environment: ["BUDDY_REPORT": "stderr", "BUDDY_REPORT_FORMAT": "json"], timeout: 60)
            #expect(result.status == 0 && result.stdout.contains("forked \(children)"), "round \(round): \(result.stdout)")
            var reasons: [String: Int] = [:]
            var broken = 0
            for piece in documents(in: result.stderr) {
                let object = try? JSONSerialization.jsonObject(with: Data(piece.utf8)) as? [String: Any]
                if let object, object["format"] as? String == "buddymalloc-report", let reason = object["reason"] as? String {
                    reasons[reason, default: 0] += 1
                } else {
                    broken += 1
                }
            }
            #expect(broken == 0, "round \(round): \(broken) documents cut by another process's report")
            // Each child: a signal report and its exit report; the parent: at least one signal report and its exit.
            #expect(reasons["exit"] == children + 1 && (reasons["signal"] ?? 0) >= children + 1, "round \(round): \(reasons)")
            if broken > 0 { break }
        }
    }
}
