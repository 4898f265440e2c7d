#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
import CBuddySupport

// What the options table cannot say about one value alone: names that are not options (a
// misspelling is otherwise ignored in silence), values that only matter with BUDDY_REPORT, and a
// first segment the maximum block makes larger than asked. Each warning is printed once per
// process tree: after any warning the library's constructor sets BUDDY_WARNED=1 (setenv
// allocates, so not here, inside the first malloc), and processes that inherit it stay quiet.
// Everything here runs inside the first malloc: no allocation, no Swift runtime.

extension OptionReader {
    /// Environment names that start with BUDDY_ but are not options: the marker above, and the
    /// variables of the project's tools (buddy-report's BUDDY_LIB, the test installer's).
    static let toolVariables: (StaticString, StaticString, StaticString) = ("BUDDY_WARNED", "BUDDY_LIB", "BUDDY_TEST_JIT")

    /// Whether a parent process printed the option warnings already (BUDDY_WARNED is set).
    static var quiet: Bool { buddy_os_getenv("BUDDY_WARNED") != nil }

    /// Every check of this file, after the options were read into `config`.
    static func checkEnvironment(_ config: PoolConfig) {
        guard !quiet else { return }
        warnUnknownNames()
        warnReportDependents()
        // (parseSize, not size(): a malformed value was reported already.)
        if let text = value(.initialSize), let asked = parseSize(text), asked > 0, asked != config.initialSize {
            var line = TextBuffer()
            line.append("buddy: BUDDY_INITIAL_SIZE=")
            line.append(cString: text, limit: 40)
            if asked < config.minSegment {
                line.append(" is below the smallest segment (the maximum block, or 64K): the first segment is ")
            } else {
                line.append(" is not a power of two: the first segment is ")
            }
            line.append(bytes: UInt64(config.initialSize))
            line.append(byte: 10)
            emit(line)
        }
    }

    /// Prints a warning line and remembers that one was printed (see BUDDY_WARNED).
    static func emit(_ line: TextBuffer) {
        buddy_options_set_warned()
        line.write(to: 2)
    }

    /// `BUDDY_MAXBLOCK=4M`: not an option. Names the option it most likely meant.
    static func warnUnknownNames() {
        guard let environment = buddy_os_environ() else { return }
        var i = 0
        while let entry = environment[i] {
            i &+= 1
            guard startsWith(entry, "BUDDY_"), !isOptionOrTool(entry) else { continue }
            var line = TextBuffer()
            line.append("buddy: ignoring ")
            var k = 0
            while entry[k] != 0 && entry[k] != 61 && k < 60 { line.append(byte: UInt8(bitPattern: entry[k])); k &+= 1 }
            line.append(": not an option")
            if let guess = closestOption(to: entry) {
                line.append("; did you mean ")
                line.append(guess.variable)
                line.append(byte: 63) // ?
            } else {
                line.append(" (the README's Options section lists them)")
            }
            line.append(byte: 10)
            emit(line)
        }
    }

    /// Options that only shape the reports BUDDY_REPORT asks for, set while it is not.
    static func warnReportDependents() {
        guard value(.report) == nil else { return }
        warnNoReport(.reportFormat)
        warnNoReport(.reportSignal)
        warnNoReport(.reportInterval)
        warnNoReport(.profileSample)
    }

    @inline(never)
    static func warnNoReport(_ o: Option) {
        guard let v = value(o) else { return }
        var line = TextBuffer()
        line.append("buddy: ")
        appendSetting(&line, o, v)
        line.append(" has no effect without BUDDY_REPORT (set BUDDY_REPORT=stderr or a file path")
        // (`if case`, not ==: Equatable's == is a generic call the debug build does not specialise.)
        if case .profileSample = o { line.append(", or call buddy_report_write)\n") } else { line.append(")\n") }
        emit(line)
    }

    // MARK: Names

    /// `option.variable`, out of line: in a loop the compiler hoists the switch's jump-table
    /// address out of sight of tools/check-malloc-path.py, which then cannot prove the jump local.
    @inline(never)
    static func name(of option: Option) -> StaticString { option.variable }

