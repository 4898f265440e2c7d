import ArgumentParser
import BuddyReportKit
import Foundation

// The commands on the allocation sites of the profile: leaks, collapsed, flame, pprof, html.

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

    @Flag(name: .customLong("at-peak"), help: "Of each process's reports in the files (a stream, or periodic reports PATH.0, PATH.1, ...), take the one that held the most, not each file's last: its sites' shares of held are their shares of the peak.")
    var atPeak = false

    @OptionGroup(title: "Frames")
    var symbols: SymbolOptions

    func validate() throws {
        if reports.isEmpty { throw ValidationError("leaks needs at least one report file") }
        if let failAbove, Units.parseBytes(failAbove) == nil { throw ValidationError("--fail-above \(failAbove): not a size (4096, 64K, 1M)") }
        if let minBytes, Units.parseBytes(minBytes) == nil { throw ValidationError("--min-bytes \(minBytes): not a size (4096, 64K, 1M)") }
    }

    func run() throws {
        let total: Int = try failing {
            let documents = atPeak ? try peakDocuments(reports) : try lastDocuments(reports)
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
/// Each file's last report document, its warnings printed.
func lastDocuments(_ paths: [String]) throws -> [ReportDocument] {
    try paths.map { path in
        let file = try loadReports(path)
        printWarnings(file.warnings)
        return file.documents.last!
    }
}

/// Each process's report that held the most (the latest of equals), of every report of the
/// files (a stream, or the periodic files PATH.0, PATH.1, ...); their warnings printed.
func peakDocuments(_ paths: [String]) throws -> [ReportDocument] {
    var documents: [ReportDocument] = []
    for path in paths {
        let file = try loadReports(path)
        printWarnings(file.warnings)
        documents += file.documents
    }
    let series = ReportSeries(documents)
    return series.pids.map { pid in
        series.reports(pid: pid).reversed().max { $0.report.memory.held < $1.report.memory.held }!
    }
}

func lastReports(_ paths: [String]) throws -> [Report] {
    let reports = try lastDocuments(paths).map(\.report)
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
            let profile = try symbols.stackProfile(lastReports(reports), value: value)
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
            let profile = try symbols.stackProfile(lastReports(reports), value: value)
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
            let documents = try lastDocuments(reports)
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
