import Foundation
import Testing
@testable import BuddyReportKit

@Suite struct RunTests {
    @Test func findingTheLibrary() throws {
        let root = try Support.temporaryDirectory()
        let package = root.appendingPathComponent("pkg")
        let bin = package.appendingPathComponent(".build/x86_64-unknown-linux-gnu/debug")
        let release = package.appendingPathComponent(".build/release")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: release, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: package.appendingPathComponent("Package.swift").path, contents: Data())
        let tool = bin.appendingPathComponent("buddy-report").path
        let elsewhere = root.path

        // Not built yet: the message says how to build it.
        #expect(throws: ToolError.self) {
            try LibraryLocator.locate(explicit: nil, environment: [:], executable: tool, currentDirectory: elsewhere)
        }
        do {
            _ = try LibraryLocator.locate(explicit: nil, environment: [:], executable: tool, currentDirectory: elsewhere)
        } catch {
            #expect(error.description.contains("swift build -c release --product BuddyMalloc"))
            #expect(error.description.contains(release.appendingPathComponent("libBuddyMalloc.so").path))
        }
        // Next to the tool (the same build) when there is no release build.
        let sibling = bin.appendingPathComponent("libBuddyMalloc.so").path
        _ = FileManager.default.createFile(atPath: sibling, contents: Data())
        #expect(try LibraryLocator.locate(explicit: nil, environment: [:], executable: tool, currentDirectory: elsewhere) == sibling)
        // The release build of the tool's package comes first.
        let built = release.appendingPathComponent("libBuddyMalloc.so").path
        _ = FileManager.default.createFile(atPath: built, contents: Data())
        #expect(try LibraryLocator.locate(explicit: nil, environment: [:], executable: tool, currentDirectory: elsewhere) == built)
        // The current directory's package, for a tool installed elsewhere.
        #expect(try LibraryLocator.locate(explicit: nil, environment: [:], executable: "/usr/local/bin/buddy-report",
                                          currentDirectory: package.appendingPathComponent("Sources").path) == built)
        // $BUDDY_LIB, then --lib, win.
        #expect(try LibraryLocator.locate(explicit: nil, environment: ["BUDDY_LIB": sibling], executable: tool, currentDirectory: elsewhere) == sibling)
        #expect(try LibraryLocator.locate(explicit: sibling, environment: ["BUDDY_LIB": built], executable: tool, currentDirectory: elsewhere) == sibling)
        #expect(throws: ToolError.self) {
            try LibraryLocator.locate(explicit: "/nonexistent/libBuddyMalloc.so", environment: [:], executable: tool, currentDirectory: elsewhere)
        }
    }

    @Test func theProgressLine() throws {
        let series = try Support.load("series.jsonl").documents
        var line = ProgressLine(program: "cc1", pid: 4242, ascii: true)
        #expect(line.render(elapsed: 1.5, width: 100) == "| cc1 (pid 4242) running 1.50s")
        line.latest = series[4].report
        let text = line.render(elapsed: 2.25, width: 200)
        #expect(text == "/ cc1 (pid 4242) running 2.25s | used 12M of 16M (74.7%), 2643 live, fragmentation 30.8% int / 75.0% ext")
        // Cut to the terminal, so the line can be redrawn in place.
        #expect(line.render(elapsed: 3, width: 40).count == 39)
    }

    @Test func aProgramThatCannotStart() throws {
        var runner = ProgramRunner(program: ["/nonexistent/program"], library: "/dev/null")
        runner.progress = .never
        #expect(throws: ToolError.self) { try runner.run() }
    }

    /// Writes reports the way the library does (BUDDY_REPORT with %p, replaced by rename), COUNT of
    /// them PAUSE seconds apart; the program field says "BUDDY_REPORT_FORMAT/BUDDY_REPORT_INTERVAL".
    static let writer = #"""
    f=$(printf %s "$BUDDY_REPORT" | sed "s/%p/$$/")
    i=0
    while [ $i -lt $COUNT ]; do
      reason=interval; [ $i -eq $((COUNT - 1)) ] && reason=exit
      printf '{"format":"buddymalloc-report","version":1,"pid":%d,"program":"%s","reason":"%s","sequence":%d,"time":{"created":1.0,"now":%d.5,"uptime":%d.5},"memory":{"reserved":1048576,"used":%d,"free":0},"calls":{"malloc":%d},"orders":[{"order":0,"block_size":16,"live":1,"free":0}]}\n' \
        $$ "$BUDDY_REPORT_FORMAT/${BUDDY_REPORT_INTERVAL:-none}" $reason $i $i $i $((1000 * (i + 1))) $i > "$f.tmp"
      mv "$f.tmp" "$f"
      i=$((i + 1))
      if [ $i -lt $COUNT ]; then sleep $PAUSE; fi
    done
    """#

    /// The runner's side without the library: a shell script writes the reports, a child too.
    @Test(.timeLimit(.minutes(1)))
    func reportsOfTheProgramAndItsChildren() throws {
        let directory = try Support.temporaryDirectory()
        let script = directory.appendingPathComponent("writer.sh").path
        try Self.writer.write(toFile: script, atomically: true, encoding: .utf8)
        var runner = ProgramRunner(program: ["sh", "-c", #"COUNT=1 PAUSE=0 sh "$0"; COUNT=1 PAUSE=0; . "$0"; exit 5"#, script], library: "")
        runner.progress = .never
        let outcome = try runner.run()
        #expect(outcome.exitStatus == 5 && outcome.signal == 0)
        #expect(outcome.problems.isEmpty && outcome.warnings.isEmpty)
        #expect(outcome.main?.report.pid == outcome.pid)
        #expect(outcome.main?.report.program == "json/none")
        #expect(outcome.others.count == 1 && outcome.others[0].report.pid != outcome.pid)
        // The temporary folder is gone.
        #expect(!FileManager.default.fileExists(atPath: outcome.directory))
    }

    /// With --interval, the periodic reports are read while the program runs, even though each
    /// replaces the last in the process's file, and kept as a series.
    @Test(.timeLimit(.minutes(1)))
    func periodicReportsAreKeptAsASeries() throws {
        let directory = try Support.temporaryDirectory()
        let script = directory.appendingPathComponent("writer.sh").path
        try Self.writer.write(toFile: script, atomically: true, encoding: .utf8)
        let keep = directory.appendingPathComponent("kept").path
        var runner = ProgramRunner(program: ["sh", "-c", #"COUNT=3 PAUSE=0.25; . "$0""#, script], library: "")
        runner.progress = .never
        runner.interval = 0.1
        runner.keep = keep
        let outcome = try runner.run()
        #expect(outcome.exitStatus == 0)
        let own = ReportSeries(outcome.documents).reports(pid: outcome.pid)
        #expect(own.map(\.report.sequence) == [0, 1, 2])
        #expect(own.allSatisfy { $0.report.program == "json/0.1" })
        #expect(outcome.main?.report.reason == "exit")
        #expect(outcome.seriesFiles == [keep + "/series.\(outcome.pid).jsonl"])
        let series = try ReportLoader.load(path: try #require(outcome.seriesFiles.first))
        #expect(series.documents.map(\.report.sequence) == [0, 1, 2])
        #expect(try FileManager.default.contentsOfDirectory(atPath: keep).sorted() == ["report.\(outcome.pid)", "series.\(outcome.pid).jsonl"])
    }

    @Test func aProgramEndedByASignal() throws {
        var runner = ProgramRunner(program: ["sh", "-c", "kill -TERM $$"], library: "")
        runner.progress = .never
        let outcome = try runner.run()
        #expect(outcome.signal == 15 && outcome.exitStatus == 143)
    }

    /// End to end: a real program under the library. Needs a libBuddyMalloc.so that writes JSON
    /// reports (BUDDY_REPORT_FORMAT=json); until the library does, this test is skipped.
    @Test(.enabled(if: Support.libraryWritesJSON, "libBuddyMalloc.so does not write JSON reports (BUDDY_REPORT_FORMAT=json) yet"),
          .timeLimit(.minutes(1)))
    func aRealProgram() throws {
        var runner = ProgramRunner(program: ["sh", "-c", "ls / >/dev/null; exit 3"], library: Support.library!)
        runner.progress = .never
        let outcome = try runner.run()
        #expect(outcome.exitStatus == 3)
        #expect(outcome.problems.isEmpty, "\(outcome.problems)")
        #expect(!outcome.documents.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: outcome.directory))
        // ls is a child of sh: its report is one of the others.
        #expect(outcome.others.contains { $0.report.program == "ls" })
        for document in outcome.documents {
            #expect(document.report.memory.reserved > 0)
            #expect(document.report.calls["malloc", default: 0] > 0)
        }
    }

    @Test(.enabled(if: Support.libraryWritesJSON && Support.tool != nil, "libBuddyMalloc.so does not write JSON reports (BUDDY_REPORT_FORMAT=json) yet"),
          .timeLimit(.minutes(1)))
    func theCommand() throws {
        let keep = try Support.temporaryDirectory()
        let result = try Support.runTool(["run", "--lib", Support.library!, "--keep", keep.path, "--", "ls", "/"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("usr"))
        #expect(result.stderr.contains("BuddyMalloc report: ls, pid "))
        #expect(result.stderr.contains("blocks per order"))
        #expect(result.stderr.contains("ls ran "))
        let files = try FileManager.default.contentsOfDirectory(atPath: keep.path)
        #expect(files.contains { $0.hasPrefix("report.") })
        let json = try Support.runTool(["run", "--lib", Support.library!, "--format", "json", "--", "sh", "-c", "ls / >/dev/null; exit 7"])
        #expect(json.status == 7)
    }
}
