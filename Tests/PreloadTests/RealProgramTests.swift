import Foundation
import Testing

// Real, unmodified programs under LD_PRELOAD=libBuddyMalloc.so. Every test runs the same command
// twice, on glibc and under the preload, in twin folders, and checks that
//   - the output is identical (stdout, exit status, and stderr where the program is deterministic),
//   - the library was really in use: the main process wrote an exit report counting allocations
//     (ld.so runs a program on glibc when the preload is missing), and
//   - no process of the tree reported an invalid pointer or a double free.

// MARK: - Running a program under the preload

/// One program run under the preload, with the exit report of every process of its tree.
struct PreloadedProgramRun {
    var result: Harness.Result
    /// The pid of the program itself (the reports are named report.<pid>).
    var mainPID: Int32
    var reports: [Int32: String]
    var mainReport: String? { reports[mainPID] }
}

enum ProgramRunner {
    /// Runs `argv` with the library preloaded and BUDDY_REPORT=<fresh folder>/report.%p.
    /// The program is started through `sh -c 'echo $$ >pidfile; exec "$@"'`, so its pid is known
    /// (exec keeps the pid; the shell, replaced, writes no report).
    static func runPreloaded(_ argv: [String], environment: [String: String] = [:], stdin: String? = nil,
                             directory: URL? = nil, timeout: TimeInterval = 120) throws -> PreloadedProgramRun {
        let reportDirectory = try Harness.temporaryDirectory("reports")
        defer { try? FileManager.default.removeItem(at: reportDirectory) }
        let pidFile = reportDirectory.appendingPathComponent("main.pid").path
        var env = environment
        env["BUDDY_REPORT"] = reportDirectory.appendingPathComponent("report.%p").path
        let result = try Harness.run(["sh", "-c", "echo $$ > \"$0\" && exec \"$@\"", pidFile] + argv,
                                     environment: env, preload: true, stdin: stdin, directory: directory,
                                     timeout: timeout)
        let pidText = (try? String(contentsOfFile: pidFile, encoding: .utf8)) ?? ""
        var reports: [Int32: String] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: reportDirectory.path) where name.hasPrefix("report.") {
            guard let pid = Int32(name.dropFirst("report.".count)) else { continue }
            reports[pid] = try String(contentsOf: reportDirectory.appendingPathComponent(name), encoding: .utf8)
        }
        return PreloadedProgramRun(result: result,
                                   mainPID: Int32(pidText.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1,
                                   reports: reports)
    }

    /// The number after `label` in a report line ("invalid pointers 0"), nil when absent.
    static func count(_ label: String, in report: String) -> Int? {
        guard let range = report.range(of: label) else { return nil }
        return Int(report[range.upperBound...].prefix { $0.isNumber })
    }

