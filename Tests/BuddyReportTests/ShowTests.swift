import Foundation
import Testing
@testable import BuddyReportKit

@Suite struct ShowTests {
    func lines(_ text: String) -> [String] { text.components(separatedBy: "\n") }

    @Test func theKeyLines() throws {
        let text = ShowRenderer().render(try Support.report("python-exit.json").report)
        let l = lines(text)
        #expect(l[0] == "BuddyMalloc report: python3, pid 6513, at exit")
        #expect(l.contains("  health WARNING: usage 13%, external fragmentation 85%, 0 errors"))
        #expect(l.contains { $0.hasPrefix("  reserved") && $0.contains("8.0M") && $0.contains("in 4 segments (added 4, released 0)") })
        #expect(l.contains { $0.hasPrefix("  used") && $0.contains("1.0M") && $0.contains("12.6% of reserved, peak 4.2M") })
        #expect(l.contains { $0.hasPrefix("  fragmentation") && $0.hasSuffix("internal 25.4%, external 85.2%") })
        // The per-order table: a header, and one row per order with blocks or activity.
        #expect(l.contains("  order  block  live  free  cached  allocations  splits  coalesces  bytes"))
        #expect(l.contains("      3   128B    74    32      33          491     134          2    17K  █▓"))
        // The top order's 5 free 1M blocks are 16 times the largest live + cached bar (320K, order
        // 12): the full width is that, and the longer bars are cut, marked ».
        #expect(l.contains("blocks per order (bars: █ live, ▓ cached, ░ free bytes; full width 320K, longer bars cut »)"))
        #expect(l.contains("     12    64K     5     4       0           40      16          5   576K  " + String(repeating: "█", count: 30) + "»"))
        #expect(l.contains("     16   1.0M     0     5       0            0       5          0   5.0M  " + String(repeating: "░", count: 30) + "»"))
        #expect(l.contains("     14   256K     1     0       0            5       7          1   256K  " + String(repeating: "█", count: 24)))
        // Calls by entry point, the unused ones named on one line.
        #expect(l.contains("  malloc               3136       0"))
        #expect(l.contains("  total                6532       0"))
        #expect(l.contains("  (no calls to reallocarray, aligned_alloc, memalign, valloc, pvalloc, free_sized, free_aligned_sized)"))
        #expect(l.contains("errors  invalid pointers 0, double frees 0"))
        #expect(l.contains("latency  sampled (period 64, 102 samples): allocation avg 31 ns, max 5.1 µs; free avg 22 ns, max 3.0 µs"))
        // The size histogram: the most frequent bucket has the full bar.
        #expect(l.contains("  ≤ 64B     732  21.0%  " + String(repeating: "█", count: 30)))
        #expect(l.contains("alignments asked for  64B x34"))
        #expect(!text.contains("top allocation sites") && !text.contains("bad pointers"))
    }

    @Test func sitesAndBadPointers() throws {
        let text = ShowRenderer(topSites: 2).render(try Support.report("kvstore-errors.json").report)
        let l = lines(text)
        #expect(l.contains("  health CRITICAL: usage 44%, external fragmentation 53%, 2 errors"))
        #expect(l.contains("errors  invalid pointers 1, double frees 1"))
        // Samples are not blocks (issue 14.3): bytes with their error, blocks estimated, samples said.
        #expect(l.contains("allocation sites live at exit (estimated from samples, one per 512K allocated; 2 of 3; buddy-report leaks lists them all)"))
        // Each site's share of the bytes held, with the same error over the exact denominator.
        #expect(l.contains("  1. 256K ±128K in ~124 blocks (4 samples, 56.7% ±28.4% of held)   load_table+0x5c (/usr/local/bin/kvstore)"))
        #expect(l.contains("                                                                   open_store+0x1a0 (/usr/local/bin/kvstore)"))
        #expect(l.contains("  2. 128K ±11K  in ~128 blocks (128 samples, 28.4% ±2.5% of held)  node_new+0x14 (/usr/local/bin/kvstore)"))
        #expect(l.contains("  (± one standard error of the sampling; blocks: ~ live bytes / the mean size of the process's live blocks below the period)"))
        #expect(!text.contains("strdup"))
        #expect(l.contains("bad pointers (2, the most recent)"))
        #expect(l.contains("  double free      free(0x7f3a1c2000a0)"))
        #expect(l.contains("      release_entry+0x1c (/usr/local/bin/kvstore)"))
        #expect(l.contains("  invalid pointer  realloc(0x7f3a1c200418)"))
        #expect(l.contains("latency  exact (1414 samples): allocation avg 48 ns, max 21 µs; free avg 35 ns, max 9.1 µs"))
    }

