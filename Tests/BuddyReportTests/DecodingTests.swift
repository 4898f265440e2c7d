import Foundation
import Testing
@testable import BuddyReportKit

@Suite struct DecodingTests {
    @Test func aFullReport() throws {
        let file = try Support.load("python-exit.json")
        #expect(file.documents.count == 1)
        #expect(file.warnings.isEmpty)
        let r = file.documents[0].report
        #expect(r.format == "buddymalloc-report" && r.version == 1)
        #expect(r.pid == 6513 && r.program == "python3" && r.reason == "exit" && r.sequence == 0 && r.pool == "process")
        #expect(r.time?.uptime == 4.38)
        #expect(r.config?.maxBlock == 1_048_576 && r.config?.onError == "abort")
        // The memory figures add up: reserved = used + cached + free.
        #expect(r.memory.reserved == r.memory.used + r.memory.cached + r.memory.free)
        #expect(r.memory.largestFreeBlock == 1_048_576)
        #expect(r.calls["malloc"] == 3136 && r.calls["free"] == 2911)
        #expect(r.errors == ["invalid_pointer": 0, "double_free": 0])
        #expect(r.orders.count == 17)
        #expect(r.orders.map(\.blockSize) == (0...16).map { 16 << $0 })
        // used = the bytes of the live blocks.
        #expect(r.orders.reduce(0) { $0 + $1.liveBytes } == r.memory.used)
        #expect(r.sizes.first?.upto == 16)
        #expect(r.alignments == [Report.AlignmentCount(alignment: 64, count: 34)])
        #expect(r.latency?.mode == "sampled" && r.latency?.samplePeriod == 64)
        #expect(r.health?.status == "WARNING")
        #expect(r.sites.isEmpty && r.badPointers.isEmpty)
    }

    @Test func profileSitesAndBadPointers() throws {
        let r = try Support.report("kvstore-errors.json").report
        #expect(r.sites.count == 3)
        #expect(r.sites[0].liveBytes == 262_144 && r.sites[0].frames.first == "load_table+0x5c (/usr/local/bin/kvstore)")
        #expect(r.profile?.sampleBytes == 524_288)
        #expect(r.badPointers.map(\.kind) == ["double_free", "invalid_pointer"])
        #expect(r.badPointers[1].function == "realloc" && r.badPointers[1].pointer == "0x7f3a1c200418")
        #expect(r.errorCount == 2)
    }

    @Test func aStreamOfPeriodicReports() throws {
        let file = try Support.load("series.jsonl")
        #expect(file.documents.count == 9)
        #expect(file.documents.map(\.report.sequence) == Array(0...8))
        #expect(file.documents.map(\.line) == Array(1...9))
        #expect(file.documents.dropLast().allSatisfy { $0.report.reason == "interval" })
        #expect(file.documents.last!.report.reason == "exit")
        #expect(file.documents[2].label.hasSuffix("series.jsonl, report 3 (line 3)"))
        let series = ReportSeries(file.documents.shuffled())
        #expect(series.mainPid == 4242)
        #expect(series.reports(pid: 4242).map(\.report.sequence) == Array(0...8))
    }

    /// A process killed while writing leaves half a document: the complete ones are read.
    @Test func anIncompleteLastDocumentIsSkippedWithAWarning() throws {
        let file = try Support.load("truncated.jsonl")
        #expect(file.documents.count == 3)
        #expect(file.warnings.count == 1)
        #expect(file.warnings[0].contains("incomplete document at line 4"))
    }

    /// Pretty-printed documents one after another, with other lines between them (a stderr).
    @Test func prettyPrintedDocumentsAndOtherTextInAStream() throws {
        let one = try String(contentsOfFile: Support.fixture("python-exit.json"), encoding: .utf8)
        let two = try String(contentsOfFile: Support.fixture("kvstore-errors.json"), encoding: .utf8)
        let text = "hello from the program\n" + one + "buddy: free(): double free of 0x7f3a1c2000a0 (...)\n" + two
        let file = try ReportLoader.parse(Data(text.utf8), file: "stderr.txt")
        #expect(file.documents.map(\.report.pid) == [6513, 777])
        #expect(file.documents[1].line == one.split(separator: "\n", omittingEmptySubsequences: false).count + 2)
        #expect(file.warnings == ["stderr.txt: skipped 2 lines of other text between the reports"])
    }

    /// Only the core is required; unknown fields are ignored and missing ratios are derived.
    @Test func aMinimalReportWithUnknownFields() throws {
        let json = """
        {"format": "buddymalloc-report", "version": 1, "pid": 9, "future_field": {"x": [1, 2]},
         "memory": {"reserved": 1048576, "used": 262144, "free": 786432, "largest_free_block": 524288, "requested": 131072},
         "calls": {"malloc": 5, "free": 1, "new_entry_point": 2},
         "orders": [{"order": 0, "block_size": 16, "live": 1, "free": 0, "extra": true}]}
        """
        let r = try ReportLoader.parse(Data(json.utf8), file: "minimal.json").documents[0].report
        #expect(r.program == "" && r.reason == "exit" && r.time == nil && r.latency == nil)
        #expect(r.memory.usage == 0.25)
        #expect(r.memory.internalFragmentation == 0.5)
        #expect(r.memory.externalFragmentation == 1 - 524_288.0 / 786_432.0)
        #expect(Report.ordered(r.calls.keys) == ["malloc", "free", "new_entry_point"])
        let text = ShowRenderer().render(r)
        #expect(text.contains("new_entry_point"))
    }
}

@Suite struct UnitsTests {
    @Test func bytes() {
        #expect(Units.bytes(0) == "0B")
        #expect(Units.bytes(1023) == "1023B")
        #expect(Units.bytes(1024) == "1.0K")
        #expect(Units.bytes(583 * 1024) == "583K")
        #expect(Units.bytes(1_048_575) == "1.0M")
        #expect(Units.bytes(2_700_000) == "2.6M")
        #expect(Units.bytes(4 << 30) == "4.0G")
        #expect(Units.signedBytes(70656) == "+69K")
        #expect(Units.signedBytes(-512) == "-512B")
        #expect(Units.signedBytes(0) == "0B")
    }

    @Test func percentsTimesAndBars() {
        #expect(Units.percent(0.143) == "14.3%")
        #expect(Units.signedPoints(-0.01) == "-1.0 pt")
        #expect(Units.duration(4.38) == "4.38s")
        #expect(Units.duration(72) == "1m12s")
        #expect(Units.nanoseconds(5100) == "5.1 µs")
        let unicode = BarStyle(ascii: false, width: 10)
        #expect(unicode.bar(1) == String(repeating: "█", count: 10))
        #expect(unicode.bar(0.55) == "█████▌")
        #expect(unicode.bar(0.001) == "▏")
        #expect(unicode.bar(0) == "")
        let ascii = BarStyle(ascii: true, width: 10)
        #expect(ascii.bar(0.55) == "######")
        #expect(ascii.stacked([0.5, 0.2, 0.3]) == "#####==...")
        // Small parts: the length is the rounded sum, at least one cell.
        #expect(ascii.stacked([0.01, 0.01, 0]) == "#")
        #expect(ascii.stacked([0, 0, 0]) == "")
    }
}
