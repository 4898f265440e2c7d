import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A failure of the tool itself (not of a report file), with the exit status to leave with.
public struct ToolError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public var exitCode: Int32

    public init(_ description: String, exitCode: Int32 = 1) {
        self.description = description
        self.exitCode = exitCode
    }
}

/// Finds libBuddyMalloc.so: `--lib`, then `$BUDDY_LIB`, then `.build/release/libBuddyMalloc.so` in
/// the package that holds the tool's executable, then in the package of the current directory, then
/// next to the executable (the same build).
public enum LibraryLocator {
    public static let fileName = "libBuddyMalloc.so"

    public static func locate(explicit: String?, environment: [String: String], executable: String?,
                              currentDirectory: String) throws(ToolError) -> String {
        let files = FileManager.default
        if let explicit {
            guard files.fileExists(atPath: explicit) else { throw ToolError("--lib \(explicit): no such file") }
            return absolute(explicit, currentDirectory)
        }
        if let fromEnvironment = environment["BUDDY_LIB"], !fromEnvironment.isEmpty {
            guard files.fileExists(atPath: fromEnvironment) else { throw ToolError("BUDDY_LIB=\(fromEnvironment): no such file") }
            return absolute(fromEnvironment, currentDirectory)
        }
        var looked: [String] = []
        var starts: [String] = []
        if let executable { starts.append((absolute(executable, currentDirectory) as NSString).deletingLastPathComponent) }
        starts.append(currentDirectory)
        for start in starts {
            if let package = packageRoot(containing: start) {
                let candidate = package + "/.build/release/" + fileName
                if files.fileExists(atPath: candidate) { return candidate }
                if !looked.contains(candidate) { looked.append(candidate) }
            }
        }
        if let executable {
            let sibling = (absolute(executable, currentDirectory) as NSString).deletingLastPathComponent + "/" + fileName
            if files.fileExists(atPath: sibling) { return sibling }
        }
        let where_ = looked.isEmpty ? "no BuddyMalloc package around the tool or the current directory" : "not at \(looked.joined(separator: " or "))"
        throw ToolError("\(fileName) not found (\(where_)): build it with `swift build -c release --product BuddyMalloc` in the package, or name it with --lib PATH or BUDDY_LIB=PATH")
    }

    /// The nearest folder at or above `directory` with a Package.swift.
    static func packageRoot(containing directory: String) -> String? {
        var url = URL(fileURLWithPath: directory).standardizedFileURL
        while true {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
            let parent = url.deletingLastPathComponent()
            if parent.path == url.path || url.path == "/" { return nil }
            url = parent
        }
    }

    static func absolute(_ path: String, _ currentDirectory: String) -> String {
        let full = path.hasPrefix("/") ? path : currentDirectory + "/" + path
        return URL(fileURLWithPath: full).standardizedFileURL.path
    }

    /// The running executable (/proc/self/exe), symbolic links resolved.
    public static var currentExecutable: String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// `buddy-report run`: PROGRAM under the library, its reports in a folder, progress on stderr.
public struct ProgramRunner {
    public enum Progress: String, Sendable, CaseIterable {
        /// When stderr is a terminal.
        case auto
        case always
        case never
    }

    public var program: [String]
    public var library: String
    /// BUDDY_REPORT_INTERVAL: seconds between periodic reports, shown live.
    public var interval: Double?
    /// Where the reports go; kept. Without it, a temporary folder removed at the end.
    public var keep: String?
    /// More allocator options (BUDDY_NAME=VALUE).
    public var settings: [String: String] = [:]
    public var progress: Progress = .auto
    public var ascii = false
    /// How long the program runs before the progress line appears.
    public var progressDelay: Double = 1.0

    public init(program: [String], library: String) {
        self.program = program
        self.library = library
    }