    /// The locks: the pool lock's acquisitions, waits and rate per 1,000 calls (truth-text.json:
    /// 1,670 acquisitions, 108 waits, 103,707 calls), the depot's batches and shelf-lock waits.
    /// A report without them (the generated fixtures predate the counters) has no such section.
    @Test func theLocks() throws {
        let l = lines(ShowRenderer().render(try Support.report("truth-text.json").report))
        #expect(l.contains("locks  pool lock taken 1670 times, 108 after a wait (6.5%); 16.10 per 1,000 calls"))
        #expect(l.contains("       depot: batches in 633, out 32, to the pool 1032 (shelf full); shelf locks 0 after a wait; holding 4.2M"))
        #expect(!ShowRenderer().render(try Support.report("python-exit.json").report).contains("pool lock"))
        // Read from the text, the same figures but the depot's bytes, which the text does not print.
        let fromText = lines(ShowRenderer().render(try Support.report("truth-text.txt").report))
        #expect(fromText.contains("locks  pool lock taken 1669 times, 108 after a wait (6.5%); 16.09 per 1,000 calls"))
        #expect(fromText.contains("       depot: batches in 633, out 32, to the pool 1032 (shelf full); shelf locks 0 after a wait"))
    }

    @Test func asciiIsPlainASCII() throws {
        for name in ["python-exit.json", "kvstore-errors.json"] {
            let text = ShowRenderer(ascii: true).render(try Support.report(name).report)
            #expect(text.unicodeScalars.allSatisfy { $0.isASCII })
            #expect(text.contains("#"))
        }
        let text = ShowRenderer(ascii: true).render(try Support.report("python-exit.json").report)
        #expect(lines(text).contains("     16   1.0M     0     5       0            0       5          0   5.0M  " + String(repeating: ".", count: 30) + ">"))
        #expect(lines(text).contains("  <= 64B     732  21.0%  " + String(repeating: "#", count: 30)))
    }

    @Test func aPeriodicReportSaysWhichOne() throws {
        let series = try Support.load("series.jsonl").documents
        let text = ShowRenderer().render(series[3].report)
        #expect(lines(text)[0] == "BuddyMalloc report: cc1, pid 4242, periodic, report #3")
        #expect(lines(text)[1].hasPrefix("  uptime 2.00s, written "))
    }

    /// The tool shows a stream's last report, or all with --all.
    @Test(.enabled(if: Support.tool != nil, "the buddy-report executable is built by swift test"))
    func theCommand() throws {
        let last = try Support.runTool(["show", Support.fixture("series.jsonl")])
        #expect(last.status == 0)
        #expect(last.stdout.hasPrefix("(the last of 9 reports in \(Support.fixture("series.jsonl")); --all shows them all)\nBuddyMalloc report: cc1, pid 4242, at exit, report #8\n"))
        let all = try Support.runTool(["show", "--all", "--ascii", Support.fixture("series.jsonl")])
        #expect(all.stdout.components(separatedBy: "\n").filter { $0.hasPrefix("=== ") }.count == 9)
        let json = try Support.runTool(["show", "--format", "json", Support.fixture("kvstore-errors.json")])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(object?["pid"] as? Int == 777)
        let truncated = try Support.runTool(["show", Support.fixture("truncated.jsonl")])
        #expect(truncated.status == 0)
        #expect(truncated.stderr.contains("warning: \(Support.fixture("truncated.jsonl")): ignored the incomplete document at line 4"))
    }
}

@Suite struct DiffTests {
    func diff() throws -> ReportDiff {
        ReportDiff(try Support.report("diff-a.json"), try Support.report("diff-b.json"))
    }

