import Foundation

/// `buddy-report html`: one self-contained HTML file (inline CSS and SVG, no script, nothing
/// fetched) with a process's memory summary, its blocks per order and slab classes (tables and
/// the per-order chart), requested sizes, a series' timeline, calls, locks, errors and latency, the
/// allocation sites live at the report (estimated) with their stacks, the flame graph, the bad
/// pointers with their frames, and, for several processes, their tree.
///
/// The file is well-formed XML as well as HTML5 (XHTML syntax: every element closed, only XML's
/// entities), so that XML tools read it too. Every figure taken from the report carries it
/// unformatted: `data-field` (its JSON path in the report, e.g. `memory.used`, `orders[3].live`)
/// and `data-value` (the JSON's number); derived figures have `data-value` only.
public struct HTMLReport {
    public var documents: [ReportDocument]
    public var resolver: SiteResolver
    /// The process shown in detail: this pid, else the tree's first root (the process that started
    /// the others).
    public var pid: Int?
    public var topSites = 20
    public var maxFrames = 12
    public var title: String?
    /// child -> parent pids known from elsewhere (`run` watching /proc).
    public var observedParents: [Int: Int] = [:]
    /// The shown report's JSON, for the paths of its figures.
    var paths = JSONPaths()

    public init(documents: [ReportDocument], resolver: SiteResolver = .raw, pid: Int? = nil) {
        self.documents = documents
        self.resolver = resolver
        self.pid = pid
    }

    /// The HTML document. Throws when `pid` names no process of the reports.
    public func render() throws(ToolError) -> String {
        guard !documents.isEmpty else { throw ToolError("no reports") }
        let tree = ProcessTree(documents, observed: observedParents)
        let focus = pid ?? tree.roots.first ?? documents.last!.report.pid
        let series = ReportSeries(documents).reports(pid: focus)
        guard let main = series.last else {
            throw ToolError("--pid \(focus): no report of that process (the reports are of pid\(tree.count == 1 ? "" : "s") \(tree.order.map(String.init).joined(separator: ", ")))")
        }
        var me = self
        me.paths = JSONPaths(main.raw)
        return me.page(main: main, series: series, tree: tree, focus: focus)
    }

