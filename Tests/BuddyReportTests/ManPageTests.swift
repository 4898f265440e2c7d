import Foundation
import Testing
@testable import BuddyReportKit

/// docs/man: roff that groff and man read without a warning, saying what the code says (the
/// README's options table, the tool's commands and options, the headers' functions), installed by
/// tools/install.sh.
@Suite struct ManPageTests {
    static let folder = Support.packageRoot.appendingPathComponent("docs/man")
    static let pages = ["buddy-report.1", "libBuddyMalloc.3", "buddymalloc.7"]

    static func source(_ page: String) throws -> String {
        try String(contentsOf: folder.appendingPathComponent(page), encoding: .utf8)
    }

    /// roff's escapes for what the tests look for: "-" is "\-" in names and options.
    static func roff(_ text: String) -> String { text.replacingOccurrences(of: "-", with: "\\-") }

    @Test(.enabled(if: Support.command("groff") != nil, "needs groff (Debian package groff-base)"))
    func groffWarnsOfNothing() throws {
        for page in Self.pages {
            let path = Self.folder.appendingPathComponent(page).path
            // -ww: every warning; -z: no output, only the diagnostics.
            let result = try Support.run(["groff", "-man", "-Tutf8", "-ww", "-z", path])
            #expect(result.status == 0 && result.stderr.isEmpty, "\(page): \(result.stderr)")
            let text = try Support.run(["groff", "-man", "-Tutf8", "-ww", "-P-cbou", path], environment: ["MANWIDTH": "80"])
            #expect(text.stderr.isEmpty && text.stdout.contains("NAME") && text.stdout.contains("SEE ALSO"), "\(page): \(text.stderr)")
        }
    }

    @Test(.enabled(if: Support.command("man") != nil, "needs man (Debian package man-db)"))
    func manReadsThem() throws {
        for page in Self.pages {
            let result = try Support.run(["man", "-l", Self.folder.appendingPathComponent(page).path],
                                         environment: ["MANWIDTH": "80", "MANPAGER": "cat", "PAGER": "cat", "MAN_KEEP_FORMATTING": ""])
            let title = page.split(separator: ".")[0].uppercased() + "(" + page.split(separator: ".")[1] + ")"
            #expect(result.status == 0 && result.stderr.isEmpty, "\(page): \(result.stderr)")
            #expect(result.stdout.hasPrefix(title), "\(page): \(result.stdout.prefix(80))")
        }
    }

