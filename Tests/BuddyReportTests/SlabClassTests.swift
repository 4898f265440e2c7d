import Foundation
import Testing
@testable import BuddyReportKit

/// `slab_classes` and `memory.slab_spare`, on python-slab-classes.json (a real report of the
/// library, see the fixtures' README) and on the older fixtures, which have neither.
@Suite struct SlabClassTests {
    static let fixture = "python-slab-classes.json"

    func lines(_ text: String) -> [String] { text.components(separatedBy: "\n") }

    /// The fixture's JSON object, changed by `edit`, read back as a document named `file`.
    func edited(file: String, _ edit: (inout [String: Any]) -> Void) throws -> ReportDocument {
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: Support.fixtures.appendingPathComponent(Self.fixture))) as! [String: Any]
        edit(&object)
        return try ReportLoader.parse(try JSONSerialization.data(withJSONObject: object), file: file).documents[0]
    }

    /// The message loading `json` fails with.
    func message(json: String) -> String {
        do {
            _ = try ReportLoader.parse(Data(json.utf8), file: "x.json")
            return "no error"
        } catch {
            return error.description
        }
    }

    // MARK: - Decoding

    @Test func decoding() throws {
        let r = try Support.report(Self.fixture).report
        #expect(r.memory.slabSpare == 3_444_608)
        #expect(r.slabClasses.count == 35)
        #expect(r.slabClasses.map(\.index) == Array(0..<35))
        #expect(r.slabClasses[0] == Report.SlabClass(index: 0, objectSize: 1152, slabSize: 16384, slabs: 3, live: 0,
                                                      free: 32, cached: 10, allocations: 119, frees: 119))
        #expect(r.slabClasses[22] == Report.SlabClass(index: 22, objectSize: 10240, slabSize: 131_072, slabs: 2, live: 1,
                                                       free: 22, cached: 1, allocations: 1276, frees: 1275))
        // Objects of 9/8 ... 15/8 of 1 KiB ... 16 KiB, seven classes per doubling.
        #expect(r.slabClasses.map(\.objectSize) == (0..<35).map { (1024 << ($0 / 7)) / 8 * (9 + $0 % 7) })
        // The classes' spare bytes are memory.slab_spare; used = live blocks + live objects.
        #expect(r.slabClasses.reduce(0) { $0 + $1.spareBytes } == r.memory.slabSpare)
        #expect(r.orders.reduce(0) { $0 + $1.liveBytes } + r.slabClasses.reduce(0) { $0 + $1.liveBytes } == r.memory.used)
    }

    /// Reports written before the library had slabs load as before: no classes, no spare bytes.
    @Test(arguments: ["python-exit.json", "kvstore-errors.json", "diff-a.json", "series.jsonl"])
    func olderReports(_ name: String) throws {
        for document in try Support.load(name).documents {
            #expect(document.report.slabClasses.isEmpty)
            #expect(document.report.memory.slabSpare == 0)
        }
    }

    /// A class needs its identity, sizes and object counts; the counters default to 0.
    @Test func requiredAndOptionalFields() throws {
        let json = """
        {"format": "buddymalloc-report", "version": 1, "pid": 9, "calls": {}, "orders": [],
         "memory": {"reserved": 16384, "used": 1152, "free": 15232, "slab_spare": 15232},
         "slab_classes": [{"class": 0, "object_size": 1152, "slab_size": 16384, "slabs": 1, "live": 1, "free": 12}]}
        """
        let r = try ReportLoader.parse(Data(json.utf8), file: "x.json").documents[0].report
        #expect(r.slabClasses == [Report.SlabClass(index: 0, objectSize: 1152, slabSize: 16384, slabs: 1, live: 1,
                                                    free: 12, cached: 0, allocations: 0, frees: 0)])
        #expect(r.memory.slabSpare == 15232)
        #expect(message(json: json.replacingOccurrences(of: #""object_size": 1152, "#, with: ""))
            == #"x.json: missing field "object_size" at slab_classes[0]"#)
        #expect(message(json: json.replacingOccurrences(of: #""slab_spare": 15232"#, with: #""slab_spare": "15K""#))
            .hasPrefix("x.json: field memory.slab_spare has the wrong type (expected an integer)"))
        #expect(message(json: json.replacingOccurrences(of: #""live": 1, "#, with: #""live": null, "#))
            == "x.json: field slab_classes[0].live is null")
    }

    // MARK: - show

    @Test func theShowSection() throws {
        let l = lines(ShowRenderer().render(try Support.report(Self.fixture).report))
        #expect(l.contains { $0.hasPrefix("  free") && $0.hasSuffix("largest free block 4.0M, 3.3M spare in slabs") })
        // After the orders, before the calls.
        let title = try #require(l.firstIndex(of: "slab classes (bars: █ live, ▓ cached, ░ spare bytes of the slabs; full width 256K)"))
        #expect(l[..<title].contains { $0.hasPrefix("blocks per order") })
        #expect(l[title...].contains("calls by entry point"))
        #expect(l[title + 1] == "  class  object  slab  slabs  live  free  cached  allocations  frees  bytes")
        // 3 slabs of 16K: 10 cached objects (11.25K of 48K, 7 of 30 cells) and the spare rest.
        #expect(l[title + 2] == "      0   1152B   16K      3     0    32      10          119    119    48K  ▓▓░░░░")
        #expect(l[title + 3] == "      1   1280B   16K      5     3    47      10         2071   2068    80K  ▓░░░░░░░░")
        // The largest class is the full width: 1 live and 1 cached object of 10K, the rest spare.
        #expect(l.contains("     22  10240B  128K      2     1    22       1         1276   1275   256K  █▓" + String(repeating: "░", count: 28)))
        #expect(l.contains("     34  30720B  256K      1     0     8       0          376    376   256K  " + String(repeating: "░", count: 30)))
        // Classes 30 and 33 never had a slab.
        let rows = l[(title + 2)...].prefix { $0.hasPrefix("   ") }.map { Int($0.split(separator: " ")[0])! }
        #expect(rows == Array(0...29) + [31, 32, 34])
        #expect(l[title + 2 + rows.count] == "  (2 classes without slabs or activity not shown)")
    }

    @Test func theShowSectionInASCII() throws {
        let text = ShowRenderer(ascii: true).render(try Support.report(Self.fixture).report)
        #expect(text.unicodeScalars.allSatisfy { $0.isASCII })
        #expect(lines(text).contains("slab classes (bars: # live, = cached, . spare bytes of the slabs; full width 256K)"))
        #expect(lines(text).contains("     22  10240B  128K      2     1    22       1         1276   1275   256K  #=" + String(repeating: ".", count: 28)))
    }

    @Test(arguments: ["python-exit.json", "kvstore-errors.json"])
    func noShowSectionForAnOlderReport(_ name: String) throws {
        let text = ShowRenderer().render(try Support.report(name).report)
        #expect(text.contains("blocks per order"))
        #expect(!text.contains("slab"))
    }

    /// A pool whose slab classes are all unused: no section either.
    @Test func noShowSectionWithoutSlabs() throws {
        let document = try edited(file: "unused.json") { object in
            object["slab_classes"] = (object["slab_classes"] as! [[String: Any]]).map { k in
                k.merging(["slabs": 0, "live": 0, "free": 0, "cached": 0, "allocations": 0, "frees": 0]) { $1 }
            }
        }
        #expect(document.report.slabClasses.count == 35)
        #expect(!ShowRenderer().render(document.report).contains("slab classes"))
    }

    @Test(.enabled(if: Support.tool != nil, "the buddy-report executable is built by swift test"))
    func theShowCommand() throws {
        let result = try Support.runTool(["show", "--ascii", Support.fixture(Self.fixture)])
        #expect(result.status == 0)
        #expect(lines(result.stdout).contains("      0   1152B   16K      3     0    32      10          119    119    48K  ==...."))
    }

    // MARK: - diff

    /// B = the fixture with class 1 one slab and 12 live objects bigger, and two free objects of
    /// class 7 handed out; slab_spare follows (+1K of the new slab's slack, -4.5K of class 7).
    func slabDiff() throws -> ReportDiff {
        let a = try Support.report(Self.fixture)
        let b = try edited(file: "b.json") { object in
            var classes = object["slab_classes"] as! [[String: Any]]
            classes[1]["slabs"] = 6
            classes[1]["live"] = 15
            classes[7]["live"] = 4
            classes[7]["free"] = 21
            object["slab_classes"] = classes
            var memory = object["memory"] as! [String: Any]
            memory["slab_spare"] = 3_444_608 + (16384 - 12 * 1280) - 2 * 2304
            object["memory"] = memory
        }
        return ReportDiff(a, b)
    }

    @Test func theDiffRows() throws {
        let d = try slabDiff()
        let rows = d.sections.first { $0.title == "slab classes" }!.rows.filter { $0.change != 0 }
        // By the change in bytes: the 16K slab, 12 x 1280B, then 2 x 2304B each way.
        #expect(rows.map { "\($0.name) \(Int($0.change))" }
            == ["class 1 (1280B) slabs 1", "class 1 (1280B) live 12", "class 7 (2304B) live 2", "class 7 (2304B) free -2"])
        #expect(rows.map(\.blockSize) == [16384, 1280, 2304, 2304])
        let memory = d.sections.first { $0.title == "memory" }!.rows.filter { $0.change != 0 }
        #expect(memory.map(\.name) == ["slab spare"] && memory[0].change == -3584)
        #expect(d.sections.map(\.title) == ["memory", "calls", "failures and errors", "locks", "blocks per order", "slab classes",
                                             "requested sizes", "allocation sites (live bytes)"])
    }

    @Test func theDiffText() throws {
        let text = try slabDiff().render()
        let l = lines(text)
        let title = try #require(l.firstIndex(of: "slab classes              A   B  change"))
        #expect(Array(l[(title + 1)...].prefix(4)) == [
            "  class 1 (1280B) slabs   5   6      +1  (+16K) +20%",
            "  class 1 (1280B) live    3  15     +12  (+15K) +400%",
            "  class 7 (2304B) live    2   4      +2  (+4.5K) +100%",
            "  class 7 (2304B) free   23  21      -2  (-4.5K) -8.7%",
        ])
        #expect(l.contains("  slab spare  3.3M  3.3M   -3.5K  -0.1%"))
        // Only the classes that changed.
        #expect(!text.contains("class 0 ") && !text.contains("class 22 "))
    }

    /// Older reports have no classes: nothing to compare, no section; against a newer report,
    /// the classes are new.
    @Test func theDiffOfOlderReports() throws {
        let old = ReportDiff(try Support.report("diff-a.json"), try Support.report("diff-b.json"))
        #expect(old.sections.first { $0.title == "slab classes" }?.rows.isEmpty == true)
        #expect(!old.render(includeUnchanged: true).contains("slab classes"))
        #expect(lines(old.render(includeUnchanged: true)).contains {
            $0.hasPrefix("  slab spare ") && $0.split(separator: " ") == ["slab", "spare", "0B", "0B", "0B"]
        })
        let text = ReportDiff(try Support.report("python-exit.json"), try Support.report(Self.fixture)).render()
        #expect(lines(text).contains("  class 22 (10240B) slabs  0   2      +2  (+256K) new"))
        let same = try Support.report(Self.fixture)
        #expect(ReportDiff(same, same).render().hasSuffix("\nno differences\n"))
    }
}