    func page(main: ReportDocument, series: [ReportDocument], tree: ProcessTree, focus: Int) -> String {
        let r = main.report
        let newest = tree.order.compactMap { tree.nodes[$0]?.document }
        resolver.prepare(newest.map(\.report))
        var page = HTMLWriter()
        let heading = title ?? "BuddyMalloc report: \(r.program.isEmpty ? "(unnamed)" : r.program), pid \(r.pid)"
        page.raw("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n")
        page.raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n")
        page.element("title", heading)
        page.raw("<meta name=\"generator\" content=\"buddy-report html\"/>\n<style>\n\(Self.css)</style>\n</head>\n<body>\n")

        var sections: [(id: String, title: String)] = []
        var bodyParts: [String] = []
        func section(_ id: String, _ title: String, _ body: (inout HTMLWriter) -> Void) {
            sections.append((id, title))
            var s = HTMLWriter()
            s.open("section", ["id": id])
            s.element("h2", title)
            body(&s)
            s.close("section")
            bodyParts.append(s.text)
        }

        section("memory", "Memory") { memory(r, &$0) }
        if let x = r.resident { section("resident", "Resident memory") { resident(x, &$0) } }
        section("orders", "Blocks per order") { orders(r, &$0) }
        if r.slabClasses.contains(where: { $0.slabs + $0.live + $0.allocations > 0 }) {
            section("slab-classes", "Slab classes") { slabClasses(r, &$0) }
        }
        if let plotter = try? Plotter(documents: series) {
            if plotter.available.contains(.sizes) {
                section("sizes", "Requested sizes") { s in
                    s.raw(Self.inline((try? plotter.svg(.sizes)) ?? ""))
                }
            }
            if series.count > 1 {
                section("timeline", "Over time (\(series.count) reports)") { s in
                    s.element("p", "The reports of pid \(r.pid), oldest first: fragmentation and usage, and the pool's bytes.", ["class": "note"])
                    s.raw(Self.inline((try? plotter.svg(.fragmentation)) ?? ""))
                    s.raw(Self.inline((try? plotter.svg(.usage)) ?? ""))
                }
            }
        }
        section("calls", "Calls, locks, errors and latency") { calls(r, &$0) }
        let profiled = newest.filter { ($0.report.profile?.sampleBytes ?? 0) > 0 }
        if !r.sites.isEmpty || (r.profile?.sampleBytes ?? 0) > 0 {
            section("sites", r.reason == "exit" ? "Allocation sites live at exit" : "Allocation sites (live when written)") { sites(main, &$0) }
        }
        if !profiled.isEmpty {
            section("flame", "Flame graph") { s in
                let reports = profiled.map(\.report)
                let graph = FlameGraph(StackProfile(reports, resolver: resolver, value: .live), width: 1200)
                s.element("p", "Estimated live bytes by call stack\(reports.count > 1 ? ", every process that sampled (\(reports.count))" : ""): callers below callees, widths the bytes; hover a box for its figures. Allocator wrappers are left out.", ["class": "note"])
                s.raw(Self.inline(graph.svg()))
            }
        }
        if !r.badPointers.isEmpty {
            section("bad-pointers", "Bad pointers") { badPointers(r, &$0) }
        }
        if tree.count > 1 {
            section("processes", "Processes (\(tree.count))") { processes(tree, focus: r.pid, &$0) }
        }

        // The header and the table of contents, then the sections.
        page.open("header", ["id": "summary"])
        page.element("h1", heading)
        summary(main, &page)
        page.close("header")
        page.open("nav", ["id": "contents"])
        page.open("ul")
        for s in sections {
            page.open("li")
            page.element("a", s.title, ["href": "#" + s.id])
            page.close("li")
        }
        page.close("ul")
        page.close("nav")
        page.open("main")
        for part in bodyParts { page.raw(part) }
        page.close("main")
        page.open("footer")
        page.element("p", "Written by buddy-report html from \(Set(documents.map(\.file)).sorted().joined(separator: ", ")). "
                     + "Sizes in powers of 1024 (K = KiB); estimates from sampling carry ± one standard error (README, buddy-report).")
        page.close("footer")
        page.raw("</body>\n</html>\n")
        return page.text
    }

    // MARK: - Sections

    func summary(_ document: ReportDocument, _ s: inout HTMLWriter) {
        let r = document.report
        var facts = [ShowRenderer.reasonText(r.reason)]
        if r.sequence > 0 || r.reason == "interval" { facts.append("report #\(r.sequence)") }
        if r.pool != "process" { facts.append("\(r.pool) pool") }
        if let time = r.time {
            facts.append("uptime \(Units.duration(time.uptime))")
            if let now = time.now { facts.append("written \(ShowRenderer.date(now))") }
        }
        facts.append(document.label)
        s.element("p", facts.joined(separator: ", "), ["class": "facts"])
        if let origin = r.textOrigin {
            s.element("p", "Read from " + origin.note + ".", ["class": "note", "id": "text-report"])
        }
        if let health = r.health {
            s.open("p", ["id": "health", "class": "health " + health.status.lowercased()])
            s.element("strong", health.status, paths.has("health.status") ? ["data-field": "health.status", "data-value": health.status] : [:])
            let message = health.message.map { $0.hasPrefix(health.status) ? String($0.dropFirst(health.status.count).drop { $0 == ":" || $0 == " " }) : $0 } ?? ""
            if !message.isEmpty { s.text(" " + message) }
            s.close("p")
        }
        let m = r.memory
        s.open("div", ["class": "cards"])
        card(&s, "held", Units.bytes(m.held), m.held, field: "memory.held",
             detail: "every byte the program held (pool and oversize blocks)")
        card(&s, "used", Units.bytes(m.used), m.used, field: "memory.used", detail: "\(Units.percent(m.usage)) of reserved")
        card(&s, "reserved", Units.bytes(m.reserved), m.reserved, field: "memory.reserved", detail: m.resident > 0 ? "resident \(Units.bytes(m.resident))" : "in segments")
        card(&s, "peak used", Units.bytes(m.peakUsed), m.peakUsed, field: "memory.peak_used", detail: "the most allocated at once")
        card(&s, "live blocks", "\(m.liveAllocations)", m.liveAllocations, field: "memory.live_allocations", detail: "peak \(m.peakLiveAllocations)")
        card(&s, "errors", "\(r.errorCount)", r.errorCount, field: nil, detail: r.errorCount == 0 ? "no bad pointers" : "bad pointers")
        s.close("div")
        if let c = r.config {
            var parts = ["min block \(Units.bytes(c.minBlock))", "max block \(Units.bytes(c.maxBlock))"]
            if let initial = c.initialSize { parts.append("initial \(Units.bytes(initial))") }
            if let limit = c.maxPoolSize { parts.append("max pool \(limit == 0 ? "unlimited" : Units.bytes(limit))") }
            if let safety = c.threadSafety { parts.append("thread safety \(safety)") }
            if let onError = c.onError { parts.append("on error \(onError)") }
            s.element("p", "Configuration: " + parts.joined(separator: ", "), ["class": "config"])
        }
    }

