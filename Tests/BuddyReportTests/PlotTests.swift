import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import BuddyReportKit

/// Parses an SVG with XMLParser: it must be well-formed; collects what the tests look at.
final class SVGReader: NSObject, XMLParserDelegate {
    struct Element {
        var name: String
        var attributes: [String: String]
        /// The data-series of the enclosing group.
        var series: String?
    }

    var elements: [Element] = []
    var texts: [String] = []
    private var groups: [String?] = []
    private var text = ""

    static func read(_ svg: String) throws -> SVGReader {
        let reader = SVGReader()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = reader
        guard parser.parse() else {
            throw PlotError(description: "not well-formed XML: \(parser.parserError.map { "\($0)" } ?? "?") at line \(parser.lineNumber)")
        }
        return reader
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        if name == "g" { groups.append(attributes["data-series"] ?? groups.last ?? nil) }
        elements.append(Element(name: name, attributes: attributes, series: groups.last ?? nil))
        text = ""
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "g" { groups.removeLast() }
        if name == "text" || name == "title" { texts.append(text) }
        text = ""
    }

    func series(_ name: String, _ element: String) -> [Element] {
        elements.filter { $0.series == name && $0.name == element }
    }
}

@Suite struct PlotTests {
    @Test func aSeriesMakesFourCharts() throws {
        let plotter = try Plotter(documents: try Support.load("series.jsonl").documents)
        #expect(plotter.available == [.perOrder, .sizes, .fragmentation, .usage])
        #expect(plotter.notes.isEmpty)

        let fragmentation = try SVGReader.read(try plotter.svg(.fragmentation))
        #expect(fragmentation.texts.contains("Fragmentation and usage over time"))
        for name in ["internal fragmentation", "external fragmentation", "usage (used / reserved)"] {
            let lines = fragmentation.series(name, "polyline")
            #expect(lines.count == 1)
            #expect(lines.first?.attributes["points"]?.split(separator: " ").count == 9)
            #expect(fragmentation.series(name, "circle").count == 9)
            #expect(fragmentation.texts.contains(name))
        }
        // Axes: ticks labelled in percent and seconds, and the axis titles.
        #expect(fragmentation.texts.contains("100%") && fragmentation.texts.contains("0%"))
        #expect(fragmentation.texts.contains("0s") && fragmentation.texts.contains("4s"))
        #expect(fragmentation.texts.contains("time since the pool was created"))

        let usage = try SVGReader.read(try plotter.svg(.usage))
        for name in ["reserved", "resident", "used", "requested", "cached", "free"] {
            #expect(usage.series(name, "polyline").count == 1, "\(name)")
        }
        #expect(usage.texts.contains("reserved at 4.21s: 32M"))
    }

    @Test func perOrderStacksLiveCachedFree() throws {
        let document = try Support.report("python-exit.json")
        let plotter = try Plotter(documents: [document])
        #expect(plotter.available == [.perOrder, .sizes])
        let svg = try SVGReader.read(try plotter.svg(.perOrder))
        let orders = document.report.orders
        // Bytes and blocks panels: a bar per order with blocks of that kind.
        #expect(svg.series("live blocks (bytes)", "rect").count == orders.filter { $0.live > 0 }.count)
        #expect(svg.series("cached (blocks)", "rect").count == orders.filter { $0.cached > 0 }.count)
        #expect(svg.series("free (bytes)", "rect").count == orders.filter { $0.free > 0 }.count)
        #expect(svg.texts.contains("16B") && svg.texts.contains("1.0M"))
        #expect(svg.texts.contains("128B: live blocks 9.2K (order 3: 74 live, 33 cached, 32 free blocks)"))
        #expect(svg.texts.contains("live blocks") && svg.texts.contains("cached") && svg.texts.contains("free"))
        // A report without slabs has no slab series.
        #expect(svg.series("live slab objects (bytes)", "rect").isEmpty)
    }

    /// Slabs are blocks of their slab size's order: their live objects, cached objects and spare
    /// bytes are drawn there, so that each order's bar adds up to the memory figures.
    @Test func perOrderShowsSlabObjects() throws {
        let document = try Support.report("python-slab-classes.json")
        let r = document.report
        let svg = try SVGReader.read(try Plotter(documents: [document]).svg(.perOrder))
        let slabOrders = Set(r.slabClasses.filter { $0.live > 0 }.map(\.slabSize))
        #expect(svg.series("live slab objects (bytes)", "rect").count == slabOrders.count)
        #expect(svg.series("spare in slabs (bytes)", "rect").count == Set(r.slabClasses.filter { $0.spareBytes > 0 }.map(\.slabSize)).count)
        #expect(svg.series("slabs (blocks)", "rect").count == Set(r.slabClasses.filter { $0.slabs > 0 }.map(\.slabSize)).count)
        #expect(svg.texts.contains("16K: live slab objects 22K (order 10: 0 live, 2 cached, 74 free blocks; 25 slabs: 22K live objects, 84K cached, 294K spare)"))
        // live blocks + live objects = used; free blocks + spare = free (the figures' definitions).
        #expect(r.orders.reduce(0) { $0 + $1.liveBytes } + r.slabClasses.reduce(0) { $0 + $1.liveBytes } == r.memory.used)
        #expect(r.orders.reduce(0) { $0 + $1.freeBytes } + r.slabClasses.reduce(0) { $0 + $1.spareBytes } == r.memory.free)
    }

