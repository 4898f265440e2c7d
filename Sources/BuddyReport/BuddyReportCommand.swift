import ArgumentParser
import BuddyReportKit
import Foundation

/// buddy-report: shows, compares and plots BuddyMalloc's JSON reports, and runs programs under
/// the library. It reads the documented report format only (never the allocator's memory).
@main
struct BuddyReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "buddy-report",
        abstract: "Show, compare and plot BuddyMalloc's JSON reports; run a program under the allocator.",
        discussion: """
        Reports are the JSON documents libBuddyMalloc.so writes with BUDDY_REPORT=PATH and \
        BUDDY_REPORT_FORMAT=json (format "buddymalloc-report", version 1). A file may hold one report or a \
        stream of them (periodic reports, BUDDY_REPORT_INTERVAL).
        """,
        subcommands: [Show.self, Leaks.self, Diff.self, Plot.self, Collapsed.self, Flame.self, Pprof.self, HTML.self, Run.self]
    )
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

extension ChartKind: ExpressibleByArgument {}
extension ProgramRunner.Progress: ExpressibleByArgument {}

/// Errors end the command with one line on stderr ("buddy-report: FILE: what is wrong") and a
/// non-zero status, never a stack trace.
func failing<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ReportError {
        printError(error.description)
        throw ExitCode(1)
    } catch let error as ToolError {
        printError(error.description)
        throw ExitCode(error.exitCode)
    } catch let error as PlotError {
        printError(error.description)
        throw ExitCode(1)
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data("buddy-report: \(message)\n".utf8))
}

func printWarnings(_ warnings: [String]) {
    for warning in warnings { printError("warning: \(warning)") }
}

/// Reads a report file ("-": standard input).
func loadReports(_ path: String) throws -> ReportFile {
    if path == "-" {
        return try ReportLoader.parse(FileHandle.standardInput.readDataToEndOfFile(), file: "(stdin)")
    }
    return try ReportLoader.load(path: path)
}

/// A document's JSON, pretty-printed with sorted keys (unknown fields kept).
func prettyJSON(_ document: ReportDocument) -> String {
    guard let object = try? JSONSerialization.jsonObject(with: document.raw),
          let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) else {
        return String(decoding: document.raw, as: UTF8.self)
    }
    return String(decoding: data, as: UTF8.self)
}

// MARK: - Symbols

/// How frames become names: the symbolizer, the modules' files, the allocator wrappers to skip.
struct SymbolOptions: ParsableArguments {
    @Flag(name: .customLong("no-symbolize"), help: "Show frames as the report has them (module+0xOFFSET), without reading the modules.")
    var noSymbolize = false

    @Option(help: ArgumentHelp("The symbolizer: llvm-symbolizer, eu-addr2line, addr2line (a command or a path), or none (symbol tables only). Default: the first of these on PATH.", valueName: "tool"))
    var symbolizer: String?

    @Option(name: .customLong("module"), help: ArgumentHelp("Read the module the report names NAME (or whose file name is NAME) from PATH; repeatable.", valueName: "name=path"))
    var modules: [String] = []

    @Option(name: .customLong("skip-frames"), help: ArgumentHelp("Also skip frames whose function matches this shell pattern when choosing a site's top frame (an allocator wrapper); repeatable.", valueName: "pattern"))
    var skipFrames: [String] = []

    @Flag(name: .customLong("no-default-skips"), help: "Do not skip the usual allocator wrappers (xmalloc, operator new, sqlite3Malloc, PyMem_*, g_malloc, ...).")
    var noDefaultSkips = false

    func validate() throws {
        for module in modules where !module.contains("=") {
            throw ValidationError("--module \(module): expected NAME=PATH, e.g. --module ./prog=/src/build/prog")
        }
    }