    func card(_ s: inout HTMLWriter, _ label: String, _ shown: String, _ value: Int, field: String?, detail: String) {
        s.open("div", ["class": "card"])
        s.element("div", label, ["class": "label"])
        var attributes = ["class": "value", "data-value": "\(value)"]
        if let field, paths.has(field) { attributes["data-field"] = field }
        s.element("div", shown, attributes)
        s.element("div", detail, ["class": "detail"])
        s.close("div")
    }

    func memory(_ r: Report, _ s: inout HTMLWriter) {
        let m = r.memory
        // reserved = used + cached + free (slab spare inside free), as a bar.
        s.raw(Self.inline(Self.memoryBar(r)))
        var t = table(["", "bytes", ""], numeric: [1])
        t.row([.text("reserved"), .bytes(m.reserved, "memory.reserved"), .text("bytes in segments" + (m.resident > 0 ? ", \(Units.bytes(m.resident)) resident" : ""))])
        t.row([.text("used"), .bytes(m.used, "memory.used"), .text("\(Units.percent(m.usage)) of reserved; peak \(Units.bytes(m.peakUsed))")])
        t.row([.text("cached"), .bytes(m.cached, "memory.cached"), .text("in thread caches")])
        t.row([.text("free"), .bytes(m.free, "memory.free"), .text("largest free block \(Units.bytes(m.largestFreeBlock))" + (m.slabSpare > 0 ? ", \(Units.bytes(m.slabSpare)) spare in slabs" : ""))])
        t.row([.text("requested"), .bytes(m.requested, "memory.requested"), .text("live, estimated: used x requested / allocated so far")])
        if m.metadata > 0 { t.row([.text("metadata"), .bytes(m.metadata, "memory.metadata"), .text("outside the segments: order maps, the pool's state")]) }
        if r.oversize.blocks > 0 || r.oversize.peakBlocks > 0 {
            t.row([.text("oversize"), .bytes(r.oversize.bytes, "oversize.bytes"),
                   .text("\(r.oversize.blocks) live block\(r.oversize.blocks == 1 ? "" : "s") above the maximum block (peak \(Units.bytes(r.oversize.peakBytes)) in \(r.oversize.peakBlocks))")])
        }
        t.row([.text("held"), .bytes(m.held, "memory.held"), .text("by the program in all: used + oversize")])
        t.row([.text("peak used"), .bytes(m.peakUsed, "memory.peak_used"), .text("the most the pool had allocated at once")])
        if r.system.calls > 0 || r.system.bytes > 0 {
            t.row([.text("system"), .bytes(r.system.bytes, "system.bytes"), .text("in \(r.system.calls) requests above the maximum block so far")])
        }
        s.raw(t.html(id: "memory-table"))
        var f = table(["fragmentation", "share", ""], numeric: [1])
        f.row([.text("internal"), .ratio(m.internalFragmentation, "memory.internal_fragmentation"), .text("1 - requested / allocated, over the run")])
        f.row([.text("external"), .ratio(m.externalFragmentation, "memory.external_fragmentation"), .text("1 - largest free block / min(free, max block)")])
        f.row([.text("usage"), .ratio(m.usage, "memory.usage"), .text("used / reserved")])
        s.raw(f.html(id: "fragmentation-table"))
    }

