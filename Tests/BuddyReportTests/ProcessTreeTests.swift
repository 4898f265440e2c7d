import Foundation
import Testing
@testable import BuddyReportKit

/// Process trees: who started whom, from a `ppid` field, from /proc while `run` watches, or from
/// the reports' start times.
@Suite struct ProcessTreeTests {
    /// A report of `pid` started at `created`, ended at `end` (its exit report), `ppid` if given.
    static func report(_ pid: Int, _ program: String, created: Double, end: Double, ppid: Int? = nil, reason: String = "exit",
                       held: Int = 4096) throws -> ReportDocument {
        let json = """
            {"format":"buddymalloc-report","version":1,"pid":\(pid),\(ppid.map { "\"ppid\":\($0)," } ?? "")"program":"\(program)","reason":"\(reason)",
             "time":{"created":\(created),"now":\(end),"uptime":\(end - created)},
             "memory":{"reserved":65536,"used":\(held),"free":\(65536 - held),"peak_used":8192},"calls":{"malloc":3,"free":1},"orders":[]}
            """
        return try ReportLoader.parse(Data(json.utf8), file: "report.\(pid)").documents[0]
    }

    /// From the start times: a shell (100) runs a pipeline (cat 102, wc 103: siblings, although
    /// wc started first and outlived cat), then make (104), whose cc (106) forks a child (107)
    /// sharing its pool's start time; ls (101) had exited before the others started.
    @Test func parentsFromStartTimes() throws {
        let documents = [
            try Self.report(100, "sh", created: 10, end: 20),
            try Self.report(101, "ls", created: 10.1, end: 10.2),
            try Self.report(103, "wc", created: 10.3, end: 10.9),
            try Self.report(102, "cat", created: 10.4, end: 10.5),
            try Self.report(104, "make", created: 11, end: 19),
            try Self.report(106, "cc", created: 12, end: 13),
            try Self.report(107, "cc", created: 12, end: 12.5),
        ]
        let tree = ProcessTree(documents)
        func parent(_ pid: Int) -> Int? { tree.nodes[pid]?.parent }
        #expect(tree.roots == [100])
        #expect(parent(101) == 100 && parent(102) == 100 && parent(103) == 100 && parent(104) == 100)
        #expect(parent(106) == 104 && parent(107) == 106)
        #expect(tree.nodes.values.filter { $0.parent != nil }.allSatisfy { $0.source == .inferred })
        #expect(tree.order == [100, 101, 103, 102, 104, 106, 107])
        #expect(tree.text(ascii: true) == [
            "  pid  parent  program      held  peak used  calls  errors  health  report",
            "  100       -  sh           4.0K       8.0K      4       0          exit",
            "  101    100~  |- ls        4.0K       8.0K      4       0          exit",
            "  103    100~  |- wc        4.0K       8.0K      4       0          exit",
            "  102    100~  |- cat       4.0K       8.0K      4       0          exit",
            "  104    100~  `- make      4.0K       8.0K      4       0          exit",
            "  106    104~     `- cc     4.0K       8.0K      4       0          exit",
            "  107    106~        `- cc  4.0K       8.0K      4       0          exit",
        ])
        #expect(tree.legend.contains("~: parent inferred from the reports' start times"))
    }

    /// A `ppid` field wins, then what was seen in /proc; a parent without a report gives way to
    /// its nearest ancestor with one; a newer report of a process replaces its older ones.
    @Test func reportedAndObservedParents() throws {
        let documents = [
            try Self.report(200, "make", created: 1, end: 9),
            try Self.report(205, "cc1", created: 2, end: 3, ppid: 204),  // 204: gcc, statically linked: no report
            try Self.report(206, "as", created: 2.5, end: 3),
            try Self.report(207, "ld", created: 4, end: 5, reason: "interval"),
            try Self.report(207, "ld", created: 4, end: 6),
        ]
        let tree = ProcessTree(documents, observed: [204: 200, 206: 204, 208: 207], root: 200)
        #expect(tree.count == 4)
        #expect(tree.nodes[205]?.parent == 200 && tree.nodes[205]?.source == .reported)
        #expect(tree.nodes[206]?.parent == 200 && tree.nodes[206]?.source == .observed)
        #expect(tree.nodes[207]?.parent == 200 && tree.nodes[207]?.source == .inferred)
        #expect(tree.nodes[207]?.report.reason == "exit")
        #expect(!tree.text().joined().contains("interval"))
        // The unicode tree.
        #expect(tree.text().map { $0.split(separator: " ", omittingEmptySubsequences: true).prefix(4).joined(separator: " ") } == [
            "pid parent program held", "200 - make 4.0K", "205 200 ├─ cc1", "206 200 ├─ as", "207 200~ └─ ld",
        ])
    }

    /// The root `run` started comes first even when a child's report says it started earlier
    /// (clocks); a long tree is cut, the rest summed up by program.
    @Test func theRootAndLongTrees() throws {
        var documents = [try Self.report(300, "bash", created: 5, end: 9)]
        for pid in 301...350 { documents.append(try Self.report(pid, pid % 2 == 0 ? "sed" : "grep", created: 4.9, end: 5.5)) }
        let tree = ProcessTree(documents, root: 300)
        #expect(tree.roots == [300] && tree.nodes[301]?.parent == 300)
        let text = tree.text(limit: 10)
        #expect(text.count == 12 && text.last == "  ... and 41 more: sed x21, grep x20")
    }

    /// `run` watches the tree in /proc: a child that lives long enough is seen with its parent.
    @Test(.timeLimit(.minutes(1)))
    func runSeesTheChildren() throws {
        let directory = try Support.temporaryDirectory()
        let script = directory.appendingPathComponent("writer.sh").path
        try RunTests.writer.write(toFile: script, atomically: true, encoding: .utf8)
        var runner = ProgramRunner(program: ["sh", "-c", #"sh -c 'sleep 0.3; COUNT=1 PAUSE=0; . "$0"' "$0"; COUNT=1 PAUSE=0; . "$0""#, script], library: "")
        runner.progress = .never
        let outcome = try runner.run()
        #expect(outcome.exitStatus == 0 && outcome.others.count == 1)
        let child = try #require(outcome.others.first?.report.pid)
        #expect(outcome.parents[child] == outcome.pid)
        let tree = outcome.tree
        #expect(tree.roots == [outcome.pid])
        #expect(tree.nodes[child]?.parent == outcome.pid && tree.nodes[child]?.source == .observed)
    }

    /// The children of this process, and theirs, as /proc lists them.
    @Test func watchingProcesses() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "sleep 30; :"]  // not the last command: sh forks sleep
        try process.run()
        let shell = Int(process.processIdentifier)
        var parents: [Int: Int] = [:]
        var sleeper: Int?
        for _ in 0..<300 where sleeper == nil {
            ProcessWatcher.children(of: Int(getpid()), into: &parents)
            sleeper = parents.first { $0.value == shell }?.key
            if sleeper == nil { usleep(10_000) }
        }
        if let sleeper { kill(pid_t(sleeper), SIGKILL) }
        kill(pid_t(shell), SIGKILL)
        process.waitUntilExit()
        #expect(parents[shell] == Int(getpid()))
        #expect(sleeper != nil)
    }
}