    /// The resolver for these reports; warnings go to stderr when `finish` is called.
    /// `known`: modules whose files the caller knows (run: the program it started).
    func resolver(for reports: [Report], known: [String: String] = [:]) throws(ToolError) -> SiteResolver {
        let filter = FrameFilter(extra: skipFrames, defaults: !noDefaultSkips)
        guard !noSymbolize else { return SiteResolver(symbolizer: nil, filter: filter) }
        var options = Symbolizer.Options(tool: symbolizer, modules: known)
        for module in modules {
            let name = String(module.prefix { $0 != "=" })
            options.modules[name] = String(module.drop { $0 != "=" }.dropFirst())
        }
        return SiteResolver(symbolizer: try Symbolizer(options: options, reports: reports), filter: filter)
    }

    static func finish(_ resolver: SiteResolver) {
        printWarnings(resolver.symbolizer?.warnings ?? [])
    }
}

// MARK: - show

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a report: memory, blocks per order, slab classes, calls, errors, latency, sizes, sites, bad pointers.",
        discussion: "A file with several reports (a stream) shows its last one, or all of them with --all."
    )

    @Argument(help: "A report file (\"-\" reads standard input).")
    var report: String

    @Option(help: "The output format.")
    var format: OutputFormat = .text

    @Flag(help: "Show every report of a stream, not only the last.")
    var all = false

    @Flag(help: "Draw bars with # instead of Unicode blocks.")
    var ascii = false

    @Option(help: "How many allocation sites to list.")
    var top = 10

    @Option(help: "The width of the bars, in characters.")
    var barWidth = 30

    @OptionGroup(title: "Frames")
    var symbols: SymbolOptions

    func run() throws {
        try failing {
            let file = try loadReports(report)
            printWarnings(file.warnings)
            let documents = all ? file.documents : [file.documents.last!]
            let resolver = try symbols.resolver(for: documents.map(\.report))
            defer { SymbolOptions.finish(resolver) }
            // Every frame of every report shown in one go: one symbolizer call per module.
            resolver.prepare(documents.map(\.report))
            let renderer = ShowRenderer(ascii: ascii, barWidth: max(4, barWidth), topSites: top, resolver: resolver)
            var outputs: [String] = []
            for document in documents {
                switch format {
                case .json:
                    outputs.append(prettyJSON(document))
                case .text:
                    var text = renderer.render(document.report)
                    if documents.count > 1 {
                        text = "=== \(document.label) ===\n" + text
                    } else if file.documents.count > 1 {
                        text = "(the last of \(file.documents.count) reports in \(document.file); --all shows them all)\n" + text
                    }
                    outputs.append(text)
                }
            }
            print(outputs.joined(separator: format == .json ? "\n" : "\n"), terminator: format == .json ? "\n" : "")
        }
    }
}

// MARK: - diff

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What grew or shrank between two reports (memory, calls, orders, slab classes, sizes, sites).",
        discussion: """
        Each file's last report is compared; given one file holding a stream, its first and last \
        reports are. Rows are sorted by the size of their change within each section.
        """
    )

    @Argument(help: "The earlier report (A) and the later one (B).")
    var files: [String]

    @Option(help: "The output format.")
    var format: OutputFormat = .text

    @Flag(help: "Include the rows that did not change.")
    var all = false

    @OptionGroup(title: "Frames")
    var symbols: SymbolOptions

    func validate() throws {
        guard (1...2).contains(files.count) else {
            throw ValidationError("diff takes two report files (A B), or one file holding a stream of reports")
        }
    }

    func run() throws {
        try failing {
            let a: ReportDocument
            let b: ReportDocument
            if files.count == 1 {
                let file = try loadReports(files[0])
                printWarnings(file.warnings)
                guard file.documents.count > 1 else {
                    throw ToolError("\(files[0]) holds one report: diff needs two files, or a stream of reports")
                }
                (a, b) = (file.documents.first!, file.documents.last!)
            } else {
                let fa = try loadReports(files[0])
                let fb = try loadReports(files[1])
                printWarnings(fa.warnings + fb.warnings)
                (a, b) = (fa.documents.last!, fb.documents.last!)
            }
            // Sites are matched by their frames as shown: symbolized, wrappers skipped.
            let resolver = try symbols.resolver(for: [a.report, b.report])
            defer { SymbolOptions.finish(resolver) }
            let diff = ReportDiff(a.symbolized(resolver), b.symbolized(resolver))
            switch format {
            case .text: print(diff.render(includeUnchanged: all), terminator: "")
            case .json: print(String(decoding: try diff.json(includeUnchanged: all), as: UTF8.self))
            }
        }
    }
}

