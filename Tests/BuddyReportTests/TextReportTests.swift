import Foundation
import Testing
@testable import BuddyReportKit

/// Text reports (BUDDY_REPORT_FORMAT=text, the default) read as the JSON the library would have
/// written: checked against the writer's own pairs (Tests/Fixtures/writer: one snapshot in both
/// formats) and a real pair (truth-text.txt and .json: profile_truth's report written in both
/// formats one right after the other).
@Suite struct TextReportTests {
    static let writer = Support.packageRoot.appendingPathComponent("Tests/Fixtures/writer")

    func pair(_ text: String, _ json: String) throws -> (text: ReportDocument, json: ReportDocument, warnings: [String]) {
        let t = try ReportLoader.load(path: text)
        let j = try ReportLoader.load(path: json)
        return (t.documents.last!, j.documents.last!, t.warnings)
    }

    /// The byte figure as the writer prints it: the text's value and the JSON's print the same.
    func printsSame(_ a: Int, _ b: Int) -> Bool {
        TextReportReader.Reader.writerBytes(a) == TextReportReader.Reader.writerBytes(b)
    }

    @Test func theWritersFullSnapshot() throws {
        let path = Self.writer.appendingPathComponent("full.txt").path
        let (t, j, warnings) = try pair(path, Self.writer.appendingPathComponent("full.json").path)
        let a = t.report, b = j.report
        #expect(a.textOrigin != nil && b.textOrigin == nil)
        #expect(a.pid == 4242 && a.program == "golden" && a.reason == "signal" && a.sequence == 7 && a.pool == "private")
        #expect(a.health == b.health)
        #expect(a.calls == b.calls)
        // (The JSON lists the allocating entry points' failures; the golden text has others too.)
        #expect(a.failures.filter { $0.value > 0 && b.failures[$0.key] != nil } == b.failures.filter { $0.value > 0 })
        #expect(a.errors == b.errors)
        #expect(a.system.calls == b.system.calls && printsSame(a.system.bytes, b.system.bytes))
        #expect(a.oversize.blocks == b.oversize.blocks && a.oversize.peakBlocks == b.oversize.peakBlocks)
        #expect(a.segments == b.segments)
        // The locks line: every count but the depot's bytes, which the text does not print.
        var locks = try #require(b.locks)
        locks.depotBytes = 0
        #expect(a.locks == locks)
        #expect(a.memory.liveAllocations == b.memory.liveAllocations && a.memory.peakLiveAllocations == b.memory.peakLiveAllocations)
        for (x, y) in [(a.memory.reserved, b.memory.reserved), (a.memory.used, b.memory.used), (a.memory.cached, b.memory.cached),
                       (a.memory.free, b.memory.free), (a.memory.resident, b.memory.resident), (a.memory.metadata, b.memory.metadata),
                       (a.memory.peakUsed, b.memory.peakUsed), (a.memory.largestFreeBlock, b.memory.largestFreeBlock)] {
            #expect(printsSame(x, y), "\(x) vs \(y)")
        }
        #expect(abs(a.memory.internalFragmentation - b.memory.internalFragmentation) <= 0.005)
        // The rows whose figures fit their columns are read whole; the others are left out, and said.
        let readable = [0, 4, 8, 9, 12, 13]
        #expect(a.orders.map(\.order) == readable)
        for o in a.orders {
            let expected = try #require(b.orders.first { $0.order == o.order })
            #expect(o.live == expected.live && o.free == expected.free && o.cached == expected.cached && o.allocations == expected.allocations
                    && o.splits == expected.splits && o.coalesces == expected.coalesces && printsSame(o.blockSize, expected.blockSize))
        }
        #expect(warnings.filter { $0.contains("an order's row whose columns run together") }.count == 6)
        #expect(warnings.filter { $0.contains("a slab class's row whose columns run together") }.count == 3)
        #expect(a.slabClasses.map(\.index) == [35, 36, 1])
        // The golden snapshot's object sizes are not the classes' (1.0M for class 1): read as printed, and said.
        #expect(a.textOrigin?.rounded.contains("slab_classes.object_size") == true)
        #expect(a.sizes == b.sizes)
        #expect(a.alignments == b.alignments)
        #expect(a.latency?.mode == "sampled" && a.latency?.samplePeriod == 1024 && a.latency?.samples == b.latency?.samples)
        #expect(a.time?.uptime == 4.38 && a.time?.now == nil)
        // No profile and no bad pointers in a private pool's text: none read.
        #expect(a.profile == nil && a.badPointers.isEmpty)
    }

    @Test func theWritersEmptySnapshot() throws {
        let (t, j, warnings) = try pair(Self.writer.appendingPathComponent("empty.txt").path, Self.writer.appendingPathComponent("empty.json").path)
        let a = t.report, b = j.report
        #expect(a.memory == b.memory)
        #expect(a.orders == b.orders)
        #expect(a.config?.minBlock == 16 && a.config?.maxBlock == 8 << 20)
        #expect(a.latency?.mode == "off")
        #expect(a.calls.isEmpty && a.sizes.isEmpty && a.alignments.isEmpty)
        // Every byte figure printed exactly (0B, 8.0M): nothing rounded, the rest still said.
        #expect(a.textOrigin?.rounded == [])
        #expect(warnings.first?.contains("a text report, so byte figures") == true)
        #expect(warnings.first?.contains("BUDDY_REPORT_FORMAT=json") == true)
    }

    /// A real report: the tables' figures give used, free and the slabs' spare bytes exactly, and
    /// the sites' bytes where every live sample was small.
    @Test func aRealReportWithSlabsOversizeAndAProfile() throws {
        let (t, j, warnings) = try pair(Support.fixture("truth-text.txt"), Support.fixture("truth-text.json"))
        let a = t.report, b = j.report
        #expect(a.memory.used == b.memory.used)
        #expect(a.memory.free == b.memory.free)
        #expect(a.memory.slabSpare == b.memory.slabSpare)
        #expect(a.memory.reserved == b.memory.reserved)
        #expect(a.orders == b.orders)
        #expect(a.slabClasses == b.slabClasses.filter { $0.slabs + $0.allocations + $0.cached > 0 })
        #expect(a.config?.minBlock == b.config?.minBlock && a.config?.maxBlock == b.config?.maxBlock)
        #expect(printsSame(a.oversize.bytes, b.oversize.bytes) && a.oversize.blocks == b.oversize.blocks)
        #expect(a.profile?.sampleBytes == b.profile?.sampleBytes)
        #expect(a.sites.count == b.sites.count)
        for (x, y) in zip(a.sites, b.sites) {
            #expect(x.frames == y.frames && x.liveCount == y.liveCount && x.liveBlocks == y.liveBlocks)
            // All-small sites exactly (live samples x the period), the big block's as printed.
            if y.liveBytes == y.liveCount * (b.profile?.sampleBytes ?? 0) { #expect(x.liveBytes == y.liveBytes) } else { #expect(printsSame(x.liveBytes, y.liveBytes)) }
            #expect(x.samples == nil && x.allocatedBytes == nil)
        }
        #expect(a.calls.filter { $0.value > 0 } == b.calls.filter { $0.value > 0 })
        let origin = try #require(a.textOrigin)
        #expect(origin.lacking.contains { $0.contains("sample counts and allocated bytes") })
        #expect(!origin.rounded.contains("memory.used") && origin.rounded.contains("memory.peak_used"))
        // The classes' object sizes follow from their numbers (9/8 ... 15/8 of a power of two).
        #expect(!origin.rounded.contains("slab_classes.object_size"))
        #expect(warnings.count == 1 && warnings[0].hasPrefix(Support.fixture("truth-text.txt") + ": a text report"))
        // The estimates work on it as on the JSON.
        let fromText = try LeakReport([t], resolver: .raw), fromJSON = try LeakReport([j], resolver: .raw)
        #expect(fromText.processes[0].sites.map(\.estimate.liveBytesError) == fromJSON.processes[0].sites.map(\.estimate.liveBytesError))
    }

    /// `show` says what the text lacks; `show --format json` is the JSON it read; diff and plot take it.
    @Test func theCommandsOnAText() throws {
        let document = try Support.report("truth-text.txt")
        let text = ShowRenderer().render(document.report)
        #expect(text.contains("\n  read from a text report, so byte figures are rounded to three digits"))
        #expect(text.contains("BUDDY_REPORT_FORMAT=json"))
        let plotter = try Plotter(documents: [document])
        #expect(try plotter.svg(.perOrder).contains("Blocks per order"))
        // The same snapshot in both formats: nothing changed per order, per slab class, per site.
        let diff = ReportDiff(try Support.report("truth-text.json"), document)
        for title in ["blocks per order", "slab classes", "allocation sites (live bytes)", "requested sizes"] {
            let section = try #require(diff.sections.first { $0.title == title })
            // (The big block's site as the text prints it: 12.0M.)
            let changed = section.rows.filter { $0.change != 0 && !($0.unit == .bytes && printsSame(Int($0.a), Int($0.b))) }
            #expect(changed.isEmpty, "\(title): \(changed.map(\.name))")
        }
    }

    @Test func aStreamWithOtherTextAndACutReport() throws {
        let report = try String(contentsOfFile: Support.fixture("truth-text.txt"), encoding: .utf8)
        let cut = report.components(separatedBy: "\n").prefix(3).joined(separator: "\n")
        let stream = "program output\n" + report + "more output\n" + report.replacingOccurrences(of: "report #0", with: "report #1") + cut
        let file = try ReportLoader.parse(Data(stream.utf8), file: "stderr.txt")
        #expect(file.documents.count == 2)
        #expect(file.documents.map(\.report.sequence) == [0, 1])
        #expect(file.documents[1].label == "stderr.txt, report 2 (line \(report.components(separatedBy: "\n").count + 2))")
        #expect(file.warnings.contains { $0.contains("ignored the last report") && $0.contains("no \"pool\" line") })
        #expect(file.warnings.contains { $0.contains("skipped 2 lines of other text") })
    }

    @Test func aTextThisReaderCannotRead() throws {
        // An older library's text: a pool line without used bytes, no table of orders.
        do {
            _ = try Support.load("text-report.txt")
            Issue.record("read an unreadable text")
        } catch {
            #expect(error.description == Support.fixture("text-report.txt")
                + ": a text report this buddy-report cannot read: its \"pool\" line has no reserved, used or free bytes (an older library's text?); have the library write JSON with BUDDY_REPORT_FORMAT=json")
        }
    }

    @Test func bytesAsTheWriterPrintsThem() {
        typealias R = TextReportReader.Reader
        for value in [0, 1, 1023, 1024, 1152, 1280, 87_556_096, 33_554_432, 1_000_000, 12_583_035, 1 << 40] {
            let text = R.writerBytes(value)
            let low = R.lowestBytes(text)!, high = R.lowestBytes(text, upper: true)!
            #expect(low <= value && value < high, "\(value) prints \(text): [\(low), \(high))")
            #expect(R.writerBytes(low) == text && R.writerBytes(high - 1) == text && R.writerBytes(high) != text)
        }
        #expect(R.writerBytes(1152) == "1.1K" && R.writerBytes(87_556_096) == "83.5M" && R.writerBytes(600 << 10) == "600K")
    }
}
