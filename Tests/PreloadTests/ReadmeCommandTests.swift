import Foundation
import Testing

// Every command README.md shows runs as written (issue 14, item 7): each ```sh block, and each
// `$ COMMAND` line of the other code blocks (the generated examples), in README order, one bash
// per block (so `export` and `cd` hold for the rest of their block), each command's exit status 0.
//
// Where they run: a scratch copy of the package, so nothing they write lands in the real one.
// Its top-level entries are symbolic links to the package's (Sources, Tests, tools, ...), except
// `.build`: `.build/release` is a real folder of links to what this test run built (the library
// and buddy-report of `swift test`'s build, so no command builds anything). The current folder is
// that copy; `/tmp/` in a command becomes a folder of the test's own; DESTDIR points into it (so
// `tools/install.sh /usr/local` stages there); BUDDY_LIB names the library (buddy-report run);
// no BUDDY_* variable of the caller's reaches the commands.
//
// Commands that take minutes are not run: `notRun` lists each with the reason and a cheap check
// run in its place (the script exists and parses, `--help` works). Any other command, including
// one added to the README later, is run: a new block is covered without touching this file, and
// a table entry the README no longer shows fails the test (the table stays the README's).

@Suite("README commands")
struct ReadmeCommandTests {
    /// Commands not run, by their text as `ReadmeCommands.key` writes it: why, and what runs instead.
    static let notRun: [String: (reason: String, check: String)] = [
        "tools/test": (
            "the whole suite, of which this test is a part",
            "test -x tools/test && bash -n tools/test && test -x tools/install-test-deps.sh"),
        "TSAN_OPTIONS=suppressions=$PWD/Tests/Sanitizers/tsan.supp swift test --sanitize=thread --scratch-path .build-tsan --filter 'BuddyCoreTests|BuddyPoolTests' --skip ProgramTests": (
            "a ThreadSanitizer build of the tests: minutes (tools/sanitize.sh)",
            "test -f Tests/Sanitizers/tsan.supp && test -x tools/sanitize.sh && bash -n tools/sanitize.sh"),
        "ASAN_OPTIONS=detect_leaks=0 swift test --sanitize=address -Xcc -fsanitize=undefined --scratch-path .build-asan --filter 'BuddyCoreTests|BuddyPoolTests' --skip ProgramTests": (
            "an AddressSanitizer build of the tests: minutes (tools/sanitize.sh)",
            "test -x tools/sanitize.sh && bash -n tools/sanitize.sh"),
        "swift build -c release --product BuddyMalloc": (
            "a release build, minutes; the commands here use the library this test run built",
            "test -f .build/release/libBuddyMalloc.so"),
        "tools/adversarial.sh --quick": (
            "AdversarialTests runs it (about 20 s)",
            "tools/adversarial.sh --help > /dev/null"),
        "tools/adversarial.sh": (
            "the full adversarial run: 6 to 10 minutes",
            "tools/adversarial.sh --help > /dev/null"),
        "tools/adversarial.sh --soak 180": (
            "a soak of 180 s",
            "tools/adversarial.sh --help > /dev/null"),
        "tools/check-malloc-path.py --signal-safe --roots buddy_report_signal_handler .build/release/libBuddyMalloc.so": (
            "disassembles the whole library (10 to 20 s); LibraryCheckTests runs it on the built libraries",
            "tools/check-malloc-path.py --help | grep -q -- --signal-safe"),
    ]

    static let readme: String = (try? String(contentsOf: Harness.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)) ?? ""

    @Test("the README's command blocks are found, and every entry of the not-run table is one of them")
    func commandsAreFound() throws {
        let commands = ReadmeCommands.commands(in: Self.readme)
        #expect(commands.count >= 15, "only \(commands.count) commands found in README.md")
        let keys = Set(commands.map(\.key))
        for stale in Self.notRun.keys where !keys.contains(stale) {
            Issue.record("ReadmeCommandTests.notRun lists a command README.md no longer shows: \(stale)")
        }
        // The parser: continuation lines, quotes over several lines, comments.
        let sample = """
            ```sh
            # a comment
            a --x   # what a does
            b 'one
            two # not a comment' \\
              --y
            ```

            ```
            $ c /tmp/f
            output
            ```
            """
        #expect(ReadmeCommands.commands(in: sample).map(\.key) == ["a --x", "b 'one two # not a comment' --y", "c /tmp/f"])
        #expect(ReadmeCommands.commands(in: sample).map(\.line) == [3, 4, 10])
    }