    /// One horizontal bar: used, cached, spare in slabs, free of the reserved bytes.
    static func memoryBar(_ r: Report) -> String {
        let m = r.memory
        return stackedBar([("used", m.used, Palette.live), ("cached", m.cached, Palette.cached),
                           ("spare in slabs", m.slabSpare, "#d4a6c8"), ("free", max(0, m.free - m.slabSpare), Palette.free)],
                          of: "reserved", title: "reserved \(Units.bytes(m.reserved)): used, cached, spare in slabs, free")
    }

    /// The process's resident bytes by what holds them (Report.Resident).
    static func residentBar(_ x: Report.Resident) -> String {
        stackedBar([("used", x.used, Palette.live), ("cached", x.cached, Palette.cached), ("spare in slabs", x.slabSpare, "#d4a6c8"),
                    ("free, written", x.free, Palette.free), ("metadata", x.metadata, "#76b7b2"), ("oversize", x.oversize, "#f28e2b"),
                    ("retained", x.retained, "#ffbe7d"), ("outside", x.outside, "#e0e0e0")],
                   of: "resident", title: "resident \(Units.bytes(max(x.process, x.segments))): who holds it")
    }

    /// One horizontal bar of parts (name, bytes, colour), with a legend under it.
    static func stackedBar(_ parts: [(String, Int, String)], of whole: String, title: String) -> String {
        let width = 860.0, height = 58.0, left = 10.0, barWidth = width - 20
        var svg = SVG(width: width, height: height)
        let total = Double(max(1, parts.reduce(0) { $0 + $1.1 }))
        var x = left
        for (name, bytes, color) in parts where bytes > 0 {
            let w = Double(bytes) / total * barWidth
            svg.rect(x: x, y: 8, width: w, height: 22, fill: color, tooltip: "\(name): \(Units.bytes(bytes)) (\(Units.percent(Double(bytes) / total)) of \(whole))")
            x += w
        }
        var lx = left
        for (index, (name, bytes, color)) in parts.enumerated() where bytes > 0 || index == 0 {
            svg.rect(x: lx, y: 40, width: 12, height: 10, fill: color)
            let label = "\(name) \(Units.bytes(bytes))"
            svg.text(label, x: lx + 16, y: 49, size: 11, fill: "#333")
            lx += 16 + Double(label.count) * 6.6 + 18
        }
        return svg.document(title: title)
    }

    /// Resident memory explained: the bar, and a row per part with what it is.
    func resident(_ x: Report.Resident, _ s: inout HTMLWriter) {
        s.raw(Self.inline(Self.residentBar(x)))
        var t = table(["", "bytes", ""], numeric: [1])
        if x.process > 0 { t.row([.text("process"), .bytes(x.process, "resident.process"), .text("the whole process's resident set")]) }
        t.row([.text("used"), .bytes(x.used, "resident.used"), .text("the program's blocks and slab objects")])
        t.row([.text("cached"), .bytes(x.cached, "resident.cached"), .text("in thread caches and the depot, for the next mallocs")])
        t.row([.text("slab spare"), .bytes(x.slabSpare, "resident.slab_spare"), .text("in slabs, outside live objects (free objects, headers)")])
        t.row([.text("free"), .bytes(x.free, "resident.free"), .text("free blocks written once, not given back to the OS yet (malloc_trim gives them back)")])
        t.row([.text("metadata"), .bytes(x.metadata, "resident.metadata"), .text("order maps, the pool's state")])
        t.row([.text("oversize"), .bytes(x.oversize, "resident.oversize"), .text("blocks above the maximum block")])
        t.row([.text("retained"), .bytes(x.retained, "resident.retained"), .text("freed oversize blocks kept for reuse (malloc_trim unmaps them)")])
        if x.process > 0 { t.row([.text("outside"), .bytes(x.outside, "resident.outside"), .text("not the allocator's: code, stacks, libraries, glibc's own heap")]) }
        s.raw(t.html(id: "resident-table"))
    }