    /// python3 at exit: 5M of free 1M blocks against live bars of a few K to 320K. The default
    /// (auto) breaks the axis, and the live bars get most of the panel's height; linear leaves
    /// them flat; log draws each part's own bar.
    @Test func freeBytesDoNotFlattenTheLiveBars() throws {
        let document = try Support.report("python-exit.json")
        func chart(_ scale: ChartScale) throws -> SVGReader {
            var plotter = try Plotter(documents: [document])
            plotter.scale = scale
            return try SVGReader.read(try plotter.svg(.perOrder))
        }
        func tallestLive(_ svg: SVGReader) -> Double {
            svg.series("live blocks (bytes)", "rect").compactMap { Double($0.attributes["height"] ?? "") }.max() ?? 0
        }
        func broken(_ svg: SVGReader) -> Bool { svg.elements.contains { $0.name == "g" && $0.attributes["class"] == "axis-break" } }
        let auto = try chart(.auto), linear = try chart(.linear), split = try chart(.split), log = try chart(.log)
        #expect(broken(auto) && broken(split) && !broken(linear) && !broken(log))
        // The panel is 330 px high; below the break, 72% of it.
        #expect(tallestLive(auto) > 180, "\(tallestLive(auto))")
        #expect(tallestLive(linear) < 60, "\(tallestLive(linear))")
        #expect(auto.texts.contains("bytes (axis broken)") && log.texts.contains("bytes (log scale)"))
        // Every free bar still says its bytes.
        #expect(auto.texts.contains("1.0M: free 5.0M (order 16: 0 live, 0 cached, 5 free blocks)"))
        // A report where free does not dominate stays linear (kvstore: usage 44%).
        let kvstore = try Plotter(documents: [try Support.report("kvstore-errors.json")])
        #expect(!broken(try SVGReader.read(try kvstore.svg(.perOrder))))
    }

    @Test func theSizeHistogram() throws {
        let report = try Support.report("kvstore-errors.json")
        let svg = try SVGReader.read(try Plotter(documents: [report]).svg(.sizes))
        let bars = svg.series("requests", "rect")
        #expect(bars.count == report.report.sizes.filter { $0.count > 0 }.count)
        // The empty 128K bucket between 64K and 256K still has its place on the axis.
        #expect(svg.texts.contains("128K"))
        #expect(svg.texts.contains("sizes up to 64B: 182 requests") == false)
        #expect(svg.texts.contains("64B: requests 182 (sizes up to 64B: 182 requests)"))
    }

    @Test func oneReportHasNoTimeCharts() throws {
        let plotter = try Plotter(documents: [try Support.report("python-exit.json")])
        #expect(throws: PlotError.self) { try plotter.svg(.fragmentation) }
    }

    /// Names from the report are escaped.
    @Test func textIsEscaped() throws {
        var document = try Support.report("python-exit.json")
        document.report.program = "a<b>&\"c\" 'd'\u{01}"
        let svg = try Plotter(documents: [document]).svg(.perOrder)
        let reader = try SVGReader.read(svg)
        #expect(reader.texts.contains { $0.contains("a<b>&\"c\" 'd'?") })
    }

    @Test func severalProcessesPlotTheOneWithMostReports() throws {
        let documents = try Support.load("series.jsonl").documents + [try Support.report("python-exit.json")]
        let plotter = try Plotter(documents: documents)
        #expect(plotter.pid == 4242 && plotter.reports.count == 9)
        #expect(plotter.notes == ["the reports are of 2 processes: plotting pid 4242 (9 reports), not pid 6513"])
    }

    @Test(.enabled(if: Support.tool != nil, "the buddy-report executable is built by swift test"))
    func theCommandWritesTheFiles() throws {
        let directory = try Support.temporaryDirectory()
        let result = try Support.runTool(["plot", Support.fixture("series.jsonl"), "--output", directory.path])
        #expect(result.status == 0, "\(result.stderr)")
        let written = result.stdout.split(separator: "\n").map(String.init)
        #expect(written == ChartKind.allCases.map { directory.appendingPathComponent($0.fileName).path })
        for path in written { _ = try SVGReader.read(String(contentsOfFile: path, encoding: .utf8)) }

        let one = directory.appendingPathComponent("frag.svg").path
        let single = try Support.runTool(["plot", Support.fixture("series.jsonl"), "-o", one, "--chart", "fragmentation"])
        #expect(single.status == 0 && single.stdout == one + "\n")
        let reader = try SVGReader.read(String(contentsOfFile: one, encoding: .utf8))
        #expect(reader.texts.contains("Fragmentation and usage over time"))

        let alone = try Support.runTool(["plot", Support.fixture("python-exit.json"), "-o", directory.appendingPathComponent("single").path])
        #expect(alone.status == 0)
        #expect(alone.stdout.split(separator: "\n").count == 2)
        #expect(alone.stderr.contains("not drawn: fragmentation, usage"))
    }
}