    /// The library was in use by the main process, and no process of the tree saw a bad pointer.
    static func expectLibraryUsed(_ run: PreloadedProgramRun, _ what: String,
                                  sourceLocation: SourceLocation = #_sourceLocation) {
        let main = run.mainReport
        #expect(main != nil,
                "\(what): no exit report from the main process \(run.mainPID) (reports: \(run.reports.keys.sorted())); stderr: \(run.result.stderr.prefix(2000))",
                sourceLocation: sourceLocation)
        if let main {
            #expect(Harness.allocations(inReport: main) > 0, "\(what): the main process's report counts no allocations:\n\(main)",
                    sourceLocation: sourceLocation)
        }
        for (pid, report) in run.reports.sorted(by: { $0.key < $1.key }) {
            #expect(count("invalid pointers ", in: report) == 0, "\(what): process \(pid) reported invalid pointers:\n\(report)",
                    sourceLocation: sourceLocation)
            #expect(count("double frees ", in: report) == 0, "\(what): process \(pid) reported double frees:\n\(report)",
                    sourceLocation: sourceLocation)
        }
        #expect(!run.result.stderr.contains("buddy:"), "\(what): the library complained: \(run.result.stderr.prefix(2000))",
                sourceLocation: sourceLocation)
    }

    /// Compares two outputs; on a difference, reports the first differing line rather than both
    /// (possibly megabytes of) texts.
    static func expectSame(_ preloaded: String, _ plain: String, _ what: String,
                           sourceLocation: SourceLocation = #_sourceLocation) {
        guard preloaded != plain else { return }
        let a = preloaded.split(separator: "\n", omittingEmptySubsequences: false)
        let b = plain.split(separator: "\n", omittingEmptySubsequences: false)
        var line = 0
        while line < min(a.count, b.count) && a[line] == b[line] { line += 1 }
        let got = line < a.count ? String(a[line].prefix(300)) : "<end of output>"
        let want = line < b.count ? String(b[line].prefix(300)) : "<end of output>"
        Issue.record("\(what) differs under the preload at line \(line + 1) (\(a.count) vs \(b.count) lines):\n  preloaded: \(got)\n  glibc:     \(want)",
                     sourceLocation: sourceLocation)
    }

    /// Runs `argv` on glibc in `plainDirectory` and under the preload in `preloadDirectory`, and
    /// checks status, stdout (and stderr when `compareStderr`) and the reports. Returns both runs.
    @discardableResult
    static func compare(_ argv: [String], environment: [String: String] = [:], stdin: String? = nil,
                        plainDirectory: URL? = nil, preloadDirectory: URL? = nil, compareStderr: Bool = true,
                        timeout: TimeInterval = 120, sourceLocation: SourceLocation = #_sourceLocation) throws
        -> (plain: Harness.Result, preloaded: PreloadedProgramRun) {
        let what = argv.joined(separator: " ").prefix(120)
        let plain = try Harness.run(argv, environment: environment, preload: false, stdin: stdin,
                                    directory: plainDirectory, timeout: timeout)
        let preloaded = try runPreloaded(argv, environment: environment, stdin: stdin, directory: preloadDirectory,
                                         timeout: timeout)
        #expect(plain.status == 0 && plain.signal == 0, "control run on glibc failed: \(what): \(plain.stderr.prefix(2000))",
                sourceLocation: sourceLocation)
        #expect(preloaded.result.status == plain.status && preloaded.result.signal == plain.signal,
                "\(what): exit status \(preloaded.result.status) signal \(preloaded.result.signal) under the preload, \(plain.status) on glibc; stderr: \(preloaded.result.stderr.prefix(3000))",
                sourceLocation: sourceLocation)
        expectSame(preloaded.result.stdout, plain.stdout, "stdout of \(what)", sourceLocation: sourceLocation)
        if compareStderr {
            expectSame(preloaded.result.stderr, plain.stderr, "stderr of \(what)", sourceLocation: sourceLocation)
        }
        expectLibraryUsed(preloaded, String(what), sourceLocation: sourceLocation)
        return (plain, preloaded)
    }

    /// Twin scratch folders (glibc, preload) for one test.
    static func twinDirectories(_ name: String) throws -> (root: URL, plain: URL, preload: URL) {
        let root = try Harness.temporaryDirectory(name)
        let plain = root.appendingPathComponent("glibc"), preload = root.appendingPathComponent("preload")
        try FileManager.default.createDirectory(at: plain, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: preload, withIntermediateDirectories: true)
        return (root, plain, preload)
    }

    /// Writes the same file into both twin folders.
    static func write(_ text: String, _ name: String, into directories: URL...) throws {
        for directory in directories {
            let url = directory.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
    }

    /// The folder Harness.compileC builds into (one per test run).
    static var binDirectory: URL { Harness.programsDirectory }

    /// The interpreter behind `python3` (a pyenv shim is a shell script running several programs).
    static let python: String? = {
        guard let r = try? Harness.run(["python3", "-c", "import sys; print(sys.executable)"]), r.status == 0 else { return nil }
        let path = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return path.isEmpty ? nil : path
    }()

    /// Tests/Programs/swift_host.swift, compiled once per test run with swiftc -O.
    static let swiftHost: Result<String, HarnessError> = {
        let out = binDirectory.appendingPathComponent("swift_host")
        do {
            try FileManager.default.createDirectory(at: binDirectory, withIntermediateDirectories: true)
            let source = Harness.packageRoot.appendingPathComponent("Tests/Programs/swift_host.swift").path
            let r = try Harness.run(["swiftc", "-O", "-o", out.path, source], timeout: 300)
            guard r.status == 0 else { return .failure(HarnessError("swiftc failed for swift_host.swift:\n\(r.stderr)")) }
            return .success(out.path)
        } catch {
            return .failure(HarnessError("swiftc failed for swift_host.swift: \(error)"))
        }
    }()
}