    func section(_ diff: ReportDiff, _ title: String) -> [ReportDiff.Row] {
        diff.sections.first { $0.title == title }!.rows.filter { $0.change != 0 }
    }

    /// diff-b.json is diff-a.json plus: one 64K block and forty 128B blocks live (+69K used),
    /// 150 mallocs and 109 frees, 40 more requests of at most 128B and one of at most 64K, a site
    /// grown by 64K, one gone and one new.
    @Test func theKnownDifferences() throws {
        let d = try diff()
        let memory = section(d, "memory")
        #expect(memory.map(\.name) == ["used", "free", "requested", "live allocations", "internal fragmentation", "usage"])
        #expect(memory[0].change == 70656 && memory[1].change == -70656)
        #expect(section(d, "calls").map { "\($0.name) \(Int($0.change))" } == ["malloc 150", "free 109"])
        #expect(section(d, "failures and errors").isEmpty)
        // Sorted by the change in bytes: one 64K block before forty 128B blocks.
        #expect(section(d, "blocks per order").map { "\($0.name) \(Int($0.change))" }
            == ["order 12 (64K) live 1", "order 12 (64K) free -1", "order 3 (128B) live 40", "order 3 (128B) free -8"])
        #expect(section(d, "requested sizes").map { "\($0.name) \(Int($0.change))" } == ["<= 128B 40", "<= 64K 1"])
        let sites = section(d, "allocation sites (live bytes)")
        #expect(sites.map { Int($0.change) } == [65536, -51200, 5120])
        #expect(sites.map(\.countChange) == [1, -5, 40])
        #expect(sites[0].name.hasPrefix("cache_put+0x40 (/srv/webapp) < handle_request+0x1f2 (/srv/webapp)"))
    }

    /// The locks section: a report from before the library counted its locks reads as zeros.
    @Test func theLocksSection() throws {
        let d = ReportDiff(try Support.report("python-exit.json"), try Support.report("truth-text.json"))
        #expect(section(d, "locks").map { "\($0.name) \(Int($0.change))" }
            == ["pool lock taken 1670", "depot batches to the pool 1032", "depot batches in 633", "pool lock waits 108", "depot batches out 32"])
    }

    @Test func theText() throws {
        let text = try diff().render()
        let l = text.components(separatedBy: "\n")
        #expect(l[0].hasPrefix("A: ") && l[0].hasSuffix("diff-a.json (webapp pid 31337, periodic, report #2, uptime 10.0s)"))
        #expect(l.contains("memory                        A      B   change"))
        #expect(l.contains("  used                     1.0M   1.1M     +69K  +6.7%"))
        #expect(l.contains("  free                     6.8M   6.7M     -69K  -1.0%"))
        #expect(l.contains("  usage                   12.6%  13.4%  +0.8 pt"))
        #expect(l.contains("  malloc  3136  3286    +150  +4.8%"))
        #expect(l.contains("  order 12 (64K) live   5    6      +1  (+64K) +20%"))
        #expect(l.contains("  order 3 (128B) live  74  114     +40  (+5.0K) +54%"))
        #expect(l.contains { $0.hasPrefix("  json_parse+0x88") && $0.hasSuffix("-50K  (-5 samples) gone") })
        #expect(l.contains { $0.hasPrefix("  session_new+0x12") && $0.hasSuffix("+5.0K  (+40 samples) new") })
        // Unchanged rows are left out unless asked for.
        #expect(!l.contains { $0.hasPrefix("  reserved") })
        #expect(try diff().render(includeUnchanged: true).contains("\n  reserved "))
    }

    @Test func noDifferences() throws {
        let a = try Support.report("python-exit.json")
        #expect(ReportDiff(a, a).render().hasSuffix("\nno differences\n"))
    }

    @Test func theJSON() throws {
        let data = try diff().json()
        let object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let sections = object["sections"] as! [[String: Any]]
        let memory = sections.first { $0["title"] as? String == "memory" }!["rows"] as! [[String: Any]]
        #expect(memory[0]["name"] as? String == "used")
        #expect(memory[0]["change"] as? Double == 70656)
        #expect(memory[0]["unit"] as? String == "bytes")
    }
}