    func orders(_ r: Report, _ s: inout HTMLWriter) {
        var t = table(["order", "block", "live", "free", "cached", "allocations", "splits", "coalesces", "bytes (live + cached + free)"],
                      numeric: Array(0...8))
        var omitted = 0
        for (i, o) in r.orders.enumerated() {
            guard o.live + o.free + o.cached + o.allocations + o.splits + o.coalesces > 0 else { omitted += 1; continue }
            t.row([.count(o.order, "orders[\(i)].order"), .bytes(o.blockSize, "orders[\(i)].block_size"), .count(o.live, "orders[\(i)].live"),
                   .count(o.free, "orders[\(i)].free"), .count(o.cached, "orders[\(i)].cached"), .count(o.allocations, "orders[\(i)].allocations"),
                   .count(o.splits, "orders[\(i)].splits"), .count(o.coalesces, "orders[\(i)].coalesces"),
                   .derived(Units.bytes(o.liveBytes + o.cachedBytes + o.freeBytes), o.liveBytes + o.cachedBytes + o.freeBytes)])
        }
        s.raw(t.html(id: "orders-table"))
        if omitted > 0 { s.element("p", "\(omitted) order\(omitted == 1 ? "" : "s") without blocks or activity not shown.", ["class": "note"]) }
        if let plotter = try? Plotter(documents: [ReportDocument(report: r, raw: Data(), file: "", index: 1, line: 1, label: "")]) {
            s.raw(Self.inline((try? plotter.svg(.perOrder)) ?? ""))
        }
    }

    func slabClasses(_ r: Report, _ s: inout HTMLWriter) {
        var t = table(["class", "object", "slab", "slabs", "live", "free", "cached", "allocations", "frees", "slab bytes", "spare"], numeric: Array(0...10))
        for (i, k) in r.slabClasses.enumerated() where k.slabs + k.live + k.allocations > 0 {
            t.row([.count(k.index, "slab_classes[\(i)].class"), .count(k.objectSize, "slab_classes[\(i)].object_size", suffix: "B"),
                   .bytes(k.slabSize, "slab_classes[\(i)].slab_size"), .count(k.slabs, "slab_classes[\(i)].slabs"),
                   .count(k.live, "slab_classes[\(i)].live"), .count(k.free, "slab_classes[\(i)].free"), .count(k.cached, "slab_classes[\(i)].cached"),
                   .count(k.allocations, "slab_classes[\(i)].allocations"), .count(k.frees, "slab_classes[\(i)].frees"),
                   .derived(Units.bytes(k.slabBytes), k.slabBytes), .derived(Units.bytes(k.spareBytes), k.spareBytes)])
        }
        s.raw(t.html(id: "slab-classes-table"))
    }

    func calls(_ r: Report, _ s: inout HTMLWriter) {
        let names = Report.ordered(Set(r.calls.keys).union(r.failures.keys)).filter { (r.calls[$0] ?? 0) > 0 || (r.failures[$0] ?? 0) > 0 }
        var t = table(["entry point", "calls", "failed"], numeric: [1, 2])
        for name in names {
            t.row([.text(name), r.calls[name].map { .count($0, "calls.\(name)") } ?? .text(""),
                   r.failures[name].map { .count($0, "failures.\(name)") } ?? .text("")])
        }
        s.raw(t.html(id: "calls-table"))
        let kinds = r.errors.keys.sorted { (ShowRenderer.errorOrder($0), $0) < (ShowRenderer.errorOrder($1), $1) }
        var e = table(["error", "count"], numeric: [1])
        for kind in kinds { e.row([.text(ShowRenderer.errorName(kind)), .count(r.errors[kind]!, "errors.\(kind)")]) }
        if !kinds.isEmpty { s.raw(e.html(id: "errors-table")) } else { s.element("p", "Errors: none reported.") }
        let locks = ShowRenderer.lockLines(r)
        if !locks.isEmpty { s.element("p", "Locks: " + locks.joined(separator: "; "), ["id": "locks"]) }
        if let l = r.latency {
            var parts: [String] = []
            if l.mode == "off" {
                parts.append("not measured (off)")
            } else {
                if let avg = l.allocAvgNs { parts.append("allocations avg \(Units.nanoseconds(avg))" + (l.allocMaxNs.map { ", max \(Units.nanoseconds($0))" } ?? "")) }
                if let avg = l.freeAvgNs { parts.append("frees avg \(Units.nanoseconds(avg))" + (l.freeMaxNs.map { ", max \(Units.nanoseconds($0))" } ?? "")) }
                if let samples = l.samples { parts.append("\(samples) samples") }
            }
            s.element("p", "Latency (\(l.mode)\(l.samplePeriod.map { l.mode == "sampled" ? ", one call in \($0)" : "" } ?? "")): " + parts.joined(separator: "; "), ["id": "latency"])
        }
    }

