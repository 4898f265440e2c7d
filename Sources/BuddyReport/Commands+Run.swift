import ArgumentParser
import BuddyReportKit
import Foundation

// run: a program under the library, its reports shown live and listed at the end.

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
