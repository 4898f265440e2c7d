import CBuddySupport
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

    /// The table is the only place a default lives: each row's default goes through the row's
    /// own parser (the reader sets the defaults that way), and the parser refuses what is not a
    /// value of the row (what the reader then warns about, naming the row's default).
    @Test(arguments: Option.allCases)
    func defaultParsesAndGarbageDoesNot(_ option: Option) {
        var config = PoolConfig.mallocBase
        let saved = buddy_report_settings_get()!.pointee
        defer { buddy_report_settings_get()!.pointee = saved }
        if option.hasDefault {
            #expect(OptionReader.apply(option, option.defaultText, to: &config) == nil, "\(option.variable)'s default does not parse")
        }
        if case .report = option { return } // any path is a destination
        "x7q".withCString { garbage in
            #expect(OptionReader.apply(option, garbage, to: &config) != nil, "\(option.variable) accepts garbage")
        }
    }

    /// A program without BUDDY_* variables gets the table's defaults.
    @Test func theDefaultsAreTheTables() {
        let config = PoolConfig.process
        #expect(config.maxBlock == 8 << 20 && config.minBlock == 16 && config.initialSize == 8 << 20)
        #expect(config.slabs && !config.hardened && config.growthFactor == 2.0 && config.maxPoolSize == 0)
        #expect(config.releaseDelay == 1.0 && config.smallBlocksBelow == 2 << 10 && config.largeBlocksFrom == 32 << 10)
        let settings = buddy_report_settings_get()!.pointee
        #expect(settings.signal == 10 && settings.latency_period == 1024 && settings.interval_ns == 0)
    }

    @Test func sizeFormatting() {
        func format(_ v: UInt64) -> String {
            var line = TextBuffer()
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