    public struct Outcome: Sendable {
        /// The status to exit with: PROGRAM's exit status, or 128 + its signal.
        public var exitStatus: Int32
        /// The signal that ended PROGRAM, or 0.
        public var signal: Int32
        public var pid: Int
        public var elapsed: Double
        /// Every report found, of every process.
        public var documents: [ReportDocument]
        /// Files that could not be read as reports, and why.
        public var problems: [ReportError]
        /// Plain-text reports (from a library that does not write JSON), by file name.
        public var textReports: [String: String] = [:]
        /// With --keep and --interval: each process's reports as one stream (`series.PID.jsonl`).
        public var seriesFiles: [String] = []
        public var warnings: [String]
        /// Where the reports were written (removed when not kept).
        public var directory: String
        public var kept: Bool
        /// Child pid -> parent pid, of the processes seen below PROGRAM in /proc while it ran.
        public var parents: [Int: Int] = [:]

        /// Every process that wrote a report, as a tree under PROGRAM.
        public var tree: ProcessTree { ProcessTree(documents, observed: parents, root: pid) }

        /// PROGRAM's newest report.
        public var main: ReportDocument? { ReportSeries(documents).reports(pid: pid).last }

        /// The other processes (PROGRAM's children), each with its newest report.
        public var others: [ReportDocument] {
            let series = ReportSeries(documents)
            return series.pids.filter { $0 != pid }.compactMap { series.reports(pid: $0).last }
        }
    }

    /// Runs PROGRAM to the end; throws only when it cannot start.
    public func run() throws(ToolError) -> Outcome {
        guard let name = program.first else { throw ToolError("no program given: buddy-report run [options] -- PROGRAM [ARGS...]", exitCode: 2) }
        let directory = try makeDirectory()
        var environment = ProcessInfo.processInfo.environment
        let existing = environment["LD_PRELOAD"].flatMap { $0.isEmpty ? nil : $0 }
        environment["LD_PRELOAD"] = library + (existing.map { " " + $0 } ?? "")
        environment["BUDDY_REPORT"] = directory + "/report.%p"
        environment["BUDDY_REPORT_FORMAT"] = "json"
        if let interval {
            environment["BUDDY_REPORT_INTERVAL"] = interval == interval.rounded() ? String(Int(interval)) : String(interval)
        }
        for (key, value) in settings { environment[key] = value }

        let start = Date()
        let pid: pid_t
        do {
            pid = try Self.spawn(program, environment: environment)
        } catch {
            if keep == nil { try? FileManager.default.removeItem(atPath: directory) }
            throw error
        }
        // Ctrl-C and Ctrl-\ reach PROGRAM (same process group) and end it; this process stays to
        // show the report. TERM and HUP are passed on to PROGRAM.
        let previous = (int: signal(SIGINT, SIG_IGN), quit: signal(SIGQUIT, SIG_IGN))
        forwardedPid = pid
        let previousTerm = signal(SIGTERM, forwardSignal)
        let previousHup = signal(SIGHUP, forwardSignal)
        defer {
            signal(SIGINT, previous.int)
            signal(SIGQUIT, previous.quit)
            signal(SIGTERM, previousTerm)
            signal(SIGHUP, previousHup)
            forwardedPid = 0
        }

        let showProgress = progress == .always || (progress == .auto && isatty(2) != 0)
        var line = ProgressLine(program: (name as NSString).lastPathComponent, pid: Int(pid), ascii: ascii)
        // With periodic reports, the folder is read while PROGRAM runs: for the live figures, and
        // to keep every report even where the library replaces a process's file with the next one.
        var periodic = Collected()
        let scanPeriod = interval.map { min(0.5, max(0.05, $0 / 2)) }
        var lastScan = Date()
        var status: Int32 = 0
        var drawn = false
        // Who started whom, while they run (the reports carry no parent pid).
        var parents: [Int: Int] = [:]
        while true {
            ProcessWatcher.children(of: Int(pid), into: &parents)
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r == -1 && errno != EINTR { throw ToolError("waitpid failed for pid \(pid): \(String(cString: strerror(errno)))") }
            let elapsed = Date().timeIntervalSince(start)
            usleep(elapsed < progressDelay ? 10_000 : 100_000)
            if let scanPeriod, Date().timeIntervalSince(lastScan) >= scanPeriod {
                lastScan = Date()
                Self.scan(directory, since: start, into: &periodic)
                line.latest = periodic.newest(pid: Int(pid)) ?? line.latest
            }
            guard showProgress, elapsed >= progressDelay else { continue }
            Self.writeStderr("\r" + line.render(elapsed: elapsed, width: Self.terminalWidth()) + "\u{1B}[K")
            drawn = true
        }
        if drawn { Self.writeStderr("\r\u{1B}[K") }
        let elapsed = Date().timeIntervalSince(start)

        // Exit status and signal, as the wait(2) macros decode them.
        let signal = status & 0x7f
        let exitStatus: Int32 = signal == 0 ? (status >> 8) & 0xff : 128 + signal

        var outcome = Outcome(exitStatus: exitStatus, signal: signal, pid: Int(pid), elapsed: elapsed,
                              documents: [], problems: [], warnings: [], directory: directory, kept: keep != nil,
                              parents: parents)
        Self.collect(directory, since: start, into: &outcome)
        // The periodic reports seen while PROGRAM ran that the files no longer hold.
        var final = Collected()
        final.add(outcome.documents)
        for document in periodic.all where final.add([document]) { outcome.documents.append(document) }
        if keep != nil && interval != nil { outcome.seriesFiles = Self.writeSeries(outcome.documents, in: directory) }
        if keep == nil { try? FileManager.default.removeItem(atPath: directory) }
        return outcome
    }