    func sites(_ document: ReportDocument, _ s: inout HTMLWriter) {
        let r = document.report
        let period = r.profile?.sampleBytes ?? 0
        let all = resolver.sites(r).filter { $0.site.liveBytes > 0 }
        let shown = all.prefix(topSites)
        let total = all.reduce(0) { $0 + $1.estimate.liveBytes }
        s.element("p", period > 0
            ? "Estimated from sampling one allocation per \(Units.bytes(period)) allocated: \(all.count) site\(all.count == 1 ? "" : "s") holding about \(Units.bytes(total)) of the \(Units.bytes(r.memory.held)) held\(shown.count < all.count ? " (the \(shown.count) largest shown)" : ""). Bytes ± one standard error; blocks estimated (~) or bounded (README, buddy-report leaks)."
            : "No allocation-site profile: run the program with BUDDY_PROFILE_SAMPLE=64K.", ["class": "note"])
        guard !shown.isEmpty else { return }
        let model = SamplingModel(r)
        if period > 0 {
            s.element("p", model.nearPeak
                ? "Written near the peak (\(Units.bytes(model.peak)): peak used, caches included, + oversize peak): each site's bytes now are its share of the peak."
                : "Written at \(Units.percent(model.peak > 0 ? Double(model.current) / Double(model.peak) : 0)) of the peak (\(Units.bytes(model.peak)): peak used, caches included, + oversize peak): the sites' shares of the peak need a report written near it (buddy-report leaks --at-peak over periodic reports).",
                ["class": "note", "id": "sites-peak"])
        }
        var columns = ["#", "live bytes", "±", "blocks", "samples", "share of held ±"]
        if model.nearPeak { columns.append("share of peak ±") }
        var t = table(columns + ["allocated at"], numeric: Array(0..<columns.count))
        for (i, site) in shown.enumerated() {
            let e = site.estimate
            let index = r.sites.firstIndex(of: site.site)
            let samples = "\(e.liveSamples)" + (e.samples.map { " of \($0)" } ?? "")
            var stack = HTMLWriter()
            let frames = Array(site.stack)
            stack.open("details")
            stack.open("summary")
            stack.element("code", frames.first?.display ?? "(no frames)")
            if !site.skipped.isEmpty { stack.element("span", " via " + site.viaText, ["class": "via"]) }
            stack.close("summary")
            stack.open("ol", ["class": "stack"])
            for frame in frames.prefix(maxFrames) { stack.open("li"); stack.element("code", frame.display); stack.close("li") }
            if frames.count > maxFrames { stack.element("li", "... \(frames.count - maxFrames) more") }
            stack.close("ol")
            stack.close("details")
            t.row([.text("\(i + 1)"), index.map { .bytes(e.liveBytes, "profile.sites[\($0)].live_bytes") } ?? .derived(Units.bytes(e.liveBytes), e.liveBytes),
                   .text(e.liveBytesError > 0 ? Units.bytes(e.liveBytesError) : "exact"), .derived(e.blocksText, e.liveBlocks),
                   .derived(samples, e.liveSamples), .text(e.shareText() ?? "")]
                  + (model.nearPeak ? [.text(e.peakShareText() ?? "")] : []) + [.html(stack.text)])
        }
        s.raw(t.html(id: "sites-table"))
    }

    func badPointers(_ r: Report, _ s: inout HTMLWriter) {
        var t = table(["kind", "call", "frames"])
        for p in r.badPointers {
            var frames = HTMLWriter()
            frames.open("ol", ["class": "stack"])
            for frame in resolver.frames(p.frames ?? []).prefix(maxFrames) { frames.open("li"); frames.element("code", frame.display); frames.close("li") }
            frames.close("ol")
            t.row([.text(ShowRenderer.errorName(p.kind, plural: false)), .code("\(p.function ?? "?")(\(p.pointer ?? "?"))"), .html(frames.text)])
        }
        s.element("p", "The most recent bad pointers (the library keeps the last 16), oldest first.", ["class": "note"])
        s.raw(t.html(id: "bad-pointers-table"))
    }

