import Foundation
import Testing
@testable import BuddyEngine
@testable import BuddyMallocCore

/// The README is the manual: its options table must say what the code's table says.
@Suite struct ReadmeTests {
    static let readme: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return (try? String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)) ?? ""
    }()

    /// The row the README must hold for an option.
    static func row(_ option: Option) -> String {
        "| `\(option.variable)` | `\(option.defaultValue)` | \(option.meaning) |"
    }

    @Test(arguments: Option.allCases)
    func optionIsDocumented(_ option: Option) {
        #expect(Self.readme.contains(Self.row(option)), "README.md lacks the row:\n\(Self.row(option))")
    }

    @Test func noUndocumentedOrStaleOptionRows() {
        let known = Set(Option.allCases.map { "\($0.variable)" })
        let rows = Self.readme.split(separator: "\n").filter { $0.hasPrefix("| `BUDDY_") }
        #expect(rows.count == known.count)
        for row in rows {
            let name = row.dropFirst(3).prefix { $0 != "`" }
            #expect(known.contains(String(name)), "README documents an unknown option \(name)")
        }
    }

    @Test func sizeFormatting() {
        func format(_ v: UInt64) -> String {
            var line = LineBuffer()
            line.append(bytes: v)
            return line.text
        }
        #expect(format(512) == "512B")
        #expect(format(1536) == "1.5K")
        #expect(format(1 << 20) == "1.0M")
        #expect(format(200 << 20) == "200M")
        #expect(format(3 << 30) == "3.0G")
    }
}
