import Foundation
import Testing
@testable import BuddyReportKit

/// `buddy-report leaks`: the sites live at exit, their estimates, the CI exit status.
@Suite struct LeakTests {
    func lines(_ text: String) -> [String] { text.components(separatedBy: "\n") }

    @Test func theSitesOfAFixture() throws {
        let document = try Support.report("kvstore-errors.json")
        let leaks = try LeakReport([document], resolver: .raw)
        #expect(leaks.processes.count == 1)
        let p = leaks.processes[0]
        #expect(p.sites.map { $0.topFrame?.function } == ["load_table", "node_new", "parse_key"])
        // strdup is a wrapper: skipped, and said.
        #expect(p.sites[2].skipped.map(\.function) == ["strdup"])
        #expect(leaks.totalBytes == 262_144 + 131_072 + 32768)
        let text = leaks.text(maxFrames: 2)
        let l = lines(text)
        #expect(l[0].hasPrefix("kvstore (pid 777): 3 sites live at exit, about 416K ±"))
        #expect(l[1] == "  estimates from sampling one allocation per 512K allocated: bytes ± one standard error, blocks estimated (README, buddy-report leaks)")
        #expect(l.contains("  1. 256K ±128K  in ~124 blocks  (4 samples live, 56.7% ±28.4% of held)"))
        // An exit report at 75% of the peak: no share of the peak, and said why.
        #expect(l[2] == "  written at 80.3% of the peak (604K: peak used, caches included, + oversize peak): shares of the peak need a report written near it (leaks --at-peak over periodic reports)")
        #expect(!text.contains("of the peak)"))
        #expect(l.contains("       load_table+0x5c (/usr/local/bin/kvstore)"))
        #expect(l.contains("       ... 1 more"))
        #expect(l.contains("       parse_key+0x33 (/usr/local/bin/kvstore)  [via strdup]"))
        #expect(!text.contains("note:"))
    }

    /// Shares of held and of the peak, each ± the bytes' standard error over the exact denominator.
    @Test func sharesOfHeldAndOfThePeak() throws {
        var document = try Support.report("kvstore-errors.json")
        let held = document.report.memory.held
        let site = try #require(LeakReport([document], resolver: .raw).processes.first?.sites.first?.estimate)
        #expect(site.liveBytes == 262_144 && site.liveBytesError == 131_072)
        #expect(site.shareOfHeld == 262_144 / Double(held) && site.shareOfHeldError == 131_072 / Double(held))
        #expect(site.shareOfPeak == nil)
        // Written at its peak (a signal report, say): the peak is used + cached (462016 + 34032).
        let peak = document.report.memory.used + document.report.memory.cached
        document.report.memory.peakUsed = peak
        let leaks = try LeakReport([document], resolver: .raw)
        let near = try #require(leaks.processes.first?.sites.first?.estimate)
        #expect(near.shareOfPeak == 262_144 / Double(peak) && near.shareOfPeakError == 131_072 / Double(peak))
        #expect(leaks.text().contains("(4 samples live, 56.7% ±28.4% of held, 52.8% ±26.4% of the peak)"))
        #expect(leaks.text().contains("  written near the peak (484K: peak used, caches included, + oversize peak), at 100.0% of it: each site's bytes now are its share of the peak"))
        let object = try #require(try JSONSerialization.jsonObject(with: leaks.json()) as? [String: Any])
        let process = try #require((object["processes"] as? [[String: Any]])?.first)
        #expect(process["near_peak"] as? Bool == true && process["peak"] as? Int == peak)
        let json = try #require((process["sites"] as? [[String: Any]])?.first)
        #expect(abs((json["share_of_held_error"] as? Double ?? 0) - 131_072 / Double(held)) < 1e-9)
        #expect(abs((json["share_of_peak"] as? Double ?? 0) - 262_144 / Double(peak)) < 1e-9)
    }