    func processes(_ tree: ProcessTree, focus: Int, _ s: inout HTMLWriter) {
        s.element("p", "Every process that wrote a report, under the one that started it; each with its newest report. " + tree.legend + ".", ["class": "note"])
        var t = table(["pid", "parent", "program", "held", "peak used", "calls", "errors", "health", "report"], numeric: [0, 1, 3, 4, 5, 6])
        for pid in tree.order {
            let node = tree.nodes[pid]!
            let r = node.report
            let parent = node.parent.map { "\($0)" + (node.source == .inferred ? "~" : "") } ?? "-"
            t.row([.text("\(pid)"), .text(parent), .html("<span class=\"tree\">\(SVG.escape(tree.prefix(pid, ascii: false)))</span>" + SVG.escape(r.program.isEmpty ? "(unnamed)" : r.program)
                                                            + (pid == focus ? " <em>(shown above)</em>" : "")),
                   .derived(Units.bytes(r.memory.held), r.memory.held), .derived(Units.bytes(r.memory.peakUsed), r.memory.peakUsed),
                   .derived("\(r.calls.values.reduce(0, +))", r.calls.values.reduce(0, +)), .derived("\(r.errorCount)", r.errorCount),
                   .text(r.health?.status ?? ""), .text(r.reason == "exit" ? "exit" : "\(r.reason) #\(r.sequence)")])
        }
        s.raw(t.html(id: "processes-table"))
    }

    // MARK: - Pieces

    func table(_ columns: [String], numeric: [Int] = []) -> Table {
        var t = Table(columns, numeric: numeric)
        t.json = paths
        return t
    }

    /// An SVG document as an element of the page: without its XML declaration.
    static func inline(_ svg: String) -> String {
        guard svg.hasPrefix("<?xml"), let end = svg.firstIndex(of: "\n") else { return svg }
        return "<figure>" + String(svg[svg.index(after: end)...]) + "</figure>\n"
    }

    static let css = """
        body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 0 auto; max-width: 1240px; padding: 0 16px 40px; color: #222; background: #fff; }
        h1 { font-size: 1.5em; margin: 18px 0 4px; }
        h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }
        .facts, .config, .note { color: #555; margin: 4px 0; }
        .health { display: inline-block; padding: 4px 10px; border-radius: 4px; margin: 6px 0; }
        .health.healthy { background: #e3f4e1; } .health.warning { background: #fff1cc; } .health.critical { background: #fbd9d7; }
        .cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
        .card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; min-width: 130px; }
        .card .label { color: #666; font-size: 0.85em; } .card .value { font-size: 1.5em; font-weight: bold; } .card .detail { color: #777; font-size: 0.8em; }
        nav ul { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 6px 16px; }
        table { border-collapse: collapse; margin: 8px 0 12px; font-size: 0.92em; }
        th, td { padding: 3px 10px; text-align: left; vertical-align: top; border-bottom: 1px solid #eee; }
        th { background: #f4f4f4; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
        tbody tr:nth-child(even) { background: #fafafa; }
        code { font-family: "DejaVu Sans Mono", monospace; font-size: 0.95em; }
        ol.stack { margin: 4px 0; padding-left: 22px; } .via { color: #777; font-size: 0.9em; }
        .tree { font-family: "DejaVu Sans Mono", monospace; white-space: pre; color: #888; }
        figure { margin: 10px 0; } svg { max-width: 100%; height: auto; }
        footer { color: #777; font-size: 0.85em; margin-top: 40px; border-top: 1px solid #ddd; }

        """

    /// A table whose cells know where their figures come from.
    struct Table {
        enum Cell {
            case text(String)
            case code(String)
            /// Markup, already escaped.
            case html(String)
            case bytes(Int, String?)
            case count(Int, String?, suffix: String = "")
            case ratio(Double, String?)
            /// A figure computed here: shown, with its value.
            case derived(String, Int)
        }

