import Foundation
import Testing
@testable import BuddyReportKit

/// Collapsed stacks and the flame graph.
@Suite struct FlameTests {
    @Test func collapsedStacksOfAFixture() throws {
        let r = try Support.report("kvstore-errors.json").report
        // Outermost first, the wrapper (strdup) left out, one line per stack: Brendan Gregg's format.
        #expect(StackProfile([r], resolver: .raw, value: .live).collapsed() == """
            main;open_store;load_table 262144
            main;open_store;load_table;tree_insert;node_new 131072
            main;parse_key 32768

            """)
        #expect(StackProfile([r], resolver: .raw, value: .samples).collapsed() == """
            main;open_store;load_table 4
            main;open_store;load_table;tree_insert;node_new 128
            main;parse_key 512

            """)
        // Without the default skips, strdup is the leaf.
        let all = StackProfile([r], resolver: SiteResolver(filter: FrameFilter(defaults: false)), value: .live)
        #expect(all.collapsed().contains("main;parse_key;strdup 32768\n"))
        // Several processes: a root frame each.
        let two = StackProfile([r, r], resolver: .raw, value: .live)
        #expect(two.collapsed() == """
            kvstore (pid 777);main;open_store;load_table 524288
            kvstore (pid 777);main;open_store;load_table;tree_insert;node_new 262144
            kvstore (pid 777);main;parse_key 65536

            """)
    }

    /// Names with ";" (the separator) or line breaks, inlined frames, sites without frames.
    @Test func namesInStacks() {
        #expect(StackProfile.name(SymbolizedFrame(function: "f;g\nh", raw: "x")) == "f:g h")
        #expect(StackProfile.name(SymbolizedFrame(function: "inl", raw: "x", inlined: true)) == "inl_[i]")
        #expect(StackProfile.name(.unresolved("/usr/lib/libz.so.1+0x42")) == "libz.so.1+0x42")
    }

    @Test func theFlameGraph() throws {
        let r = try Support.report("kvstore-errors.json").report
        let graph = FlameGraph(StackProfile([r], resolver: .raw, value: .live), width: 1200)
        let svg = try SVGReader.read(graph.svg())
        #expect(svg.texts.contains("Live bytes: kvstore (pid 777) (estimated, sampled every 512K)"))
        // One box per frame of the tree: all, main, open_store, load_table, tree_insert, node_new, parse_key.
        let titles = svg.texts.filter { $0.contains("\n") }
        #expect(titles.map { String($0.split(separator: "\n")[0]) }.sorted()
            == ["all", "load_table", "main", "node_new", "open_store", "parse_key", "tree_insert"])
        #expect(titles.contains("all\n416K live bytes, 100.0%"))
        #expect(titles.contains("load_table\n384K live bytes, 92.3%"))
        #expect(titles.contains("parse_key\n32K live bytes, 7.7%"))
        #expect(!graph.svg().contains("strdup"))
        // Widths are shares of the 1180 pixels inside the margins; callers below callees.
        let rects = svg.elements.filter { $0.name == "rect" && $0.attributes["class"] == nil }.dropFirst(2)
        func box(_ x: Double, width: Double) -> Bool {
            rects.contains { rect in
                let rx = Double(rect.attributes["x"] ?? "") ?? -1
                let rw = Double(rect.attributes["width"] ?? "") ?? -1
                return abs(rx - x) < 0.011 && abs(rw - width) < 0.011
            }
        }
        let total = 425_984.0, loadTable = 393_216.0, parseKey = 32768.0
        #expect(box(10, width: 1180))  // all, and main
        #expect(box(10, width: 1180 * loadTable / total))  // open_store, load_table
        #expect(box(10 + 1180 * loadTable / total, width: 1180 * parseKey / total))  // parse_key
        // The root at the bottom: the lowest box is the widest.
        let lowest = rects.max { Double($0.attributes["y"]!)! < Double($1.attributes["y"]!)! }
        #expect(lowest?.attributes["width"] == "1180")
    }

    /// Frame names are escaped: C++ templates and operators make well-formed XML.
    @Test func escaping() throws {
        let json = #"{"format":"buddymalloc-report","version":1,"pid":9,"program":"a<b>&c","memory":{"reserved":0,"used":0,"free":0},"calls":{},"orders":[],"profile":{"sample_bytes":4096,"sites":[{"live_bytes":8192,"live_count":2,"frames":["_ZN3FooIiE3barEv+0x1 (/p)","std::vector<int, A<&x>>::push+0x2 (/p)","main+0x3 (/p)"]}]}}"#
        let r = try ReportLoader.parse(Data(json.utf8), file: "t").documents[0].report
        let svg = try SVGReader.read(FlameGraph(StackProfile([r], resolver: .raw, value: .live)).svg())
        #expect(svg.texts.contains { $0.hasPrefix("std::vector<int, A<&x>>::push\n") })
        #expect(StackProfile([r], resolver: .raw, value: .live).collapsed() == "main;std::vector<int, A<&x>>::push;_ZN3FooIiE3barEv 8192\n")
    }

    @Test func noSites() throws {
        let r = try Support.report("python-exit.json").report
        let svg = try SVGReader.read(FlameGraph(StackProfile([r], resolver: .raw, value: .live)).svg())
        #expect(svg.texts.contains("no sampled sites"))
        #expect(StackProfile([r], resolver: .raw, value: .live).collapsed() == "")
    }

    /// The commands on a real program: its functions in the stacks and in the SVG.
    @Test(.enabled(if: Support.canProfile && Support.tool != nil, "needs cc, the tool and a libBuddyMalloc.so that writes JSON reports"),
          .timeLimit(.minutes(1)))
    func theCommands() throws {
        let directory = try Support.temporaryDirectory()
        let program = try Support.compile("sites", in: directory)
        let report = try Support.profile(program, in: directory).file
        let collapsed = try Support.runTool(["collapsed", report])
        #expect(collapsed.status == 0)
        let stacks = collapsed.stdout.split(separator: "\n")
        #expect(stacks.contains { $0.hasSuffix(";main;keep_names;make_name \($0.split(separator: " ").last!)") })
        #expect(stacks.contains { $0.hasSuffix(";main;hold_big 20971520") })
        #expect(!collapsed.stdout.contains("xmalloc") && !collapsed.stdout.contains("churn"))
        let allocated = try Support.runTool(["collapsed", "--value", "allocated", report])
        #expect(allocated.stdout.contains(";main;keep_names 160000"))
        let svgPath = directory.appendingPathComponent("flame.svg").path
        let flame = try Support.runTool(["flame", report, "-o", svgPath])
        #expect(flame.status == 0 && flame.stdout == svgPath + "\n")
        let svg = try SVGReader.read(try String(contentsOfFile: svgPath, encoding: .utf8))
        let frames = Set(svg.texts.filter { $0.contains("\n") }.map { String($0.split(separator: "\n")[0]) })
        for name in ["all", "main (sites.c)", "hold_big (sites.c:\(try Support.siteLine("hold_big")))", "make_name (sites.c:\(try Support.siteLine("make_name")))"] {
            #expect(frames.contains(name), "\(name) not in \(frames.sorted())")
        }
    }
}
