import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import BuddyReportKit

/// `buddy-report html`: one self-contained page, well-formed (read here as XML), whose figures are
/// the report's; opened in headless Chromium when it is installed.
@Suite struct HTMLTests {
    /// The page's elements, read with XMLParser (which fails on anything not well-formed).
    final class PageReader: NSObject, XMLParserDelegate {
        struct Element {
            var name: String
            var attributes: [String: String]
            var text = ""
        }

        var elements: [Element] = []
        private var open: [Int] = []

        static func read(_ html: String) throws -> PageReader {
            let reader = PageReader()
            let parser = XMLParser(data: Data(html.utf8))
            parser.delegate = reader
            guard parser.parse() else {
                throw PlotError(description: "not well-formed: \(parser.parserError.map { "\($0)" } ?? "?") at line \(parser.lineNumber)")
            }
            return reader
        }

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            elements.append(Element(name: name, attributes: attributes))
            open.append(elements.count - 1)
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            open.removeLast()
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            for i in open { elements[i].text += string }
        }

        func ids() -> Set<String> { Set(elements.compactMap { $0.attributes["id"] }) }
        func count(_ name: String) -> Int { elements.filter { $0.name == name }.count }
    }

    /// Every figure marked with `data-field` is the JSON's value at that path, shown as the tool
    /// writes it; returns how many there were.
    @discardableResult
    static func checkFigures(_ page: PageReader, against document: ReportDocument) throws -> Int {
        let json = JSONPaths(document.raw)
        var checked = 0
        for element in page.elements {
            guard let field = element.attributes["data-field"], let shown = element.attributes["data-value"] else { continue }
            let value = try #require(json.value(field), "\(field) is not in the report")
            if let number = value as? NSNumber, !(value is String) {
                #expect(Double(shown) == number.doubleValue, "\(field): page \(shown), report \(number)")
                switch element.attributes["data-unit"] {
                case "bytes": #expect(element.text == Units.bytes(number.intValue), "\(field): shown \(element.text)")
                case "count": #expect(element.text.hasPrefix("\(number.intValue)"), "\(field): shown \(element.text)")
                case "ratio": #expect(element.text == Units.percent(number.doubleValue), "\(field): shown \(element.text)")
                default: break
                }
            } else {
                #expect("\(value)" == shown && element.text == shown, "\(field)")
            }
            checked += 1
        }
        return checked
    }

    /// Nothing fetched: no scripts, no external style sheets, images or fonts; links only within the page.
    static func checkSelfContained(_ html: String, _ page: PageReader) {
        for element in page.elements {
            #expect(!["script", "link", "img", "iframe", "object", "embed", "image", "use"].contains(element.name), "<\(element.name)>")
            #expect(element.attributes["src"] == nil, "<\(element.name) src>")
            if let href = element.attributes["href"] { #expect(href.hasPrefix("#"), "href \(href)") }
        }
        #expect(!html.contains("url(") && !html.contains("@import"))
    }

    @Test func aReportWithSitesAndBadPointers() throws {
        let document = try Support.report("kvstore-errors.json")
        let html = try HTMLReport(documents: [document], resolver: .raw).render()
        #expect(html.hasPrefix("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">"))
        let page = try PageReader.read(html)
        Self.checkSelfContained(html, page)
        let ids = page.ids()
        for id in ["summary", "health", "contents", "memory", "memory-table", "fragmentation-table", "orders", "orders-table", "sizes",
                   "calls", "calls-table", "errors-table", "latency", "sites", "sites-table", "flame", "bad-pointers", "bad-pointers-table"] {
            #expect(ids.contains(id), "no #\(id)")
        }
        #expect(!ids.contains("processes") && !ids.contains("timeline") && !ids.contains("slab-classes"))
        // The table of contents names every section.
        let sections = page.elements.filter { $0.name == "section" }.compactMap { $0.attributes["id"] }
        #expect(page.elements.filter { $0.name == "a" }.compactMap { $0.attributes["href"] } == sections.map { "#" + $0 })
        // Charts: the memory bar, per order, sizes, the flame graph.
        #expect(page.count("svg") == 4)
        #expect(page.elements.contains { $0.name == "title" && $0.text.hasPrefix("Live bytes: kvstore (pid 777)") })
        #expect(try Self.checkFigures(page, against: document) > 80)
        // The sites: their estimates and stacks, the wrapper said; the bad pointers with frames.
        let sites = try #require(page.elements.first { $0.attributes["id"] == "sites-table" })
        #expect(sites.text.contains("load_table+0x5c (/usr/local/bin/kvstore)") && sites.text.contains("via strdup"))
        #expect(sites.text.contains("~124"))
        let bad = try #require(page.elements.first { $0.attributes["id"] == "bad-pointers-table" })
        #expect(bad.text.contains("double free") && bad.text.contains("free(0x"))
        #expect(page.elements.first { $0.attributes["id"] == "health" }?.text.hasPrefix("CRITICAL") == true)
    }

    @Test func aSeriesHasATimeline() throws {
        let documents = try Support.load("series.jsonl").documents
        let page = try PageReader.read(try HTMLReport(documents: documents).render())
        #expect(page.ids().contains("timeline"))
        #expect(page.elements.contains { $0.name == "title" && $0.text == "Fragmentation and usage over time" })
        #expect(page.elements.contains { $0.name == "title" && $0.text == "Memory over time" })
        try Self.checkFigures(page, against: documents.last!)
        // Slab classes, from a real report of the library.
        let slabs = try Support.report("python-slab-classes.json")
        let slabPage = try PageReader.read(try HTMLReport(documents: [slabs]).render())
        #expect(slabPage.ids().contains("slab-classes-table"))
        #expect(try Self.checkFigures(slabPage, against: slabs) > 200)
    }

    /// The locks, where the report counts them (the generated fixtures predate the counters).
    @Test func theLocks() throws {
        let page = try PageReader.read(try HTMLReport(documents: [try Support.report("truth-text.json")], resolver: .raw).render())
        let locks = try #require(page.elements.first { $0.attributes["id"] == "locks" })
        #expect(locks.text.hasPrefix("Locks: pool lock taken 1670 times, 108 after a wait (6.5%); 16.10 per 1,000 calls; depot: batches in 633"))
        let older = try PageReader.read(try HTMLReport(documents: [try Support.report("kvstore-errors.json")], resolver: .raw).render())
        #expect(!older.ids().contains("locks"))
    }

    /// Several processes: their tree, the one that started the others in detail (or --pid).
    @Test func aProcessTree() throws {
        let parent = try Support.report("kvstore-errors.json")
        var child = try Support.report("python-exit.json")
        child.report.pid = 778
        child.report.time?.created = (parent.report.time?.created ?? 0) + 0.01
        let html = try HTMLReport(documents: [child, parent]).render()
        let page = try PageReader.read(html)
        #expect(page.ids().contains("processes-table"))
        #expect(page.elements.first { $0.name == "h1" }?.text == "BuddyMalloc report: kvstore, pid 777")
        let rows = page.elements.filter { $0.name == "tr" }.map(\.text)
        #expect(rows.contains { $0.hasPrefix("777\n-\nkvstore (shown above)") })
        #expect(rows.contains { $0.hasPrefix("778\n777~\n└─ python3") })
        let other = try PageReader.read(try HTMLReport(documents: [child, parent], pid: 778).render())
        #expect(other.elements.first { $0.name == "h1" }?.text == "BuddyMalloc report: python3, pid 778")
        #expect(throws: ToolError.self) { try HTMLReport(documents: [parent], pid: 1).render() }
    }

    /// `run --html`: the page of every process the program started, with their tree.
    @Test(.enabled(if: Support.tool != nil), .timeLimit(.minutes(1)))
    func fromRun() throws {
        let directory = try Support.temporaryDirectory()
        let script = directory.appendingPathComponent("writer.sh").path
        // With the parent pid the library writes ("ppid"): the tree does not depend on catching
        // the short-lived child in /proc while it runs (without it, a loaded machine missed it).
        let writer = RunTests.writer.replacingOccurrences(of: #""pid":%d,"#, with: #""pid":%d,"ppid":%d,"#)
            .replacingOccurrences(of: #"$$ "$BUDDY_REPORT_FORMAT"#, with: #"$$ $PPID "$BUDDY_REPORT_FORMAT"#)
        #expect(writer.contains("ppid") && writer.contains("$PPID"))
        try writer.write(toFile: script, atomically: true, encoding: .utf8)
        let page = directory.appendingPathComponent("run.html").path
        // The reports come from the script (LD_PRELOAD=/dev/null preloads nothing).
        let result = try Support.runTool(["run", "--lib", "/dev/null", "--html", page, "--", "sh", "-c",
                                          #"sh -c 'COUNT=1 PAUSE=0; . "$0"' "$0"; COUNT=1 PAUSE=0; . "$0""#, script])
        #expect(result.status == 0, "\(result.stderr)")
        let reader = try PageReader.read(try String(contentsOfFile: page, encoding: .utf8))
        #expect(reader.ids().contains("processes-table"))
        #expect(reader.elements.first { $0.name == "h1" }?.text.hasPrefix("BuddyMalloc report: json/none, pid ") == true)
        let processes = try #require(reader.elements.first { $0.attributes["id"] == "processes-table" })
        #expect(processes.text.contains("└─ json/none") && processes.text.contains("json/none (shown above)"), "\(processes.text)")
    }

    /// Text from a report is escaped (program names, C++ frames).
    @Test func escaping() throws {
        let json = #"{"format":"buddymalloc-report","version":1,"pid":9,"program":"a<b>&c\"","memory":{"reserved":0,"used":0,"free":0},"calls":{},"orders":[],"profile":{"sample_bytes":4096,"sites":[{"live_bytes":8192,"live_count":2,"frames":["std::vector<int, A<&x>>::push+0x2 (/p)","main+0x3 (/p)"]}]}}"#
        let document = try ReportLoader.parse(Data(json.utf8), file: "t<&>.json").documents[0]
        let page = try PageReader.read(try HTMLReport(documents: [document]).render())
        #expect(page.elements.first { $0.name == "h1" }?.text == "BuddyMalloc report: a<b>&c\", pid 9")
        #expect(page.elements.contains { $0.name == "code" && $0.text == "std::vector<int, A<&x>>::push+0x2 (/p)" })
    }

    /// The page in a browser: headless Chromium (Debian's `chromium`) loads it, with every network
    /// request refused inside the browser (host-resolver rules; it fetches nothing of its own
    /// anyway); the DOM it builds holds the same sections, charts and figures, the page made no
    /// network request, and its screenshot is kept in .build/test-artifacts/.
    @Test(.enabled(if: Support.command("chromium", "chromium-browser") != nil && Support.tool != nil, "needs chromium (Debian package chromium)"),
          .timeLimit(.minutes(1)))
    func inChromium() throws {
        let directory = try Support.temporaryDirectory()
        let reportFile = Support.fixture("kvstore-errors.json")
        let htmlPath = directory.appendingPathComponent("report.html").path
        let made = try Support.runTool(["html", "--no-symbolize", reportFile, "-o", htmlPath])
        #expect(made.status == 0 && made.stdout == htmlPath + "\n", "\(made.stderr)")
        let html = try String(contentsOfFile: htmlPath, encoding: .utf8)
        let source = try PageReader.read(html)

        let artifacts = Support.packageRoot.appendingPathComponent(".build/test-artifacts")
        try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
        let screenshot = artifacts.appendingPathComponent("buddy-report-html.png").path
        try? FileManager.default.removeItem(atPath: screenshot)
        let netLog = directory.appendingPathComponent("net.json").path
        let chromium = Support.command("chromium", "chromium-browser")!
        let result = try Support.run([
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            "--user-data-dir=" + directory.appendingPathComponent("profile").path,
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-pings",
            "--disable-domain-reliability", "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
            "--log-net-log=" + netLog, "--window-size=1280,3000", "--screenshot=" + screenshot, "--dump-dom",
            URL(fileURLWithPath: htmlPath).absoluteString,
        ], environment: ["HOME": directory.path])
        #expect(result.status == 0, "\(result.stderr)")
        let dom = result.stdout
        // The DOM Chromium built: the same sections, charts, rows and figures as the file.
        func count(_ pattern: String) -> Int { dom.components(separatedBy: pattern).count - 1 }
        #expect(count("<section ") == source.count("section"))
        #expect(count("<svg ") == source.count("svg") && source.count("svg") == 4)
        #expect(count("<tr>") + count("<tr ") == source.count("tr"))
        let pairs = try NSRegularExpression(pattern: #"data-field="([^"]+)"[^>]*data-value="([^"]+)""#)
        let domFigures = pairs.matches(in: dom, range: NSRange(dom.startIndex..., in: dom)).map { m in
            (String(dom[Range(m.range(at: 1), in: dom)!]), String(dom[Range(m.range(at: 2), in: dom)!]))
        }
        let fileFigures = source.elements.compactMap { e in e.attributes["data-field"].map { ($0, e.attributes["data-value"]!) } }
        #expect(domFigures.count == fileFigures.count && domFigures.count > 80)
        #expect(zip(domFigures, fileFigures).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 })
        let json = JSONPaths(try ReportLoader.load(path: reportFile).documents[0].raw)
        for (field, value) in domFigures {
            if let number = json.value(field) as? NSNumber, !(json.value(field) is String) { #expect(Double(value) == number.doubleValue, "\(field)") }
        }
        // No request made by the page (requests started from a file: page have initiator "null";
        // the browser's own background requests have none and fail at the resolver rules).
        let log = try String(contentsOfFile: netLog, encoding: .utf8)
        #expect(log.contains("\"events\"") && log.contains("URL_REQUEST") || log.contains("\"constants\""))
        #expect(!log.contains("\"initiator\":\"null\"") && !log.contains("site=file://"))
        // The screenshot: a PNG of the window's size.
        let png = try Data(contentsOf: URL(fileURLWithPath: screenshot))
        #expect(png.count > 20_000 && png.prefix(8) == Data([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
        let width = png[16..<20].reduce(0) { $0 << 8 | Int($1) }, height = png[20..<24].reduce(0) { $0 << 8 | Int($1) }
        #expect(width == 1280 && height == 3000)
    }
}