    @Test("every generated block of README.md is an example of tools/readme-examples.py", .enabled(if: Harness.has("python3")))
    func generatedBlocksHaveTheirExample() throws {
        let script = Harness.packageRoot.appendingPathComponent("tools/readme-examples.py").path
        #expect(FileManager.default.isExecutableFile(atPath: script), "\(script) is not executable")
        let list = try Harness.run(["python3", script, "--list"])
        try #require(list.status == 0, "readme-examples.py --list: \(list.output)")
        let examples = Set(list.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) })
        let markers = Self.readme.components(separatedBy: "\n").filter { $0.hasPrefix("<!-- generated: ") }
            .map { String($0.dropFirst("<!-- generated: ".count).prefix { $0 != " " }) }
        #expect(!markers.isEmpty, "README.md has no generated blocks")
        for marker in markers {
            #expect(examples.contains(marker), "README.md's block `<!-- generated: \(marker) -->` is not an example of tools/readme-examples.py (--list: \(examples.sorted()))")
        }
        #expect(Self.readme.components(separatedBy: "<!-- /generated -->").count - 1 == markers.count,
                "README.md: every `<!-- generated: NAME -->` needs one `<!-- /generated -->`")
    }

    @Test("every command of README.md's command blocks exits 0 (in a scratch copy of the package)",
          .enabled(if: Harness.has("gcc") && Harness.has("python3"), "gcc and python3 are needed"))
    func everyCommandRuns() throws {
        let library = try Harness.library
        _ = try Harness.product("buddy-report")
        let scratch = try Harness.temporaryDirectory()
        let copy = try ReadmeCommands.scratchPackage(in: scratch, binDirectory: Harness.binDirectory)
        let temporary = scratch.appendingPathComponent("tmp")
        try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
        let stage = scratch.appendingPathComponent("stage")

        let commands = ReadmeCommands.commands(in: Self.readme)
        try #require(!commands.isEmpty, "no commands in README.md")
        var ran = 0, replaced = 0
        let started = Date()
        for block in Dictionary(grouping: commands, by: \.block).sorted(by: { $0.key < $1.key }).map(\.value) {
            var script = """
                for name in $(compgen -e); do case $name in BUDDY_*) unset "$name" ;; esac; done
                export BUDDY_LIB=\(ReadmeCommands.quoted(library)) DESTDIR=\(ReadmeCommands.quoted(stage.path))
                export PWD=\(ReadmeCommands.quoted(copy.path))
                readme_failed() { echo "README.md:$1: exit status $2" >&2; exit 97; }

                """
            for command in block {
                let text: String
                if let entry = Self.notRun[command.key] {
                    text = entry.check
                    replaced += 1
                } else {
                    text = ReadmeCommands.inFolder(command.text, temporary.path)
                    ran += 1
                }
                script += "echo \(ReadmeCommands.quoted("README.md:\(command.line): \(command.key.prefix(70))")) >&2\n"
                script += "{ \(text)\n} || readme_failed \(command.line) $?\n"
            }
            let result = try Harness.run(["bash", "-c", script], directory: copy, timeout: 120)
            let failed = result.stderr.split(separator: "\n").last { $0.hasPrefix("README.md:") && $0.contains(": exit status ") }
            #expect(result.status == 0 && result.signal == 0, """
                README.md block at line \(block[0].line): \(failed.map(String.init) ?? "exit status \(result.status), signal \(result.signal)")
                script:
                \(script)
                stdout (end):
                \(result.stdout.suffix(3000))
                stderr (end):
                \(result.stderr.suffix(5000))
                """)
        }
        let seconds = Date().timeIntervalSince(started)
        #expect(ran + replaced == commands.count)
        print("README commands: \(ran) run, \(replaced) not run (a cheap check instead: ReadmeCommandTests.notRun), \(String(format: "%.1f", seconds)) s")
        // The commands wrote where they were told: the staged install, the charts.
        #expect(FileManager.default.fileExists(atPath: stage.appendingPathComponent("usr/local/lib/libBuddyMalloc.so").path),
                "tools/install.sh /usr/local did not stage into DESTDIR")
        #expect(FileManager.default.fileExists(atPath: temporary.appendingPathComponent("charts/usage.svg").path),
                "buddy-report plot of the periodic reports drew no usage chart")
    }
}

/// README.md's commands, and the environment they run in.
enum ReadmeCommands {
    struct Command {
        /// The code block it is in (0, 1, ... in README order).
        var block: Int
        /// Its first line in README.md (1-based).
        var line: Int
        /// As written, continuation lines and comments included.
        var text: String
        /// Comments left out, continuation lines joined, blanks collapsed: what `notRun` matches.
        var key: String
    }

    /// The commands of every ```sh block (a command may continue over several lines, with a `\`
    /// or inside quotes; `#` lines and blank lines are skipped), and the `$ COMMAND` lines of the
    /// other fenced blocks.
    static func commands(in readme: String) -> [Command] {
        let lines = readme.components(separatedBy: "\n")
        var result: [Command] = []
        var block = 0
        var i = 0
        while i < lines.count {
            guard lines[i].hasPrefix("```") else { i += 1; continue }
            let language = lines[i].dropFirst(3).trimmingCharacters(in: .whitespaces)
            var body: [(line: Int, text: String)] = []
            i += 1
            while i < lines.count && !lines[i].hasPrefix("```") {
                body.append((i + 1, lines[i]))
                i += 1
            }
            i += 1
            var found: [Command] = []
            if language == "sh" {
                var pending: [String] = []
                var first = 0
                for (number, text) in body {
                    if pending.isEmpty {
                        let trimmed = text.trimmingCharacters(in: .whitespaces)
                        if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                        first = number
                    }
                    pending.append(text)
                    let joined = pending.joined(separator: "\n")
                    let scan = scan(joined)
                    if !scan.open {
                        found.append(Command(block: block, line: first, text: joined, key: scan.key))
                        pending = []
                    }
                }
                if !pending.isEmpty {
                    let joined = pending.joined(separator: "\n")
                    found.append(Command(block: block, line: first, text: joined, key: scan(joined).key))
                }
            } else {
                for (number, text) in body where text.hasPrefix("$ ") {
                    let command = String(text.dropFirst(2))
                    found.append(Command(block: block, line: number, text: command, key: scan(command).key))
                }
            }
            if !found.isEmpty {
                result += found
                block += 1
            }
        }
        return result
    }

    /// Whether `text` is an unfinished command (inside quotes, or its last line ends with `\`),
    /// and its key.
    static func scan(_ text: String) -> (open: Bool, key: String) {
        enum Quote { case none, single, double }
        var quote = Quote.none
        var key = ""
        var continued = false
        var characters = Array(text)
        characters.append("\n")
        var index = 0
        while index < characters.count - 1 {
            let c = characters[index]
            continued = false
            switch quote {
            case .single:
                if c == "'" { quote = .none }
                key.append(c)
            case .double:
                if c == "\\" { key.append(c); index += 1; key.append(characters[index]) }
                else { if c == "\"" { quote = .none }; key.append(c) }
            case .none:
                if c == "\\" {
                    if characters[index + 1] == "\n" {
                        continued = index + 1 == characters.count - 1
                        key.append(" ")
                        index += 1
                    } else {
                        key.append(c); index += 1; key.append(characters[index])
                    }
                } else if c == "#" && (key.last.map { $0 == " " || $0 == "\n" || $0 == "\t" } ?? true) {
                    while characters[index + 1] != "\n" { index += 1 }
                } else {
                    if c == "'" { quote = .single } else if c == "\"" { quote = .double }
                    key.append(c)
                }
            }
            index += 1
        }
        let collapsed = key.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).joined(separator: " ")
        return (quote != .none || continued, collapsed)
    }

    /// The command with its `/tmp/` paths in `folder`.
    static func inFolder(_ command: String, _ folder: String) -> String {
        let expression = try! NSRegularExpression(pattern: #"(?<![\w.$/-])/tmp/"#)
        let range = NSRange(command.startIndex..., in: command)
        return expression.stringByReplacingMatches(in: command, range: range,
                                                   withTemplate: NSRegularExpression.escapedTemplate(for: folder + "/"))
    }

    /// A folder that looks like the package: links to its top-level entries, and `.build/release`
    /// a real folder of links to the built products.
    static func scratchPackage(in scratch: URL, binDirectory: URL) throws -> URL {
        let files = FileManager.default
        let copy = scratch.appendingPathComponent("package")
        let release = copy.appendingPathComponent(".build/release")
        try files.createDirectory(at: release, withIntermediateDirectories: true)
        for entry in try files.contentsOfDirectory(atPath: Harness.packageRoot.path)
        where !entry.hasPrefix(".build") && entry != ".swiftpm" {
            try files.createSymbolicLink(at: copy.appendingPathComponent(entry),
                                         withDestinationURL: Harness.packageRoot.appendingPathComponent(entry))
        }
        for entry in try files.contentsOfDirectory(atPath: binDirectory.path) where entry != "pkgconfig" {
            try files.createSymbolicLink(at: release.appendingPathComponent(entry),
                                         withDestinationURL: binDirectory.appendingPathComponent(entry))
        }
        return copy
    }

    static func quoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
