import Foundation

/// What a stack's value is, in collapsed stacks and flame graphs.
public enum StackValue: String, Sendable, CaseIterable {
    /// Estimated live bytes (the site's `live_bytes`).
    case live
    /// Estimated bytes allocated so far (freed ones included).
    case allocated
    /// Live samples.
    case samples

    public var title: String {
        switch self {
        case .live: return "live bytes"
        case .allocated: return "allocated bytes"
        case .samples: return "live samples"
        }
    }

    var isBytes: Bool { self != .samples }
}

/// The sites of one or more reports as call stacks, outermost frame first, each with its value:
/// the input of collapsed stacks and flame graphs. Allocator wrappers are left out (they are the
/// innermost frames skipped by the resolver); inlined calls are frames of their own, marked `_[i]`
/// as Brendan Gregg's stackcollapse scripts do.
public struct StackProfile {
    public struct Stack: Equatable {
        /// Outermost first.
        public var frames: [String]
        /// The source location of each frame, where known ("leaky.c:12"), for tooltips.
        public var locations: [String?]
        public var value: Int
    }

    public var stacks: [Stack]
    public var value: StackValue
    /// The reports' programs and sampling periods, for titles.
    public var programs: [String]
    public var periods: [Int]

    /// `rootProgram`: put "program (pid N)" under every stack (default: when there are several reports).
    public init(_ reports: [Report], resolver: SiteResolver, value: StackValue, rootProgram: Bool? = nil) {
        self.value = value
        resolver.prepare(reports)
        let withRoot = rootProgram ?? (reports.count > 1)
        stacks = []
        programs = reports.map { "\($0.displayName) (pid \($0.pid))" }
        periods = Array(Set(reports.compactMap { $0.profile?.sampleBytes }.filter { $0 > 0 })).sorted()
        for report in reports {
            for site in resolver.sites(report) {
                let v: Int
                switch value {
                case .live: v = site.estimate.liveBytes
                case .allocated: v = site.estimate.allocatedBytes ?? site.estimate.liveBytes
                case .samples: v = site.estimate.liveSamples
                }
                guard v > 0 else { continue }
                let frames = Array(site.stack.reversed())
                var names = frames.map { Self.name($0) }
                var locations = frames.map(\.location)
                if frames.isEmpty { names = ["(no frames)"]; locations = [nil] }
                if withRoot {
                    names.insert(Self.clean("\(report.displayName) (pid \(report.pid))"), at: 0)
                    locations.insert(nil, at: 0)
                }
                stacks.append(Stack(frames: names, locations: locations, value: v))
            }
        }
    }

    /// A frame's name in a stack: no ";" (the separator) and no line breaks.
    static func name(_ frame: SymbolizedFrame) -> String {
        clean(frame.shortName) + (frame.inlined ? "_[i]" : "")
    }

    static func clean(_ text: String) -> String {
        String(text.map { $0 == ";" ? ":" : ($0 == "\n" || $0 == "\r" ? " " : $0) })
    }

    /// Brendan Gregg's folded format: "outer;...;inner VALUE" per line, equal stacks merged,
    /// sorted; what flamegraph.pl, speedscope and inferno read.
    public func collapsed() -> String {
        var merged: [String: Int] = [:]
        for s in stacks { merged[s.frames.joined(separator: ";"), default: 0] += s.value }
        return merged.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)\n" }.joined()
    }

    public var total: Int { stacks.reduce(0) { $0 + $1.value } }
}

/// A flame graph as SVG, drawn by this tool: one box per frame, its width its share of the value,
/// callers below callees (the root at the bottom), siblings sorted by name as flamegraph.pl does.
/// Each box has a <title> (its frame, source line, value and share) that browsers show on hover.
public struct FlameGraph {
    final class Node {
        var name: String
        var location: String?
        var value = 0
        var children: [String: Node] = [:]
        init(_ name: String) { self.name = name }
    }

    public var profile: StackProfile
    public var title: String
    public var width: Double
    public var frameHeight: Double = 17
    /// Boxes narrower than this many pixels are left out (flamegraph.pl's --minwidth).
    public var minWidth: Double = 0.1