    /// Reports by process and sequence number, each kept once.
    struct Collected {
        private var seen: [Int: [Int: ReportDocument]] = [:]

        /// Adds the documents not seen yet; tells whether any was new.
        @discardableResult
        mutating func add(_ documents: [ReportDocument]) -> Bool {
            var added = false
            for d in documents where seen[d.report.pid, default: [:]][d.report.sequence] == nil {
                seen[d.report.pid, default: [:]][d.report.sequence] = d
                added = true
            }
            return added
        }

        var all: [ReportDocument] {
            seen.keys.sorted().flatMap { pid in seen[pid]!.keys.sorted().map { seen[pid]![$0]! } }
        }

        /// The newest report of `pid`, else of any process.
        func newest(pid: Int) -> Report? {
            if let own = seen[pid], let last = own.keys.max() { return own[last]!.report }
            return seen.values.flatMap(\.values).max { ($0.report.time?.now ?? 0) < ($1.report.time?.now ?? 0) }?.report
        }
    }

    /// Reads the complete reports in `directory` (files being written are skipped).
    static func scan(_ directory: String, since start: Date, into collected: inout Collected) {
        for name in reportFiles(in: directory, since: start) {
            if let file = try? ReportLoader.load(path: directory + "/" + name) { collected.add(file.documents) }
        }
    }

    /// Writes each process's reports as one stream, `series.PID.jsonl` (a report per line), for
    /// `buddy-report plot`; returns the files written.
    static func writeSeries(_ documents: [ReportDocument], in directory: String) -> [String] {
        var written: [String] = []
        let series = ReportSeries(documents)
        for pid in series.pids {
            let reports = series.reports(pid: pid)
            guard reports.count > 1 else { continue }
            var text = ""
            for d in reports {
                if let object = try? JSONSerialization.jsonObject(with: d.raw),
                   let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) {
                    text += String(decoding: data, as: UTF8.self) + "\n"
                }
            }
            let path = directory + "/series.\(pid).jsonl"
            if (try? Data(text.utf8).write(to: URL(fileURLWithPath: path))) != nil { written.append(path) }
        }
        return written
    }