/// A deterministic generator for test inputs (SplitMix64).
struct InputGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func word() -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        return String((0..<(1 + below(12))).map { _ in letters[below(letters.count)] })
    }
}

// MARK: - The programs

@Suite("Real programs under LD_PRELOAD")
struct RealProgramTests {
    @Test("python3 (PYTHONMALLOC=malloc): dicts, lists, strings, json",
          .enabled(if: ProgramRunner.python != nil, "python3 is not installed"))
    func python() throws {
        let python = try #require(ProgramRunner.python)
        let dirs = try ProgramRunner.twinDirectories("python")
        defer { try? FileManager.default.removeItem(at: dirs.root) }
        let script = #"""
        import json, hashlib, random, collections, re
        rng = random.Random(12345)
        h = hashlib.sha256()
        class Record:
            def __init__(self, key, values): self.key, self.values = key, values
        for rnd in range(12):
            d = {}
            for i in range(3000):
                k = "k%d_%s" % (rng.randrange(10**6), "x" * rng.randrange(60))
                d[k] = [rng.random() for _ in range(rng.randrange(8))] + [{"n": i, "s": k[::-1]}]
            s = json.dumps(d, sort_keys=True)
            back = json.loads(s)
            assert back == d
            words = s.split('"')
            c = collections.Counter(w[:3] for w in words)
            h.update(s.encode()); h.update(repr(sorted(c.items())).encode())
            records = sorted((Record(k, v) for k, v in d.items()), key=lambda r: (len(r.values), r.key))
            h.update("".join(r.key for r in records[:500]).encode())
            big = "".join(reversed(words))
            h.update(re.sub(r"(\d)(\d)", r"\2\1", big[::3]).encode())
            ba = bytearray()
            for w in words[:5000]: ba += w.encode() * 3
            h.update(bytes(ba[::11]))
            tuples = set((len(w), w[:2]) for w in words)
            h.update(repr(sorted(tuples)).encode())
            del d, back, words, records, big
        print(h.hexdigest(), rnd)
        """#
        try ProgramRunner.write(script, "churn.py", into: dirs.plain, dirs.preload)
        let env = ["PYTHONMALLOC": "malloc", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"]
        let (plain, _) = try ProgramRunner.compare([python, "churn.py"], environment: env,
                                                   plainDirectory: dirs.plain, preloadDirectory: dirs.preload)
        #expect(plain.stdout.count > 64, "the script printed no digest: \(plain.stdout)")
    }

    @Test("perl: hashes, regular expressions, sort", .enabled(if: Harness.has("perl"), "perl is not installed"))
    func perl() throws {
        let dirs = try ProgramRunner.twinDirectories("perl")
        defer { try? FileManager.default.removeItem(at: dirs.root) }
        let script = #"""
        use strict; use warnings; use Digest::MD5;
        my $ctx = Digest::MD5->new; my $seed = 42;
        sub rnd { $seed = ($seed * 1103515245 + 12345) % 2147483648; return $seed; }
        my $kept = 0;
        for my $round (1..15) {
          my %h;
          for my $i (1..5000) {
            my $k = "key" . rnd() . ("y" x (rnd() % 40));
            $h{$k} = join(",", map { rnd() % 1000 } 1..(rnd() % 10));
          }
          my @keys = sort { length($a) <=> length($b) or $a cmp $b } keys %h;
          my $text = join("\n", map { "$_=$h{$_}" } @keys);
          my @m = ($text =~ /key(\d+)y{3,}=(\d+)/g);
          (my $t2 = $text) =~ s/(\d)(\d)/$2$1/g;
          my @lines = sort { $b cmp $a } split /\n/, $t2;
          $ctx->add($text, scalar(@m), join("|", @lines[0..99]));
          delete @h{grep { /7/ } @keys};
          $kept += keys %h;
          $ctx->add(join(",", sort keys %h));
          my %count; $count{$_}++ for map { substr($_, 0, 4) } @lines;
          $ctx->add(join(";", map { "$_:$count{$_}" } sort keys %count));
        }
        print $ctx->hexdigest, " $kept\n";
        """#
        try ProgramRunner.write(script, "churn.pl", into: dirs.plain, dirs.preload)
        let env = ["PERL_HASH_SEED": "0", "PERL_PERTURB_KEYS": "0", "LC_ALL": "C"]
        let (plain, _) = try ProgramRunner.compare(["perl", "churn.pl"], environment: env,
                                                   plainDirectory: dirs.plain, preloadDirectory: dirs.preload)
        #expect(plain.stdout.count > 32, "the script printed no digest: \(plain.stdout)")
    }

    @Test("sort: 200k generated lines, small buffer, parallel", .enabled(if: Harness.has("sort"), "sort is not installed"))
    func sort() throws {
        let dirs = try ProgramRunner.twinDirectories("sort")
        defer { try? FileManager.default.removeItem(at: dirs.root) }
        var g = InputGenerator(seed: 7)
        var lines: [String] = []
        lines.reserveCapacity(200_000)
        for i in 0..<200_000 {
            lines.append("\(g.word()) \(g.below(1_000_000)) \(g.word())\(i % 13 == 0 ? " " + String(repeating: "q", count: g.below(300)) : "")")
        }
        try ProgramRunner.write(lines.joined(separator: "\n") + "\n", "input.txt", into: dirs.plain, dirs.preload)
        let env = ["LC_ALL": "C"]
        for argv in [["sort", "-S", "1M", "--parallel=2", "-T", ".", "input.txt"],
                     ["sort", "-t", " ", "-k2,2n", "-k1,1r", "--parallel=4", "input.txt"],
                     ["sort", "-u", "-f", "input.txt"]] {
            let (plain, _) = try ProgramRunner.compare(argv, environment: env, plainDirectory: dirs.plain,
                                                       preloadDirectory: dirs.preload)
            #expect(plain.stdout.split(separator: "\n").count >= 150_000, "sort printed too little: \(argv)")
        }
    }

    @Test("git: init, add, commit, log --stat, gc, fsck", .enabled(if: Harness.has("git"), "git is not installed"))
    func git() throws {
        let dirs = try ProgramRunner.twinDirectories("git")
        defer { try? FileManager.default.removeItem(at: dirs.root) }
        let home = dirs.root.appendingPathComponent("home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        let env = [
            "HOME": home.path, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_AUTHOR_NAME": "Buddy Tester", "GIT_AUTHOR_EMAIL": "tester@example.com",
            "GIT_AUTHOR_DATE": "1700000000 +0000",
            "GIT_COMMITTER_NAME": "Buddy Tester", "GIT_COMMITTER_EMAIL": "tester@example.com",
            "GIT_COMMITTER_DATE": "1700000000 +0000",
            "LC_ALL": "C", "TZ": "UTC", "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat",
        ]
        func runGit(_ args: String..., compareStderr: Bool = true) throws -> PreloadedProgramRun {
            try ProgramRunner.compare(["git"] + args, environment: env, plainDirectory: dirs.plain,
                                      preloadDirectory: dirs.preload, compareStderr: compareStderr).preloaded
        }
        var g = InputGenerator(seed: 11)
        func writeTree(round: Int) throws {
            for i in 0..<120 {
                guard round == 0 || i % 4 == round % 4 else { continue }
                var text = "// file \(i), round \(round)\n"
                for _ in 0..<(20 + g.below(200)) { text += "\(g.word()) \(g.word()) \(g.below(100000))\n" }
                try ProgramRunner.write(text, "src/dir\(i % 7)/file\(i).txt", into: dirs.plain, dirs.preload)
            }
        }
        _ = try runGit("-c", "init.defaultBranch=main", "init", "-q", ".")
        try writeTree(round: 0)
        _ = try runGit("add", "-A")
        _ = try runGit("commit", "-q", "-m", "Initial import")
        for round in 1...3 {
            try writeTree(round: round)
            try? FileManager.default.removeItem(at: dirs.plain.appendingPathComponent("src/dir\(round)/file\(round + 7 * round).txt"))
            try? FileManager.default.removeItem(at: dirs.preload.appendingPathComponent("src/dir\(round)/file\(round + 7 * round).txt"))
            _ = try runGit("add", "-A")
            _ = try runGit("commit", "-q", "-m", "Round \(round)")
        }
        let log = try runGit("log", "--stat")
        #expect(log.result.stdout.contains("Round 3") && log.result.stdout.contains("Initial import"),
                "git log misses commits: \(log.result.stdout.prefix(500))")
        _ = try runGit("gc", "-q", compareStderr: false)
        _ = try runGit("fsck", "--full", "--strict")
        _ = try runGit("log", "-p", "--format=%H %an %s")
        _ = try runGit("rev-list", "--all", "--objects")
        let objects = try runGit("count-objects", "-v", compareStderr: false)
        #expect(objects.result.stdout.contains("count: 0\n") && objects.result.stdout.contains("packs: 1\n"),
                "git gc left loose objects or several packs: \(objects.result.stdout)")
    }

    /// A generated C file: `functions` functions with loops, switches, tables and calls.
    private static func generatedC(functions: Int, seed: UInt64) -> String {
        var g = InputGenerator(seed: seed)
        var out = "#include <stddef.h>\nstruct item { int key; double weight; const char *name; struct item *next; };\n"
        for i in 0..<functions {
            let table = (0..<16).map { _ in String(g.below(1000)) }.joined(separator: ", ")
            let call = i % 3 != 0 && i > 0 ? " + func_\(i - 1)(x - 1, NULL)" : ""
            out += """
            static int table_\(i)[] = { \(table) };
            static const char *name_\(i) = "function number \(i) \(g.word())";
            int func_\(i)(int x, struct item *it) {
                int acc = \(i);
                for (int k = 0; k < 16; k++) {
                    switch ((x + k) % 5) {
                    case 0: acc += table_\(i)[k] * x; break;
                    case 1: acc ^= table_\(i)[(k * 7) % 16] << (k % 8); break;
                    case 2: acc -= it ? it->key : k; break;
                    case 3: acc += (int)(it ? it->weight * 0.\(g.below(1000)) : 0.5); break;
                    default: acc = acc * 31 + \(g.below(100)) + name_\(i)[k % 8];
                    }
                }
                while (it) { acc += it->key; it = it->next; }
                return acc\(call);
            }

            """
        }
        return out
    }

    /// gcc under the preload (driver, cc1 and as) builds the same object code as on glibc.
    private func compareGcc(functions: Int, flags: [String], name: String) throws {
        let dirs = try ProgramRunner.twinDirectories(name)
        defer { try? FileManager.default.removeItem(at: dirs.root) }
        try ProgramRunner.write(Self.generatedC(functions: functions, seed: UInt64(functions)), "gen.c",
                                into: dirs.plain, dirs.preload)
        let (_, run) = try ProgramRunner.compare(["gcc", "-c", "-Wall"] + flags + ["gen.c", "-o", "gen.o"],
                                                 environment: ["LC_ALL": "C"],
                                                 plainDirectory: dirs.plain, preloadDirectory: dirs.preload, timeout: 300)
        // The compiler proper (cc1) ran under the preload too, and allocated a lot.
        #expect(run.reports.values.contains { Harness.allocations(inReport: $0) > 10_000 },
                "no process of gcc's tree allocated more than 10k blocks: \(run.reports.values.map(Harness.allocations(inReport:)))")
        for dump in [["objdump", "-d", "gen.o"], ["objdump", "-s", "-j", ".data", "-j", ".rodata", "gen.o"]] {
            let a = try Harness.run(dump, directory: dirs.plain)
            let b = try Harness.run(dump, directory: dirs.preload)
            #expect(a.status == 0 && b.status == 0, "\(dump) failed: \(a.stderr) \(b.stderr)")
            #expect(a.stdout.contains("func_\(functions - 1)") || dump.contains("-s"), "objdump shows no code: \(a.stdout.prefix(300))")
            ProgramRunner.expectSame(b.stdout, a.stdout, dump.joined(separator: " ") + " of " + flags.joined(separator: " "))
        }
    }

    @Test("gcc -c: same object code", .enabled(if: Harness.has("gcc") && Harness.has("objdump"), "gcc or objdump is not installed"))
    func gcc() throws {
        try compareGcc(functions: 150, flags: [], name: "gccO0")
    }

    @Test("gcc -c -O2: same object code", .enabled(if: Harness.has("gcc") && Harness.has("objdump"), "gcc or objdump is not installed"))
    func gccOptimized() throws {
        try compareGcc(functions: 150, flags: ["-O2"], name: "gccO2")
    }

    @Test("gcc -O2 of a larger generated file", .enabled(if: Harness.has("gcc") && Harness.has("objdump"), "gcc or objdump is not installed"))
    func gccLarge() throws {
        try compareGcc(functions: 350, flags: ["-O2", "-g"], name: "gccLarge")
    }

    @Test("sqlite3: 20k inserts, index, aggregates", .enabled(if: Harness.has("sqlite3"), "sqlite3 is not installed"))
    func sqlite() throws {
        let dirs = try ProgramRunner.twinDirectories("sqlite")
        defer { try? FileManager.default.removeItem(at: dirs.root) }
        var g = InputGenerator(seed: 3)
        var sql = """
        CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, grp INTEGER, value REAL, payload BLOB);
        BEGIN;