// MARK: - plot

struct Plot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw SVG charts: bytes per order, requested sizes, and over a series fragmentation and memory.",
        discussion: """
        The per-order and sizes charts show the newest report; fragmentation and usage need a series \
        of reports of one process (several files, or one stream, e.g. from BUDDY_REPORT_INTERVAL).
        """
    )

    @Argument(help: "Report files (each one report or a stream).")
    var reports: [String]

    @Option(name: [.short, .long], help: ArgumentHelp("A folder for every chart, or a file ending in .svg for one chart.", valueName: "dir|file.svg"))
    var output: String

    @Option(help: "A chart to draw (repeatable; default: every chart the reports allow, or per-order for one .svg file).")
    var chart: [ChartKind] = []

    func validate() throws {
        if reports.isEmpty { throw ValidationError("plot needs at least one report file") }
        if output.hasSuffix(".svg") && chart.count > 1 {
            throw ValidationError("one .svg file holds one chart: give one --chart, or a folder with --output")
        }
    }

    func run() throws {
        try failing {
            var documents: [ReportDocument] = []
            for path in reports {
                let file = try loadReports(path)
                printWarnings(file.warnings)
                documents += file.documents
            }
            let plotter = try Plotter(documents: documents)
            printWarnings(plotter.notes)
            var written: [String] = []
            if output.hasSuffix(".svg") {
                let kind = chart.first ?? .perOrder
                try write(try plotter.svg(kind), to: output)
                written.append(output)
            } else {
                do {
                    try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
                } catch {
                    throw ToolError("\(output): cannot create the folder (\(error.localizedDescription))")
                }
                let kinds = chart.isEmpty ? plotter.available : chart
                if chart.isEmpty {
                    let skipped = ChartKind.allCases.filter { !kinds.contains($0) }
                    if !skipped.isEmpty {
                        printError("note: not drawn: \(skipped.map(\.rawValue).joined(separator: ", ")) (\(skipped.contains(where: \.needsSeries) ? "over time needs several reports of one process" : "no data"))")
                    }
                }
                for kind in kinds {
                    let path = (output as NSString).appendingPathComponent(kind.fileName)
                    try write(try plotter.svg(kind), to: path)
                    written.append(path)
                }
            }
            for path in written { print(path) }
        }
    }

    func write(_ svg: String, to path: String) throws {
        do {
            try Data(svg.utf8).write(to: URL(fileURLWithPath: path))
        } catch {
            throw ToolError("\(path): cannot write (\(error.localizedDescription))")
        }
    }
}

