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
        stream of them (periodic reports, BUDDY_REPORT_INTERVAL). Text reports (the library's default \
        format) are read too, with their byte figures rounded as printed and without what only the JSON \
        has: each command says what on stderr.
        """,
        subcommands: [Show.self, Leaks.self, Diff.self, Plot.self, Collapsed.self, Flame.self, Pprof.self, HTML.self, Run.self]
    )
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

extension ChartKind: ExpressibleByArgument {}
extension ChartScale: ExpressibleByArgument {}
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

    /// The reports' sites as stacks (collapsed, flame), symbolized with these options.
    func stackProfile(_ reports: [Report], value: StackValue) throws -> StackProfile {
        let resolver = try resolver(for: reports)
        defer { SymbolOptions.finish(resolver) }
        return StackProfile(reports, resolver: resolver, value: value)
    }
}