        """
        for id in 1...20_000 {
            let payload = (0..<g.below(40)).map { _ in String(format: "%02x", g.below(256)) }.joined()
            sql += "INSERT INTO t VALUES(\(id), '\(g.word())-\(g.word())', \(g.below(50)), \(g.below(1_000_000)) / 1000.0, x'\(payload)');\n"
        }
        sql += """
        COMMIT;
        CREATE INDEX t_grp ON t(grp, value);
        CREATE INDEX t_name ON t(name);
        SELECT count(*), sum(grp), round(sum(value), 3), sum(length(payload)) FROM t;
        SELECT grp, count(*), round(avg(value), 4), max(length(name)), min(name) FROM t GROUP BY grp ORDER BY grp;
        SELECT id, name, value FROM t WHERE grp = 7 ORDER BY value DESC LIMIT 20;
        SELECT group_concat(id) FROM (SELECT id FROM t ORDER BY name, id LIMIT 50);
        UPDATE t SET name = upper(name) || '!' WHERE id % 3 = 0;
        DELETE FROM t WHERE id % 7 = 0;
        SELECT count(*), sum(length(name)), count(DISTINCT substr(name, 1, 2)) FROM t;
        VACUUM;
        PRAGMA integrity_check;
        SELECT a.grp, count(*) FROM t a JOIN t b ON a.grp = b.grp AND a.id < b.id AND b.id - a.id < 40 GROUP BY a.grp ORDER BY 2 DESC, 1 LIMIT 10;
        WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000) SELECT sum(x), count(*), group_concat(x % 10, '') LIKE '%123%' FROM c;

        """
        try ProgramRunner.write(sql, "script.sql", into: dirs.plain, dirs.preload)
        let (plain, _) = try ProgramRunner.compare(["sqlite3", "-batch", "test.db", ".read script.sql"],
                                                   plainDirectory: dirs.plain, preloadDirectory: dirs.preload)
        #expect(plain.stdout.hasPrefix("20000|"), "unexpected sqlite3 output: \(plain.stdout.prefix(300))")
        #expect(plain.stdout.contains("\nok\n"), "integrity_check did not say ok: \(plain.stdout.suffix(500))")
    }

    @Test("Swift host (dynamic libswiftCore) under the library's static Swift runtime",
          .enabled(if: Harness.has("swiftc"), "swiftc is not installed"))
    func swiftHost() throws {
        let host = try ProgramRunner.swiftHost.get()
        let (plain, run) = try ProgramRunner.compare([host])
        #expect(plain.stdout.hasPrefix("swift_host digest "), "unexpected output: \(plain.stdout)")
        if let report = run.mainReport {
            #expect(Harness.allocations(inReport: report) > 100_000,
                    "the Swift host's allocations did not reach the pool:\n\(report)")
        }
    }

    @Test("python3 -m compileall on a copy of the standard library",
          .enabled(if: ProgramRunner.python != nil && Harness.has("tar"), "python3 or tar is not installed"))
    func pythonCompileAll() throws {
        let python = try #require(ProgramRunner.python)
        let stdlib = try Harness.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"])
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let dirs = try ProgramRunner.twinDirectories("compileall")
        defer { try? FileManager.default.removeItem(at: dirs.root) }
        // The pure-Python standard library without its tests; copied with times kept (a .pyc
        // records its source's mtime), twice.
        let copy = try Harness.run(["sh", "-c", """
            set -e
            mkdir -p "$1/lib"
            cd "$0"
            tar cf - --exclude=site-packages --exclude=test --exclude=tests --exclude=idle_test \
                --exclude=__pycache__ --exclude='config-*' --exclude=lib-dynload --exclude=ensurepip \
                --exclude=lib2to3 . | (cd "$1/lib" && tar xf -)
            cp -a "$1/lib" "$2/lib"
            """, stdlib, dirs.plain.path, dirs.preload.path])
        try #require(copy.status == 0, "copying the standard library failed: \(copy.stderr)")
        // Relative paths: the .pyc files record them. -j 2: worker processes, forked.
        let env = ["PYTHONMALLOC": "malloc", "PYTHONHASHSEED": "0"]
        try ProgramRunner.compare([python, "-m", "compileall", "-q", "-j", "2", "lib"], environment: env,
                                  plainDirectory: dirs.plain, preloadDirectory: dirs.preload, timeout: 300)
        // Every .pyc byte for byte.
        let plainLib = dirs.plain.appendingPathComponent("lib"), preloadLib = dirs.preload.appendingPathComponent("lib")
        let files = (FileManager.default.enumerator(atPath: plainLib.path)?.allObjects as? [String] ?? [])
            .filter { $0.hasSuffix(".pyc") }
        #expect(files.count > 300, "compileall wrote only \(files.count) .pyc files")
        var differing: [String] = []
        for file in files {
            let a = FileManager.default.contents(atPath: plainLib.appendingPathComponent(file).path)
            let b = FileManager.default.contents(atPath: preloadLib.appendingPathComponent(file).path)
            if a != b { differing.append(file) }
        }
        #expect(differing.isEmpty, "\(differing.count) of \(files.count) .pyc files differ, e.g. \(differing.prefix(5))")
    }

    @Test("node: objects, maps, JSON, Buffers, zlib, crypto", .enabled(if: Harness.has("node"), "node is not installed"))
    func node() throws {
        let script = """
        const crypto = require('crypto'); const zlib = require('zlib');
        const h = crypto.createHash('sha256');
        for (let round = 0; round < 12; round++) {
          const m = new Map(); const arr = [];
          for (let i = 0; i < 20000; i++) {
            const k = 'k' + ((i * 7919 + round) % 100003);
            m.set(k, { i, s: k.repeat(i % 5), list: [i, round, k.length] });
            arr.push(k + ':' + i);
          }
          arr.sort();
          const json = JSON.stringify([...m.entries()].slice(0, 3000));
          const buf = Buffer.from(json);
          const z = zlib.deflateSync(buf);
          const back = zlib.inflateSync(z);
          if (!back.equals(buf)) throw new Error('zlib round trip changed the data');
          const parsed = JSON.parse(json);
          h.update(json); h.update(arr.join(',')); h.update(String(z.length)); h.update(String(parsed.length));
          const ta = new Float64Array(100000 + round);
          for (let i = 0; i < ta.length; i++) ta[i] = Math.sqrt(i);
          h.update(Buffer.from(ta.buffer));
          const bufs = []; for (let i = 0; i < 2000; i++) bufs.push(Buffer.alloc(i * 13 % 9000, i & 255));
          h.update(Buffer.concat(bufs));
        }
        console.log(h.digest('hex'));
        """
        let (plain, _) = try ProgramRunner.compare(["node", "-e", script])
        #expect(plain.stdout.count == 65, "unexpected node output: \(plain.stdout)")
    }

    @Test("java: -version, and a program run from source", .enabled(if: Harness.has("java"), "java is not installed"))
    func java() throws {
        try ProgramRunner.compare(["java", "-version"])
        let dirs = try ProgramRunner.twinDirectories("java")
        defer { try? FileManager.default.removeItem(at: dirs.root) }
        let source = """
        import java.util.*;
        import java.util.zip.*;
        public class Churn {
            public static void main(String[] args) throws Exception {
                Map<String, List<Integer>> m = new HashMap<>();
                StringBuilder sb = new StringBuilder();
                for (int i = 0; i < 200000; i++) {
                    String k = "k" + (i * 7919 % 50021);
                    m.computeIfAbsent(k, x -> new ArrayList<>()).add(i);
                    if (i % 10 == 0) sb.append(k).append(',');
                }
                byte[] input = sb.toString().getBytes("UTF-8");
                Deflater d = new Deflater(9);
                d.setInput(input); d.finish();
                byte[] out = new byte[input.length + 64];
                int n = d.deflate(out); d.end();
                Inflater inf = new Inflater();
                inf.setInput(out, 0, n);
                byte[] back = new byte[input.length];
                int r = inf.inflate(back); inf.end();
                if (r != input.length || !Arrays.equals(back, input)) throw new RuntimeException("zip round trip");
                CRC32 crc = new CRC32(); crc.update(input);
                long sum = 0;
                for (List<Integer> l : new TreeMap<>(m).values()) sum = sum * 31 + l.size();
                System.out.println(m.size() + " " + n + " " + crc.getValue() + " " + sum);
            }
        }
        """
        try ProgramRunner.write(source, "Churn.java", into: dirs.plain, dirs.preload)
        let (plain, _) = try ProgramRunner.compare(["java", "Churn.java"],
                                                   plainDirectory: dirs.plain, preloadDirectory: dirs.preload)
        #expect(plain.stdout.hasPrefix("50021 "), "unexpected java output: \(plain.stdout)")
    }
}