// MARK: - run

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run PROGRAM under libBuddyMalloc.so and show its report.",
        discussion: """
        LD_PRELOAD reaches PROGRAM (and its children) only. The reports go to a temporary folder \
        (BUDDY_REPORT=DIR/report.%p, BUDDY_REPORT_FORMAT=json); the report of PROGRAM's own process is \
        shown, the others are listed. Exits with PROGRAM's status (128 + N after signal N). \
        The library: --lib, else $BUDDY_LIB, else .build/release/libBuddyMalloc.so of the package.
        """
    )

    @Option(help: "The output format.")
    var format: OutputFormat = .text

    @Option(help: ArgumentHelp("Seconds between periodic reports (BUDDY_REPORT_INTERVAL), shown live while PROGRAM runs.", valueName: "seconds"))
    var interval: Double?

    @Option(help: ArgumentHelp("Keep the reports in this folder (with --interval, also each process's series as series.PID.jsonl).", valueName: "dir"))
    var keep: String?

    @Option(help: ArgumentHelp("The libBuddyMalloc.so to preload.", valueName: "path"))
    var lib: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("An allocator option, e.g. --set MAX_BLOCK=4M (BUDDY_MAX_BLOCK=4M); repeatable.", valueName: "name=value"))
    var settings: [String] = []

    @Option(name: [.short, .long], help: ArgumentHelp("Write the report to this file instead of stderr.", valueName: "file"))
    var output: String?

    @Option(help: "The progress line while PROGRAM runs: auto (when stderr is a terminal), always, never.")
    var progress: ProgramRunner.Progress = .auto

    @Option(help: ArgumentHelp("Also write the HTML page of the reports (as buddy-report html) to this file.", valueName: "report.html"))
    var html: String?

    @Flag(help: "Draw bars with # instead of Unicode blocks.")
    var ascii = false

    @OptionGroup(title: "Frames")
    var symbols: SymbolOptions

    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The program to run and its arguments, after --.", valueName: "program"))
    var command: [String] = []

    var program: [String] { command.first == "--" ? Array(command.dropFirst()) : command }

    func validate() throws {
        // The captured command swallows --help when it comes first.
        if command.first == "--help" || command.first == "-h" { throw CleanExit.helpRequest(self) }
        if program.isEmpty { throw ValidationError("no program given: buddy-report run [options] -- PROGRAM [ARGS...]") }
        if let interval, !(interval > 0) { throw ValidationError("--interval must be a positive number of seconds") }
        for setting in settings where !setting.contains("=") {
            throw ValidationError("--set \(setting): expected NAME=VALUE, e.g. MAX_BLOCK=4M")
        }
    }

    func run() throws {
        let status: Int32 = try failing {
            let library = try LibraryLocator.locate(
                explicit: lib, environment: ProcessInfo.processInfo.environment,
                executable: LibraryLocator.currentExecutable,
                currentDirectory: FileManager.default.currentDirectoryPath)
            var runner = ProgramRunner(program: program, library: library)
            runner.interval = interval
            runner.keep = keep
            runner.progress = progress
            runner.ascii = ascii
            for setting in settings {
                let name = String(setting.prefix { $0 != "=" })
                let key = name.hasPrefix("BUDDY_") ? name : "BUDDY_" + name
                runner.settings[key] = String(setting.drop { $0 != "=" }.dropFirst())
            }
            let outcome = try runner.run()
            try show(outcome, library: library)
            return outcome.exitStatus
        }
        if status != 0 { throw ExitCode(status) }
    }

    /// The file `command` runs, as posix_spawnp finds it.
    static func executable(_ command: String) -> String? {
        if command.contains("/") {
            let path = command.hasPrefix("/") ? command : FileManager.default.currentDirectoryPath + "/" + command
            return FileManager.default.isExecutableFile(atPath: path) ? (path as NSString).standardizingPath : nil
        }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(directory)/\(command)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    func show(_ outcome: ProgramRunner.Outcome, library: String) throws {
        var out = ""
        printWarnings(outcome.warnings)
        let name = (program[0] as NSString).lastPathComponent
        if let main = outcome.main {
            if format == .json {
                out += prettyJSON(main) + "\n"
            } else {
                // The program's frames name it as its argv[0]: the file that ran is known here.
                var known: [String: String] = [:]
                if let path = Self.executable(program[0]) { known[program[0]] = path }
                let resolver = try symbols.resolver(for: [main.report], known: known)
                out += ShowRenderer(ascii: ascii, resolver: resolver).render(main.report)
                SymbolOptions.finish(resolver)
            }
        } else if !outcome.textReports.isEmpty {
            printError("warning: \(library) wrote text reports, not JSON: it predates BUDDY_REPORT_FORMAT=json; rebuild it (swift build -c release --product BuddyMalloc)")
            if format == .text, let text = outcome.textReports["report.\(outcome.pid)"] { out += text }
        } else {
            printError("warning: no report from \(name) (pid \(outcome.pid)): it may have made no allocation, be statically linked or setuid (LD_PRELOAD does not reach it), have cleared its environment, or have been killed by SIGKILL")
        }
        for problem in outcome.problems {
            printError("warning: \(problem.description)")
        }
        if let html, !outcome.documents.isEmpty {
            var known: [String: String] = [:]
            if let path = Self.executable(program[0]) { known[program[0]] = path }
            let resolver = try symbols.resolver(for: outcome.documents.map(\.report), known: known)
            var page = HTMLReport(documents: outcome.documents, resolver: resolver, pid: outcome.main == nil ? nil : outcome.pid)
            page.observedParents = outcome.parents
            let text = try page.render()
            SymbolOptions.finish(resolver)
            try writeOutput(text, to: html)
        }
        let others = outcome.others
        if format == .text && !others.isEmpty {
            // A shell script may start hundreds: the first rows of the tree, then the rest by program.
            let tree = outcome.tree
            let below = outcome.main == nil ? " below \(name) (pid \(outcome.pid)), which wrote no report" : ""
            out += "\nprocesses (\(tree.count)\(below), each with its newest report\(outcome.kept ? "" : "; --keep DIR keeps them"))\n"
            out += tree.text(ascii: ascii, limit: 40, files: outcome.kept).joined(separator: "\n") + "\n"
            out += "  (\(tree.legend))\n"
        }
        if format == .text {
            let ending = outcome.signal != 0 ? "killed by signal \(outcome.signal)" : "exit status \(outcome.exitStatus)"
            out += "\n\(name) ran \(Units.duration(outcome.elapsed)), \(ending)"
                + (outcome.kept ? "; reports kept in \(outcome.directory)" : "") + "\n"
            for file in outcome.seriesFiles {
                out += "series of periodic reports: \(file) (buddy-report plot \(file) -o DIR)\n"
            }
        }
        if let output {
            do {
                try Data(out.utf8).write(to: URL(fileURLWithPath: output))
            } catch {
                throw ToolError("\(output): cannot write the report (\(error.localizedDescription))")
            }
        } else {
            FileHandle.standardError.write(Data(out.utf8))
        }
    }
}