    /// --at-peak: of a stream, the report that held the most.
    @Test(.enabled(if: Support.tool != nil))
    func atPeakTakesTheReportThatHeldTheMost() throws {
        let fixture = try String(contentsOfFile: Support.fixture("kvstore-errors.json"), encoding: .utf8)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(fixture.utf8)) as? [String: Any])
        func report(reason: String, sequence: Int, used: Int) throws -> String {
            var o = object
            var memory = o["memory"] as! [String: Any]
            memory["used"] = used; memory["held"] = used; memory["peak_used"] = 900_000
            o["memory"] = memory; o["reason"] = reason; o["sequence"] = sequence
            return String(decoding: try JSONSerialization.data(withJSONObject: o), as: UTF8.self)
        }
        let stream = try [report(reason: "interval", sequence: 0, used: 300_000), report(reason: "interval", sequence: 1, used: 880_000),
                          report(reason: "exit", sequence: 2, used: 450_000)].joined(separator: "\n")
        let path = try Support.temporaryDirectory().appendingPathComponent("stream.jsonl").path
        try Data(stream.utf8).write(to: URL(fileURLWithPath: path))
        let last = try Support.runTool(["leaks", "--no-symbolize", path])
        #expect(last.stdout.contains("live at exit") && !last.stdout.contains("of the peak)"))
        let peak = try Support.runTool(["leaks", "--no-symbolize", "--at-peak", path])
        #expect(peak.status == 0, "\(peak.stderr)")
        #expect(peak.stdout.contains("live when written (periodic)") && peak.stdout.contains("of the 859K the program held"))
        #expect(peak.stdout.contains("written near the peak"))
        #expect(peak.stdout.contains("of held, ") && peak.stdout.contains("of the peak)"))
        // The same reports as periodic files (PATH.0, PATH.1, PATH): one process, its peak.
        let parts = stream.components(separatedBy: "\n")
        let files = try (0..<3).map { i -> String in
            let file = path + ".\(i)"
            try Data(parts[i].utf8).write(to: URL(fileURLWithPath: file))
            return file
        }
        let fromFiles = try Support.runTool(["leaks", "--no-symbolize", "--at-peak"] + files)
        #expect(fromFiles.status == 0 && fromFiles.stdout.components(separatedBy: "kvstore (pid 777)").count == 2)
        #expect(fromFiles.stdout.contains("of the 859K the program held"))
    }

    @Test func leavingSitesOut() throws {
        let document = try Support.report("kvstore-errors.json")
        let ignored = try LeakReport([document], resolver: .raw, ignore: ["tree_insert"])
        #expect(ignored.processes[0].sites.map { $0.topFrame?.function } == ["load_table", "parse_key"])
        #expect(ignored.processes[0].ignoredSites == 1 && ignored.processes[0].ignoredBytes == 131_072)
        #expect(ignored.text().contains("(1 site of 128K left out by --ignore or --min-bytes)"))
        let small = try LeakReport([document], resolver: .raw, minimumBytes: 100_000)
        #expect(small.processes[0].sites.count == 2 && small.totalBytes == 262_144 + 131_072)
    }

    @Test func theJSON() throws {
        let leaks = try LeakReport([try Support.report("kvstore-errors.json")], resolver: .raw)
        let object = try #require(try JSONSerialization.jsonObject(with: leaks.json()) as? [String: Any])
        #expect(object["format"] as? String == "buddymalloc-leaks" && object["version"] as? Int == 1)
        #expect(object["total_bytes"] as? Int == 425_984)
        let process = try #require((object["processes"] as? [[String: Any]])?.first)
        #expect(process["sample_bytes"] as? Int == 524_288 && process["pid"] as? Int == 777)
        let sites = try #require(process["sites"] as? [[String: Any]])
        #expect(sites.map { $0["live_bytes"] as? Int } == [262_144, 131_072, 32768])
        #expect(sites[0]["live_blocks"] as? Int == 124 && sites[0]["blocks_estimate"] as? String == "mean size")
        #expect(sites[0]["live_bytes_error"] as? Int == 131_072)
        #expect(((sites[2]["skipped"] as? [[String: Any]])?.first?["function"]) as? String == "strdup")
        #expect(((sites[2]["frames"] as? [[String: Any]])?.first?["raw"]) as? String == "parse_key+0x33 (/usr/local/bin/kvstore)")
    }

    @Test func aReportWithoutAProfileOrNotAtExit() throws {
        #expect(throws: ToolError.self) { try LeakReport([try Support.report("python-exit.json")], resolver: .raw) }
        do {
            _ = try LeakReport([try Support.report("python-exit.json")], resolver: .raw)
        } catch {
            #expect("\(error)".contains("no allocation-site profile") && "\(error)".contains("BUDDY_PROFILE_SAMPLE=64K"))
        }
        var document = try Support.report("kvstore-errors.json")
        document.report.reason = "signal"
        document.report.profile?.droppedSamples = 3
        let leaks = try LeakReport([document], resolver: .raw)
        #expect(leaks.notes.contains { $0.contains("written on a signal, not at exit") })
        #expect(leaks.notes.contains { $0.contains("3 samples were dropped") })
        #expect(leaks.text().contains("live when written (on a signal)"))
    }

    /// The CI option: exit status 3 above the limit, 0 at or below it.
    @Test(.enabled(if: Support.tool != nil))
    func failAbove() throws {
        let fixture = Support.fixture("kvstore-errors.json")
        let over = try Support.runTool(["leaks", "--no-symbolize", "--fail-above", "400K", fixture])
        #expect(over.status == 3)
        #expect(over.stderr.contains("estimated live bytes at exit 416K (425984) exceed --fail-above 400K (409600)"))
        #expect(over.stdout.contains("kvstore (pid 777): 3 sites live at exit"))
        let under = try Support.runTool(["leaks", "--no-symbolize", "--fail-above", "416K", fixture])
        #expect(under.status == 0)
        let ignoring = try Support.runTool(["leaks", "--no-symbolize", "--fail-above", "400K", "--ignore", "parse_key", fixture])
        #expect(ignoring.status == 0)
        let bad = try Support.runTool(["leaks", "--fail-above", "lots", fixture])
        #expect(bad.status != 0 && bad.status != 3)
        let none = try Support.runTool(["leaks", Support.fixture("python-exit.json")])
        #expect(none.status == 1 && none.stderr.contains("no allocation-site profile"))
    }

    /// A program that holds known blocks at exit: the estimates agree with what it holds; what it
    /// freed is not there.
    @Test(.enabled(if: Support.canProfile, "needs cc and a libBuddyMalloc.so that writes JSON reports"),
          .timeLimit(.minutes(1)))
    func aRealProgramsLeaks() throws {
        let directory = try Support.temporaryDirectory()
        let program = try Support.compile("sites", in: directory)
        let document = try Support.profile(program, sample: "16K", in: directory)
        let leaks = try LeakReport([document], resolver: SiteResolver(symbolizer: try Symbolizer()))
        let sites = leaks.processes[0].sites
        func site(_ function: String) -> ResolvedSite? { sites.first { $0.topFrame?.function == function } }
        // Blocks of the period or more are always sampled, at their size: exact.
        let big = try #require(site("hold_big"))
        #expect(big.estimate.liveBytes == 20 << 20 && big.estimate.liveBlocks == 1 && big.estimate.liveBytesError == 0)
        let array = try #require(site("keep_names"))
        #expect(array.estimate.liveBytes == 160_000 && array.estimate.liveBlocks == 1)
        // 20000 blocks of 48 bytes: 960000 bytes, within three standard errors.
        let names = try #require(site("make_name"))
        #expect(abs(names.estimate.liveBytes - 960_000) <= 3 * names.estimate.liveBytesError)
        #expect((10_000...40_000).contains(names.estimate.liveBlocks), "\(names.estimate)")
        #expect(site("churn") == nil && site("xmalloc") == nil)
        #expect(sites.first?.topFrame?.function == "hold_big")
    }
}