    /// buddymalloc(7) lists every option of the README's options table (itself checked against
    /// the code's table by ReadmeTests), with its default, and no other.
    @Test func everyOptionWithItsDefault() throws {
        let readme = try String(contentsOf: Support.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let rows = try NSRegularExpression(pattern: #"^\| `(BUDDY_[A-Z_]+)` \| `([^`]*)` \|"#, options: .anchorsMatchLines)
        let options = rows.matches(in: readme, range: NSRange(readme.startIndex..., in: readme)).map {
            (String(readme[Range($0.range(at: 1), in: readme)!]), String(readme[Range($0.range(at: 2), in: readme)!]))
        }
        #expect(options.count >= 15)
        let page = try Self.source("buddymalloc.7")
        for (name, value) in options {
            #expect(page.contains("\\fB\(name)\\fR (default: \\fI\(Self.roff(value))\\fR)"), "\(name) (default \(value)) is not in buddymalloc.7")
        }
        let listed = try NSRegularExpression(pattern: #"^\\fB(BUDDY_[A-Z_]+)\\fR \(default"#, options: .anchorsMatchLines)
        let names = listed.matches(in: page, range: NSRange(page.startIndex..., in: page)).map { String(page[Range($0.range(at: 1), in: page)!]) }
        #expect(names == options.map(\.0))
    }

    /// buddy-report(1) has a section for every command and names every option, as the tool
    /// describes itself (swift-argument-parser's --experimental-dump-help).
    @Test(.enabled(if: Support.tool != nil))
    func everyCommandAndOption() throws {
        let help = try Support.runTool(["--experimental-dump-help"])
        #expect(help.status == 0)
        let root = try #require(try JSONSerialization.jsonObject(with: Data(help.stdout.utf8)) as? [String: Any])
        let command = try #require(root["command"] as? [String: Any])
        let subcommands = try #require(command["subcommands"] as? [[String: Any]]).filter { $0["commandName"] as? String != "help" }
        #expect(subcommands.count >= 9)
        let page = try Self.source("buddy-report.1")
        for sub in subcommands {
            let name = try #require(sub["commandName"] as? String)
            #expect(page.contains("\n.SS \(name)\n"), "no section for \(name)")
            #expect(page.contains("\\fBbuddy\\-report \(name)\\fP") || name == "help", "\(name) is not in the synopsis")
            for argument in sub["arguments"] as? [[String: Any]] ?? [] {
                for n in argument["names"] as? [[String: Any]] ?? [] where n["kind"] as? String == "long" {
                    let option = "\\-\\-" + Self.roff(n["name"] as! String)
                    #expect(page.contains(option) || n["name"] as? String == "help", "\(name): --\(n["name"]!) is not in buddy-report.1")
                }
            }
        }
    }

    /// libBuddyMalloc(3) names every function buddy.h and buddy_stats.h declare, in NAME and SYNOPSIS.
    @Test func everyFunction() throws {
        let include = Support.packageRoot.appendingPathComponent("Sources/BuddyMallocAPI/include")
        var functions: [String] = []
        let declaration = try NSRegularExpression(pattern: #"^[a-z_ ]+[ *]+(buddy_[a-z_]+)\("#, options: .anchorsMatchLines)
        for header in ["buddy.h", "buddy_stats.h"] {
            let text = try String(contentsOf: include.appendingPathComponent(header), encoding: .utf8)
            functions += declaration.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { String(text[Range($0.range(at: 1), in: text)!]) }
        }
        #expect(functions.count >= 15, "\(functions)")
        let page = try Self.source("libBuddyMalloc.3")
        let name = page.components(separatedBy: ".SH NAME\n")[1].components(separatedBy: ".SH")[0]
        let synopsis = page.components(separatedBy: ".SH SYNOPSIS\n")[1].components(separatedBy: ".SH")[0]
        for f in functions {
            #expect(name.contains(f), "\(f) is not in NAME")
            #expect(synopsis.contains(" " + f + "(") || synopsis.contains("*" + f + "("), "\(f) is not in SYNOPSIS")
        }
    }

    /// tools/install.sh puts them in PREFIX/share/man/manN, where man finds them.
    @Test(.enabled(if: Support.command("man") != nil))
    func installed() throws {
        let directory = try Support.temporaryDirectory()
        let build = directory.appendingPathComponent("build")
        try FileManager.default.createDirectory(at: build, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: build.appendingPathComponent("libBuddyMalloc.so").path, contents: Data())
        let prefix = directory.appendingPathComponent("prefix")
        let install = try Support.run(["bash", Support.packageRoot.appendingPathComponent("tools/install.sh").path, prefix.path, build.path])
        #expect(install.status == 0, "\(install.output)")
        for (section, page) in [("1", "buddy-report"), ("3", "libBuddyMalloc"), ("7", "buddymalloc")] {
            #expect(FileManager.default.fileExists(atPath: prefix.appendingPathComponent("share/man/man\(section)/\(page).\(section)").path))
            let found = try Support.run(["man", "-M", prefix.appendingPathComponent("share/man").path, section, page],
                                        environment: ["MANWIDTH": "80", "MANPAGER": "cat", "PAGER": "cat"])
            #expect(found.status == 0 && found.stdout.hasPrefix(page.uppercased() + "(" + section + ")"), "\(page): \(found.output.prefix(200))")
        }
    }
}