// MARK: - leaks

struct Leaks: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The sampled allocation sites still live at exit (leaks), largest first, with estimated bytes and blocks.",
        discussion: """
        Needs a profile: run the program with BUDDY_PROFILE_SAMPLE=BYTES (e.g. 64K). The figures are \
        estimates from the samples (one allocation per that many bytes): bytes with one standard error, \
        blocks estimated as the README says. Each file's last report is used (the exit report). \
        Exit status 3 with --fail-above when the estimated live bytes exceed the limit (for CI).
        """
    )

    @Argument(help: "Report files (each file's last report; several files: a process tree).")
    var reports: [String]

    @Option(help: "The output format.")
    var format: OutputFormat = .text

    @Option(name: .customLong("fail-above"), help: ArgumentHelp("Exit with status 3 when the sites' estimated live bytes, all processes together, exceed this (4096, 64K, 1M).", valueName: "bytes"))
    var failAbove: String?

    @Option(help: ArgumentHelp("Leave out sites with a frame matching this shell pattern (function or the report's text of the frame); repeatable.", valueName: "pattern"))
    var ignore: [String] = []

    @Option(name: .customLong("min-bytes"), help: ArgumentHelp("Leave out sites holding less than this (estimated).", valueName: "bytes"))
    var minBytes: String?

    @Option(help: "Frames to print for each site.")
    var frames = 6

    @OptionGroup(title: "Frames")
    var symbols: SymbolOptions

    func validate() throws {
        if reports.isEmpty { throw ValidationError("leaks needs at least one report file") }
        if let failAbove, Units.parseBytes(failAbove) == nil { throw ValidationError("--fail-above \(failAbove): not a size (4096, 64K, 1M)") }
        if let minBytes, Units.parseBytes(minBytes) == nil { throw ValidationError("--min-bytes \(minBytes): not a size (4096, 64K, 1M)") }
    }

    func run() throws {
        let total: Int = try failing {
            var documents: [ReportDocument] = []
            for path in reports {
                let file = try loadReports(path)
                printWarnings(file.warnings)
                documents.append(file.documents.last!)
            }
            let resolver = try symbols.resolver(for: documents.map(\.report))
            let leaks = try LeakReport(documents, resolver: resolver, ignore: ignore, minimumBytes: minBytes.flatMap(Units.parseBytes) ?? 0)
            SymbolOptions.finish(resolver)
            switch format {
            case .text: print(leaks.text(maxFrames: max(1, frames)), terminator: "")
            case .json: print(String(decoding: try leaks.json(), as: UTF8.self))
            }
            return leaks.totalBytes
        }
        if let failAbove, let limit = Units.parseBytes(failAbove), total > limit {
            printError("estimated live bytes at exit \(Units.bytes(total)) (\(total)) exceed --fail-above \(failAbove) (\(limit))")
            throw ExitCode(3)
        }
    }
}