    public init(_ profile: StackProfile, title: String? = nil, width: Double = 1200) {
        self.profile = profile
        self.width = width
        let period = profile.periods.count == 1 ? ", sampled every \(Units.bytes(profile.periods[0]))" : ""
        self.title = title ?? "\(profile.value.title.prefix(1).uppercased() + profile.value.title.dropFirst()): \(profile.programs.joined(separator: ", "))"
            + (profile.value.isBytes ? " (estimated\(period))" : "")
    }

    func tree() -> Node {
        let root = Node("all")
        for stack in profile.stacks {
            root.value += stack.value
            var node = root
            for (name, location) in zip(stack.frames, stack.locations) {
                let isNew = node.children[name] == nil
                let child = node.children[name] ?? Node(name)
                if isNew {
                    child.location = location
                } else if child.location != location, let known = child.location {
                    // Calls from several lines of one function: its file only.
                    let file = known.split(separator: ":").first.map(String.init)
                    child.location = file == location?.split(separator: ":").first.map(String.init) ? file : nil
                }
                child.value += stack.value
                node.children[name] = child
                node = child
            }
        }
        return root
    }

    static func depth(_ node: Node) -> Int {
        1 + (node.children.values.map(depth).max() ?? 0)
    }

    public func svg() -> String {
        let root = tree()
        let levels = Self.depth(root)
        let top = 46.0, bottom = 30.0, side = 10.0
        let height = top + Double(levels) * frameHeight + bottom
        let usable = width - 2 * side
        var svg = SVG(width: width, height: height)
        svg.raw("<style>.frame text { font-family: monospace; pointer-events: none } .frame rect { stroke: #fff; stroke-width: 0.5 } .frame:hover rect { stroke: #000 }</style>")
        svg.rect(x: 0, y: 0, width: width, height: height, fill: "#f8f8f8")
        svg.text(title, x: width / 2, y: 22, size: 15, anchor: .middle, bold: true)
        let unit = profile.value
        func amount(_ v: Int) -> String { unit.isBytes ? Units.bytes(v) : "\(v)" }
        svg.text("total \(amount(root.value)) \(unit.title); width = share of the total; hover a box for its figures",
                 x: width / 2, y: 38, size: 11, anchor: .middle, fill: "#555")
        let total = Double(max(1, root.value))
        var count = 0
        func draw(_ node: Node, x: Double, level: Int) {
            let w = Double(node.value) / total * usable
            guard w >= minWidth else { return }
            let y = height - bottom - Double(level + 1) * frameHeight
            let share = Double(node.value) / total
            let label = node.name + (node.location.map { " (\($0))" } ?? "")
            svg.raw("<g class=\"frame\"><title>\(SVG.escape("\(label)\n\(amount(node.value)) \(unit.title), \(Units.percent(share))"))</title>")
            svg.rect(x: x, y: y, width: w, height: frameHeight - 1, fill: level == 0 ? "#d0d0d0" : Self.color(node.name))
            let chars = Int((w - 6) / 6.6)
            if chars >= 3 {
                let text = node.name.count <= chars ? node.name : String(node.name.prefix(chars - 2)) + ".."
                svg.text(text, x: x + 3, y: y + frameHeight - 5, size: 11, fill: "#000")
            }
            svg.raw("</g>")
            count += 1
            var cx = x
            for child in node.children.values.sorted(by: { $0.name < $1.name }) {
                draw(child, x: cx, level: level + 1)
                cx += Double(child.value) / total * usable
            }
        }
        draw(root, x: side, level: 0)
        if root.value == 0 {
            svg.text("no sampled sites", x: width / 2, y: height / 2, size: 13, anchor: .middle, fill: "#555")
        }
        return svg.document(title: title)
    }

    /// flamegraph.pl's "hot" palette: red to yellow, the same color for the same name.
    static func color(_ name: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let a = Double(hash & 0xff) / 255, b = Double((hash >> 8) & 0xff) / 255, c = Double((hash >> 16) & 0xff) / 255
        let r = 205 + Int(50 * c), g = Int(230 * a), bl = Int(55 * b)
        return String(format: "#%02x%02x%02x", r, g, bl)
    }
}
