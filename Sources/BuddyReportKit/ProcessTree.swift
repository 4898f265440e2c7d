import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The processes whose reports were written together (a program and its children: `run`, or the
/// files of `BUDDY_REPORT=DIR/report.%p`), as a tree: who started whom, with each process's
/// newest report.
///
/// A process's parent comes from, in order:
/// - `reported`: the report's `ppid` field (not written by the library yet);
/// - `observed`: what `buddy-report run` saw in /proc (`/proc/PID/task/TID/children`) while the
///   processes ran: exact, but a process that lived less than the polling interval may be missed;
/// - `inferred`: the reports' start times, for the rest: the parent is taken to be the process
///   that started last before it (`time.created`, the pool's creation) and had not yet exited
///   then (its exit report's `time.now`), among those with a smaller pid (a parent is forked
///   before its child; pids grow until they wrap); a forked child, whose pool is its parent's
///   copy, shares its parent's start time: of processes that started at the same moment, the
///   smallest pid is taken. Shown with `~`.
///
/// When the parent found has no report (a static or setuid program between the two), the
/// nearest ancestor with one is taken.
public struct ProcessTree: Sendable {
    public enum ParentSource: String, Sendable {
        case reported, observed, inferred
    }

    public struct Node: Sendable {
        public var document: ReportDocument
        public var parent: Int?
        public var source: ParentSource?
        public var children: [Int] = []
        public var depth = 0

        public var report: Report { document.report }
        public var pid: Int { document.report.pid }
    }

    public private(set) var nodes: [Int: Node] = [:]
    /// Processes without a parent among the reports, oldest first.
    public private(set) var roots: [Int] = []
    /// Every pid, parents before their children (depth first, children oldest first).
    public private(set) var order: [Int] = []

    /// `documents`: every report (each process's newest is taken); `observed`: child -> parent
    /// pids seen while the processes ran; `root`: the process that started the others, when known.
    public init(_ documents: [ReportDocument], observed: [Int: Int] = [:], root: Int? = nil) {
        let series = ReportSeries(documents)
        for pid in series.pids {
            guard let newest = series.reports(pid: pid).last else { continue }
            nodes[pid] = Node(document: newest)
        }
        let pids = nodes.keys.sorted { Self.startKey(nodes[$0]!) < Self.startKey(nodes[$1]!) }
        for pid in pids where pid != root {
            if let (parent, source) = parent(of: pid, observed: observed, root: root, candidates: pids) {
                nodes[pid]!.parent = parent
                nodes[pid]!.source = source
            }
        }
        // A cycle (reused pids, inconsistent times) must not hide processes: break it at its oldest.
        for pid in pids {
            var seen: Set<Int> = [pid]
            var p = nodes[pid]!.parent
            while let q = p {
                if seen.contains(q) {
                    nodes[pid]!.parent = nil
                    nodes[pid]!.source = nil
                    break
                }
                seen.insert(q)
                p = nodes[q]!.parent
            }
        }
        for pid in pids {
            if let parent = nodes[pid]!.parent { nodes[parent]!.children.append(pid) } else { roots.append(pid) }
        }
        if let root, let i = roots.firstIndex(of: root) { roots.insert(roots.remove(at: i), at: 0) }
        func visit(_ pid: Int, _ depth: Int) {
            nodes[pid]!.depth = depth
            order.append(pid)
            for child in nodes[pid]!.children { visit(child, depth + 1) }
        }
        for pid in roots { visit(pid, 0) }
    }

    /// Start time, then pid: the order processes started in.
    static func startKey(_ node: Node) -> (Double, Int) {
        (node.report.time?.created ?? .infinity, node.pid)
    }

    func parent(of pid: Int, observed: [Int: Int], root: Int?, candidates: [Int]) -> (Int, ParentSource)? {
        let report = nodes[pid]!.report
        let root = root.flatMap { nodes[$0] == nil ? nil : $0 }
        // The nearest ancestor with a report, through the parents known.
        func ancestor(_ start: Int, _ parents: [Int: Int]) -> Int? {
            var p: Int? = start
            var steps = 0
            while let q = p, steps < 4096 {
                if q != pid, nodes[q] != nil { return q }
                p = parents[q]
                steps += 1
            }
            return nil
        }
        if let ppid = report.ppid, let found = ancestor(ppid, observed) { return (found, .reported) }
        if let parent = observed[pid], let found = ancestor(parent, observed) { return (found, .observed) }
        // From the start times: the newest process that started before this one and was still
        // running then (a report not written at exit: maybe still running at the end).
        guard let created = report.time?.created else {
            return root.map { ($0, .inferred) }
        }
        var best: (pid: Int, key: (Double, Int))?
        for q in candidates where q != pid {
            let other = nodes[q]!.report
            guard let start = other.time?.created else { continue }
            // A parent is forked before its child: a smaller pid (pids grow until they wrap at
            // pid_max, 4194304 on 64-bit Linux), and a start no later.
            guard q < pid, start <= created else { continue }
            if other.reason == "exit", let end = other.time?.now, end < created { continue }
            // The latest start; of equal starts, the smallest pid.
            let key = (start, -q)
            if best == nil || key > best!.key { best = (q, key) }
        }
        if let best { return (best.pid, .inferred) }
        return root.map { ($0, .inferred) }
    }

    public var count: Int { nodes.count }

    /// Whether some parent was inferred from the start times.
    public var hasInferredParents: Bool { nodes.values.contains { $0.source == .inferred } }

    // MARK: - Text

    /// The tree as a table: pid, parent, program (indented under its parent), held and peak
    /// memory, calls, errors, health, the newest report's reason; `limit` rows at most (then the
    /// rest by program). `files`: the report files' paths in a last column.
    public func text(ascii: Bool = false, limit: Int = 40, files: Bool = false) -> [String] {
        var table = TextTable([("pid", .right), ("parent", .right), ("program", .left), ("held", .right), ("peak used", .right),
                               ("calls", .right), ("errors", .right), ("health", .left), ("report", .left)]
                              + (files ? [("file", .left)] : []))
        let shown = order.prefix(limit)
        for pid in shown {
            let node = nodes[pid]!
            let r = node.report
            let m = r.memory
            let parent = node.parent.map { "\($0)" + (node.source == .inferred ? "~" : "") } ?? "-"
            let row = [
                "\(pid)", parent, prefix(pid, ascii: ascii) + (r.program.isEmpty ? "(unnamed)" : r.program),
                Units.bytes(m.held), Units.bytes(m.peakUsed), "\(r.calls.values.reduce(0, +))", "\(r.errorCount)",
                r.health?.status ?? "", r.reason == "exit" ? "exit" : "\(r.reason) #\(r.sequence)",
            ]
            table.add(row + (files ? [node.document.file] : []))
        }
        var lines = table.render()
        let rest = order.dropFirst(shown.count)
        if !rest.isEmpty {
            let byProgram = Dictionary(grouping: rest) { nodes[$0]!.report.program.isEmpty ? "(unnamed)" : nodes[$0]!.report.program }
            let summary = byProgram.sorted { ($1.value.count, $0.key) < ($0.value.count, $1.key) }.map { "\($0.key) x\($0.value.count)" }
            lines.append("  ... and \(rest.count) more: \(summary.joined(separator: ", "))")
        }
        return lines
    }

    /// What the parent column means, for a note under the table.
    public var legend: String {
        var parts = ["held: bytes the program held at its newest report; peak used: the most the pool had allocated"]
        if hasInferredParents {
            parts.append("~: parent inferred from the reports' start times (the reports carry no parent pid)")
        }
        return parts.joined(separator: "; ")
    }

    /// "├─ ", "│  └─ " ...: the tree's lines before a process's name.
    func prefix(_ pid: Int, ascii: Bool) -> String {
        let node = nodes[pid]!
        guard node.depth > 0 else { return "" }
        let (branch, last, pipe, space) = ascii ? ("|- ", "`- ", "|  ", "   ") : ("├─ ", "└─ ", "│  ", "   ")
        var parts: [String] = []
        var current = pid
        // From this node up to the root's children: whether each is its parent's last child.
        while let parent = nodes[current]!.parent {
            let isLast = nodes[parent]!.children.last == current
            parts.append(current == pid ? (isLast ? last : branch) : (isLast ? space : pipe))
            current = parent
        }
        return parts.reversed().joined()
    }
}

// MARK: - Watching a process tree

/// The children of a running process tree, from /proc/PID/task/TID/children (Linux 3.5 or later,
/// CONFIG_PROC_CHILDREN): child pid -> parent pid, for every process below `root` alive now.
public enum ProcessWatcher {
    public static func children(of root: Int, into parents: inout [Int: Int]) {
        var queue = [root]
        var seen: Set<Int> = [root]
        while let pid = queue.popLast() {
            guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { continue }
            for task in tasks {
                guard let text = contents("/proc/\(pid)/task/\(task)/children") else { continue }
                for field in text.split(separator: " ") {
                    guard let child = Int(field.trimmingCharacters(in: .whitespacesAndNewlines)), seen.insert(child).inserted else { continue }
                    parents[child] = pid
                    queue.append(child)
                }
            }
        }
    }

    static func contents(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        var out: [UInt8] = []
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buffer[..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
