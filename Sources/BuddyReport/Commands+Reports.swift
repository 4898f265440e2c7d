import ArgumentParser
import BuddyReportKit
import Foundation

// The commands that read reports: show, diff, plot.

// MARK: - show

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a report: memory, blocks per order, slab classes, calls, locks, errors, latency, sizes, sites, bad pointers.",
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
        abstract: "What grew or shrank between two reports (memory, calls, locks, orders, slab classes, sizes, sites).",
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

    @Option(help: "The per-order chart's bytes axis: auto (split when the free bytes would flatten the rest, else linear), linear, log (each part its own bar), or split (a broken axis).")
    var scale: ChartScale = .auto

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
            var plotter = try Plotter(documents: documents)
            plotter.scale = scale
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
