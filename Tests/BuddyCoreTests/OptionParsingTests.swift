import Testing
@testable import BuddyMallocCore

@Suite struct OptionParsingTests {
    func parse(_ text: String) -> Int? { text.withCString { OptionReader.parseSize($0) } }

    @Test func sizes() {
        #expect(parse("16") == 16)
        #expect(parse("64K") == 65536)
        #expect(parse("64kb") == 65536)
        #expect(parse("1M") == 1 << 20)
        #expect(parse("2GiB") == 2 << 30)
        #expect(parse("0") == 0)
        #expect(parse("") == nil)
        #expect(parse("abc") == nil)
        #expect(parse("12Q") == nil)
        #expect(parse("-5") == nil)
        #expect(parse("99999999999999999999") == nil)
    }

    @Test func decimalsAndWords() {
        #expect("2.0".withCString { OptionReader.parseDecimal($0) } == 2.0)
        #expect("1.5".withCString { OptionReader.parseDecimal($0) } == 1.5)
        #expect("3".withCString { OptionReader.parseDecimal($0) } == 3.0)
        #expect("zero".withCString { OptionReader.parseDecimal($0) } == nil)
        #expect("1.5x".withCString { OptionReader.parseDecimal($0) } == nil)
        #expect("LOG".withCString { OptionReader.matches($0, "log") })
        #expect(!"logs".withCString { OptionReader.matches($0, "log") })
        #expect(!"lo".withCString { OptionReader.matches($0, "log") })
    }
}