extension StackValue: ExpressibleByArgument {}

/// The reports of collapsed and flame: each file's last report.
func lastReports(_ paths: [String]) throws -> [Report] {
    var reports: [Report] = []
    for path in paths {
        let file = try loadReports(path)
        printWarnings(file.warnings)
        reports.append(file.documents.last!.report)
    }
    for r in reports where (r.profile?.sampleBytes ?? 0) == 0 {
        printError("warning: \(r.displayName) (pid \(r.pid)): no allocation-site profile (run with BUDDY_PROFILE_SAMPLE=64K)")
    }
    return reports
}

func writeOutput(_ text: String, to path: String?) throws {
    guard let path, path != "-" else { print(text, terminator: ""); return }
    do {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    } catch {
        throw ToolError("\(path): cannot write (\(error.localizedDescription))")
    }
}

// MARK: - collapsed

struct Collapsed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The sites as collapsed stacks (Brendan Gregg's folded format: outer;...;inner VALUE), for flamegraph.pl, speedscope, inferno.",
        discussion: "Frames are symbolized and allocator wrappers left out; inlined calls end in _[i]. Several files: one root frame per process."
    )

    @Argument(help: "Report files (each file's last report).")
    var reports: [String]

    @Option(help: "The value of a stack: live (estimated live bytes), allocated (estimated bytes allocated so far), samples (live samples).")
    var value: StackValue = .live

    @Option(name: [.short, .long], help: ArgumentHelp("Write to this file instead of standard output.", valueName: "file"))
    var output: String?

    @OptionGroup(title: "Frames")
    var symbols: SymbolOptions

    func run() throws {
        try failing {
            let list = try lastReports(reports)
            let resolver = try symbols.resolver(for: list)
            let profile = StackProfile(list, resolver: resolver, value: value)
            SymbolOptions.finish(resolver)
            try writeOutput(profile.collapsed(), to: output)
        }
    }
}

// MARK: - flame

struct Flame: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw a flame graph of the sites as SVG (live or allocated bytes).",
        discussion: "Drawn by this tool (no flamegraph.pl needed): callers below callees, widths the estimated bytes; hover a box for its figures."
    )

    @Argument(help: "Report files (each file's last report; several: one root per process).")
    var reports: [String]

    @Option(name: [.short, .long], help: ArgumentHelp("The SVG file to write.", valueName: "file.svg"))
    var output: String

    @Option(help: "The value of a stack: live (estimated live bytes), allocated (estimated bytes allocated so far), samples (live samples).")
    var value: StackValue = .live

    @Option(help: "The width of the image, in pixels.")
    var width = 1200

    @Option(help: "The title (default: what is shown, and of which program).")
    var title: String?

    @OptionGroup(title: "Frames")
    var symbols: SymbolOptions

    func run() throws {
        try failing {
            let list = try lastReports(reports)
            let resolver = try symbols.resolver(for: list)
            let profile = StackProfile(list, resolver: resolver, value: value)
            SymbolOptions.finish(resolver)
            let graph = FlameGraph(profile, title: title, width: Double(max(200, width)))
            try writeOutput(graph.svg(), to: output)
            if output != "-" { print(output) }
        }
    }
}