    func makeDirectory() throws(ToolError) -> String {
        if let keep {
            do {
                try FileManager.default.createDirectory(atPath: keep, withIntermediateDirectories: true)
            } catch {
                throw ToolError("--keep \(keep): cannot create the folder: \(error.localizedDescription)")
            }
            return LibraryLocator.absolute(keep, FileManager.default.currentDirectoryPath)
        }
        let base = (ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp")
        var template = Array((base + "/buddy-report.XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw ToolError("cannot create a temporary folder in \(base): \(String(cString: strerror(errno)))")
        }
        return String(cString: made)
    }

    /// posix_spawnp with PATH search; the child gets default signal handling and an empty mask.
    static func spawn(_ argv: [String], environment: [String: String]) throws(ToolError) -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGPIPE] { sigaddset(&defaults, s) }
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let cEnv: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in cArgs { free(p) }
            for p in cEnv { free(p) }
        }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, argv[0], nil, &attributes, cArgs, cEnv)
        switch rc {
        case 0: return pid
        case ENOENT: throw ToolError("\(argv[0]): command not found", exitCode: 127)
        case EACCES: throw ToolError("\(argv[0]): permission denied", exitCode: 126)
        default: throw ToolError("\(argv[0]): cannot run: \(String(cString: strerror(rc)))", exitCode: 126)
        }
    }

    /// The files of `directory` the library wrote since `start` (a kept folder may hold older runs').
    static func reportFiles(in directory: String, since start: Date) -> [String] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        return names.filter { name in
            guard name.hasPrefix("report.") else { return false }
            let attributes = try? FileManager.default.attributesOfItem(atPath: directory + "/" + name)
            let modified = attributes?[.modificationDate] as? Date ?? .distantFuture
            return modified.timeIntervalSince(start) > -1
        }
    }

    /// Reads every report in `directory` into `outcome`.
    static func collect(_ directory: String, since start: Date, into outcome: inout Outcome) {
        for name in reportFiles(in: directory, since: start) {
            let path = directory + "/" + name
            do {
                let file = try ReportLoader.load(path: path)
                outcome.documents += file.documents
                outcome.warnings += file.warnings
            } catch {
                if error.message.hasPrefix("a text report"), let text = try? String(contentsOfFile: path, encoding: .utf8) {
                    outcome.textReports[name] = text
                } else {
                    outcome.problems.append(error)
                }
            }
        }
    }

    static func writeStderr(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
            offset += n
        }
    }

    static func terminalWidth() -> Int {
        var size = winsize()
        if ioctl(2, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return Int(ProcessInfo.processInfo.environment["COLUMNS"] ?? "") ?? 80
    }
}

/// The pid TERM and HUP are passed on to while PROGRAM runs (0: none).
nonisolated(unsafe) private var forwardedPid: pid_t = 0

private let forwardSignal: @convention(c) (Int32) -> Void = { signal in
    if forwardedPid > 0 { kill(forwardedPid, signal) }
}

/// The line `run` redraws on stderr while PROGRAM runs: a spinner, the elapsed time, and the
/// newest periodic report's figures.
public struct ProgressLine: Sendable {
    public var program: String
    public var pid: Int
    public var ascii: Bool
    public var latest: Report?
    var frame = 0

    public init(program: String, pid: Int, ascii: Bool, latest: Report? = nil) {
        self.program = program
        self.pid = pid
        self.ascii = ascii
        self.latest = latest
    }

    static let unicodeSpinner: [Character] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]
    static let asciiSpinner: [Character] = ["|", "/", "-", "\\"]

    /// The line for this moment, cut to `width` columns (a wrapped line could not be redrawn).
    public mutating func render(elapsed: Double, width: Int) -> String {
        let spinner = ascii ? Self.asciiSpinner : Self.unicodeSpinner
        let mark = spinner[frame % spinner.count]
        frame += 1
        var text = "\(mark) \(program) (pid \(pid)) running \(Units.duration(elapsed))"
        if let r = latest {
            let m = r.memory
            text += " | used \(Units.bytes(m.used)) of \(Units.bytes(m.reserved)) (\(Units.percent(m.usage)))"
            text += ", \(m.liveAllocations) live, fragmentation \(Units.percent(m.internalFragmentation)) int / \(Units.percent(m.externalFragmentation)) ext"
            if r.pid != pid { text += " [pid \(r.pid)]" }
            if let status = r.health?.status, status != "HEALTHY" { text += ", \(status)" }
        }
        let limit = max(10, width - 1)
        return text.count > limit ? String(text.prefix(limit - 3)) + "..." : text
    }
}