    /// Whether `s` begins with `prefix` (case-sensitive, as the environment is).
    static func startsWith(_ s: UnsafePointer<CChar>, _ prefix: StaticString) -> Bool {
        let p = prefix.utf8Start
        for i in 0..<prefix.utf8CodeUnitCount where UInt8(bitPattern: s[i]) != p[i] { return false }
        return true
    }

    /// Whether the name of `entry` ("NAME=value") is exactly `name`.
    static func nameIs(_ entry: UnsafePointer<CChar>, _ name: StaticString) -> Bool {
        startsWith(entry, name) && entry[name.utf8CodeUnitCount] == 61 // "="
    }

    static func isOptionOrTool(_ entry: UnsafePointer<CChar>) -> Bool {
        if nameIs(entry, toolVariables.0) || nameIs(entry, toolVariables.1) || nameIs(entry, toolVariables.2) { return true }
        var option = 0
        while let o = Option(rawValue: option) {
            if nameIs(entry, name(of: o)) { return true }
            option &+= 1
        }
        return false
    }

    /// The option whose name is nearest `entry`'s, ignoring case and underscores, within an edit
    /// distance of 2 (MAXBLOCK, MAX_BLOCKS, MAX_BLCOK, max_pool), or nil.
    static func closestOption(to entry: UnsafePointer<CChar>) -> Option? {
        var best: Option? = nil
        var bestDistance = 3
        var option = 0
        while let o = Option(rawValue: option) {
            option &+= 1
            let d = looseDistance(entry, name(of: o), limit: bestDistance)
            if d < bestDistance { best = o; bestDistance = d }
        }
        return best
    }

    /// Levenshtein distance between the letters and digits of `entry`'s name and of `name`, both
    /// without "BUDDY_" and underscores, case folded; `limit` or more when it is at least that.
    /// Names of up to 31 such characters (longer ones: `limit`).
    static func looseDistance(_ entry: UnsafePointer<CChar>, _ name: StaticString, limit: Int) -> Int {
        var a = NameKey(), b = NameKey()
        guard a.load(entry, skip: 6), b.load(UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self), skip: 6) else { return limit }
        // Two rows of the dynamic programme, on the stack.
        var previous = NameKey.Row(), current = NameKey.Row()
        var j = 0
        while j <= b.count { previous[j] = UInt8(j); j &+= 1 }
        var i = 1
        while i <= a.count {
            current[0] = UInt8(i)
            var rowBest = i
            j = 1
            while j <= b.count {
                let substitution = Int(previous[j &- 1]) &+ (a[i &- 1] == b[j &- 1] ? 0 : 1)
                let d = min(min(substitution, Int(previous[j]) &+ 1), Int(current[j &- 1]) &+ 1)
                current[j] = UInt8(d)
                rowBest = min(rowBest, d)
                j &+= 1
            }
            if rowBest >= limit { return limit }
            swap(&previous, &current)
            i &+= 1
        }
        return Int(previous[b.count])
    }
}

/// An option name reduced for comparison: lower-case letters and digits, no underscores, at most
/// 31 of them, in a fixed buffer (nothing here may allocate).
struct NameKey {
    private var bytes = Row()
    private(set) var count = 0

    /// Reads the name part of `s` (up to "=" or the end) after `skip` bytes; false when too long.
    mutating func load(_ s: UnsafePointer<CChar>, skip: Int) -> Bool {
        var i = skip
        while s[i] != 0 && s[i] != 61 {
            let c = UInt8(bitPattern: s[i]) | 0x20
            i &+= 1
            guard c != 0x7f else { continue } // "_" | 0x20
            guard count < 31 else { return false }
            bytes[count] = c
            count &+= 1
        }
        return true
    }

    subscript(i: Int) -> UInt8 { bytes[i] }

    /// 32 bytes on the stack.
    struct Row {
        private var storage: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        subscript(i: Int) -> UInt8 {
            get { withUnsafeBytes(of: storage) { $0[i] } }
            set { withUnsafeMutableBytes(of: &storage) { $0[i] = newValue } }
        }
    }
}