// MARK: - pprof

struct Pprof: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the sites as a pprof profile (profile.proto, gzip-compressed) for pprof, go tool pprof and speedscope.",
        discussion: """
        One sample per site, its stack symbolized, allocator wrappers left out (the label via names them). \
        Sample types alloc_space (bytes), samples (count), inuse_objects (count) and inuse_space (bytes, the \
        default), estimated as `leaks` estimates them; labels pid, program, via, inuse_space_error, \
        blocks_estimate. Several files: one profile, each sample labelled with its process.
        """
    )

    @Argument(help: "Report files (each file's last report; several: their samples labelled by pid).")
    var reports: [String]

    @Option(name: [.short, .long], help: ArgumentHelp("The file to write (\"-\": standard output).", valueName: "profile.pb.gz"))
    var output: String

    @Flag(help: "Write the protobuf uncompressed (pprof reads both).")
    var uncompressed = false

    @OptionGroup(title: "Frames")
    var symbols: SymbolOptions

    func run() throws {
        try failing {
            var documents: [ReportDocument] = []
            for path in reports {
                let file = try loadReports(path)
                printWarnings(file.warnings)
                documents.append(file.documents.last!)
            }
            let resolver = try symbols.resolver(for: documents.map(\.report))
            let profile = try PprofProfile(documents, resolver: resolver)
            SymbolOptions.finish(resolver)
            printWarnings(profile.notes)
            let bytes = uncompressed ? profile.encoded() : profile.gzipped()
            if output == "-" {
                FileHandle.standardOutput.write(Data(bytes))
                return
            }
            do {
                try Data(bytes).write(to: URL(fileURLWithPath: output))
            } catch {
                throw ToolError("\(output): cannot write (\(error.localizedDescription))")
            }
            print(output)
        }
    }
}

// MARK: - html

struct HTML: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "html",
        abstract: "Write one self-contained HTML page of a report: memory, orders and slabs, charts, sites, flame graph, bad pointers, processes.",
        discussion: """
        Inline CSS and SVG, no script, nothing fetched: the page opens offline anywhere. One process is \
        shown in detail (--pid, else the one that started the others); a stream or several reports of it \
        add its timeline; several processes add their tree, and the flame graph covers every process \
        that sampled.
        """
    )

    @Argument(help: "Report files (every report of each: a series, or the files of a process tree).")
    var reports: [String]

    @Option(name: [.short, .long], help: ArgumentHelp("The HTML file to write (\"-\": standard output).", valueName: "report.html"))
    var output: String

    @Option(help: "The process to show in detail (default: the one that started the others).")
    var pid: Int?

    @Option(help: "How many allocation sites to list.")
    var top = 20

    @Option(help: "The page's title.")
    var title: String?

    @OptionGroup(title: "Frames")
    var symbols: SymbolOptions

    func run() throws {
        try failing {
            var documents: [ReportDocument] = []
            for path in reports {
                let file = try loadReports(path)
                printWarnings(file.warnings)
                documents += file.documents
            }
            let resolver = try symbols.resolver(for: documents.map(\.report))
            var page = HTMLReport(documents: documents, resolver: resolver, pid: pid)
            page.topSites = max(0, top)
            page.title = title
            let html = try page.render()
            SymbolOptions.finish(resolver)
            try writeOutput(html, to: output)
            if output != "-" { print(output) }
        }
    }
}