        var columns: [String]
        var numeric: Set<Int>
        var rows: [[Cell]] = []
        /// The report's JSON: a figure whose path it lacks (a field the reader derived) is shown
        /// without `data-field`.
        var json: JSONPaths?

        init(_ columns: [String], numeric: [Int] = []) {
            self.columns = columns
            self.numeric = Set(numeric)
        }

        mutating func row(_ cells: [Cell]) { rows.append(cells) }

        func html(id: String) -> String {
            var w = HTMLWriter()
            w.open("table", ["id": id])
            w.open("thead")
            w.open("tr")
            for (i, c) in columns.enumerated() { w.element("th", c, numeric.contains(i) ? ["class": "num"] : [:]) }
            w.close("tr")
            w.close("thead")
            w.open("tbody")
            for row in rows {
                w.open("tr")
                for (i, cell) in row.enumerated() {
                    var attributes: [String: String] = numeric.contains(i) ? ["class": "num"] : [:]
                    func known(_ path: String?) -> String? {
                        guard let path, json?.has(path) ?? true else { return nil }
                        return path
                    }
                    switch cell {
                    case .text(let t): w.element("td", t, attributes)
                    case .code(let t):
                        w.open("td", attributes); w.element("code", t); w.close("td")
                    case .html(let markup):
                        w.open("td", attributes); w.raw(markup); w.close("td")
                    case .bytes(let v, let field):
                        attributes["data-field"] = known(field); attributes["data-value"] = "\(v)"; attributes["data-unit"] = "bytes"
                        w.element("td", Units.bytes(v), attributes)
                    case .count(let v, let field, let suffix):
                        attributes["data-field"] = known(field); attributes["data-value"] = "\(v)"; attributes["data-unit"] = "count"
                        w.element("td", "\(v)\(suffix)", attributes)
                    case .ratio(let v, let field):
                        attributes["data-field"] = known(field); attributes["data-value"] = "\(v)"; attributes["data-unit"] = "ratio"
                        w.element("td", Units.percent(v), attributes)
                    case .derived(let shown, let v):
                        attributes["data-value"] = "\(v)"
                        w.element("td", shown, attributes)
                    }
                }
                w.close("tr")
            }
            w.close("tbody")
            w.close("table")
            return w.text
        }
    }
}

/// Markup with escaped text and attributes (sorted, so the output is stable).
struct HTMLWriter {
    private(set) var text = ""

    mutating func raw(_ markup: String) { text += markup }

    mutating func open(_ name: String, _ attributes: [String: String] = [:]) {
        text += "<\(name)\(Self.attributes(attributes))>"
    }

    mutating func close(_ name: String) { text += "</\(name)>\n" }

    /// An element with text content.
    mutating func element(_ name: String, _ content: String, _ attributes: [String: String] = [:]) {
        text += "<\(name)\(Self.attributes(attributes))>\(SVG.escape(content))</\(name)>\n"
    }

    mutating func text(_ content: String) { text += SVG.escape(content) }

    static func attributes(_ attributes: [String: String]) -> String {
        attributes.sorted { $0.key < $1.key }.map { " \($0.key)=\"\(SVG.escape($0.value))\"" }.joined()
    }
}

/// Whether a report's JSON has a value at a path ("memory.used", "orders[3].live").
struct JSONPaths {
    var root: Any?

    init(_ data: Data? = nil) {
        root = data.flatMap { try? JSONSerialization.jsonObject(with: $0) }
    }

    /// The value at `path`, nil when absent (or null).
    func value(_ path: String) -> Any? {
        var current: Any? = root
        for component in path.split(separator: ".") {
            var name = Substring(component)
            var indices: [Int] = []
            while name.hasSuffix("]"), let open = name.lastIndex(of: "["), let i = Int(name[name.index(after: open)..<name.index(before: name.endIndex)]) {
                indices.insert(i, at: 0)
                name = name[..<open]
            }
            current = (current as? [String: Any])?[String(name)]
            for i in indices {
                guard let array = current as? [Any], i >= 0, i < array.count else { return nil }
                current = array[i]
            }
            if current == nil || current is NSNull { return nil }
        }
        return current
    }

    /// Unknown (no JSON at all) counts as present.
    func has(_ path: String) -> Bool { root == nil || value(path) != nil }
}
