#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
import CBuddySupport

/// The options table: every environment variable the allocator reads, its default as the README
/// shows it, and its meaning. The README's table is checked against this one by the tests.
public enum Option: Int, CaseIterable, Sendable {
    case minBlock, maxBlock, initialSize, growthFactor, maxPoolSize, releaseDelay, slabs, threadSafety, onError, report
    case reportFormat, reportSignal, reportInterval, profileSample, statsLatency, harden

    public var variable: StaticString {
        switch self {
        case .minBlock: return "BUDDY_MIN_BLOCK"
        case .maxBlock: return "BUDDY_MAX_BLOCK"
        case .initialSize: return "BUDDY_INITIAL_SIZE"
        case .growthFactor: return "BUDDY_GROWTH_FACTOR"
        case .maxPoolSize: return "BUDDY_MAX_POOL"
        case .releaseDelay: return "BUDDY_RELEASE_DELAY"
        case .slabs: return "BUDDY_SLABS"
        case .threadSafety: return "BUDDY_THREAD_SAFETY"
        case .onError: return "BUDDY_ON_ERROR"
        case .report: return "BUDDY_REPORT"
        case .reportFormat: return "BUDDY_REPORT_FORMAT"
        case .reportSignal: return "BUDDY_REPORT_SIGNAL"
        case .reportInterval: return "BUDDY_REPORT_INTERVAL"
        case .profileSample: return "BUDDY_PROFILE_SAMPLE"
        case .statsLatency: return "BUDDY_STATS_LATENCY"
        case .harden: return "BUDDY_HARDEN"
        }
    }

    public var defaultValue: StaticString {
        switch self {
        case .minBlock: return "16"
        // Blocks up to 8 MiB: buffers of 1 to 8 MiB are common (I/O, images, big arrays); below
        // glibc's largest mmap threshold (32 MiB) they would otherwise cost an mmap, a page
        // fault per page and an munmap each time (the `large` benchmark: 0.57 s with 1 MiB,
        // 0.08 s with 8 MiB). A block's unused tail costs address space, not memory.
        case .maxBlock: return "8M"
        case .initialSize: return "8M"
        case .growthFactor: return "2.0"
        case .maxPoolSize: return "0"
        case .releaseDelay: return "1.0"
        case .slabs: return "on"
        case .threadSafety: return "auto"
        case .onError: return "abort"
        case .report: return "(unset)"
        case .reportFormat: return "text"
        case .reportSignal: return "USR1"
        case .reportInterval: return "0"
        case .profileSample: return "0"
        case .statsLatency: return "sampled"
        case .harden: return "off"
        }
    }

    /// The default as its parser reads it (the literal's bytes end with a NUL). Not inlined:
    /// in the readers' loops, the switch's jump table would be hoisted out of sight of
    /// tools/check-malloc-path.py's jump-table recognizer.
    var defaultText: UnsafePointer<CChar> {
        @inline(never) get { UnsafeRawPointer(defaultValue.utf8Start).assumingMemoryBound(to: CChar.self) }
    }

    /// Whether the default is a value (BUDDY_REPORT's is the absence of one).
    var hasDefault: Bool {
        if case .report = self { return false }
        return true
    }

    /// Row `index` of the table, nil past its end: how the readers walk it (no array inside
    /// malloc). Out of line: init(rawValue:) is a switch whose jump table, inlined into a loop,
    /// would be hoisted out of sight of tools/check-malloc-path.py.
    @inline(never) static func row(_ index: Int) -> Option? { Option(rawValue: index) }

    /// "sampled" times one malloc in this many (the README's row says so).
    static let defaultLatencyPeriod = 1024

    public var meaning: StaticString {
        switch self {
        case .minBlock: return "Smallest block in bytes, a power of two >= 16. Every pointer is aligned to it."
        case .maxBlock: return "Largest block, a power of two <= 1G. Larger requests get a mapping of their own (whole pages)."
        case .initialSize: return "Bytes mapped for the first segment at the first call, rounded up to a power of two and to the smallest segment (64K, or the maximum block if larger; a warning says so); 0: none until needed."
        case .growthFactor: return "When the pool is full, a new segment grows it from S to about S x factor bytes (1.0 to 64)."
        case .maxPoolSize: return "Upper bound on the pool's segments, 0 (no limit) or at least the smallest segment (64K, or the maximum block if larger). A request that would pass it first gets back the thread's cached blocks and the empty slabs, then fails with ENOMEM."
        case .releaseDelay: return "Seconds between passes that give free blocks of 64K or more (their pages, beyond 4M kept) and empty segments back to the OS (0: at once)."
        case .slabs: return "on: requests of 1K to 32K get slab objects of 9/8 ... 15/8 of a power of two, and requests under 1K objects of 48, 96, 192, 320, 384, 640, 768 or 896 bytes where one is tighter than a block (less memory than a block). off: blocks only."
        case .threadSafety: return "auto: lock, but not while the process has one thread. always: lock on every call."
        case .onError: return "On an invalid or double free: abort (report, then abort like glibc) or log (report, count, continue)."
        case .report: return "Write a report at exit: stderr, or a path (%p becomes the pid): a file (replaced whole), a symlink (its target), /dev/fd/N, a FIFO or a device (written in place)."
        case .reportFormat: return "The report's format: text (tables for people) or json (the versioned format tools read)."
        case .reportSignal: return "With BUDDY_REPORT: the signal that writes a report while the program runs (USR1, USR2, HUP, WINCH, a number), or none."
        case .reportInterval: return "With BUDDY_REPORT: also write a report every this many seconds, from a background thread (0: never)."
        case .profileSample: return "Allocation-site profile: one allocation sampled per this many bytes, its call stack kept while it lives (e.g. 1M; 0: off)."
        case .statsLatency: return "Latency statistics: sampled (one malloc in 1024 timed, and the free after it), sampled:N (one in N), exact (every call timed), or off."
        case .harden: return "on: catch more misuse, slower: a canary after every block (checked at free), freed blocks filled and kept in a quarantine (checked when they leave it, and at exit), no thread caches. See Bad input."
        }
    }
}

extension PoolConfig {
    /// What malloc's pool sets that no option does: blocks under 2 KiB, 2 to 16 KiB, and 32 KiB up
    /// come from separate segments (measured on the realloc benchmark: peak RSS 224M -> 66M,
    /// glibc 45M; 1 KiB/64 KiB gave 73M).
    static var mallocBase: PoolConfig {
        var config = PoolConfig()
        config.smallBlocksBelow = 2 << 10
        config.largeBlocksFrom = 32 << 10
        return config
    }

    /// malloc's pool with every option at its default (the table's), as a program without
    /// BUDDY_* variables gets it. (Also sets the report settings to their defaults.)
    public static var process: PoolConfig {
        var config = mallocBase
        OptionReader.applyDefaults(to: &config)
        return config
    }
}

/// Reads the options from the environment once, at the first call: without allocating, and
/// with a one-line warning (never a crash) for a value it cannot use.
///
/// Each row of the table is applied by one parser (`apply`), which is also how the defaults are
/// set: every row's default text goes through its parser first, so a default lives only in the
/// table (and in the README row checked against it). Then the environment's values go through
/// the same parsers; one that does not parse names itself and leaves the default.
enum OptionReader {
    static func processConfig() -> PoolConfig {
        var config = PoolConfig.mallocBase
        applyDefaults(to: &config)
        let defaults = config
        var raw = 0
        while let option = Option.row(raw) {
            if let text = value(option), let problem = apply(option, text, to: &config) { warn(option, text, problem) }
            raw &+= 1
        }
        if config.minBlock > config.maxBlock {
            warn(.minBlock, value(.minBlock) ?? value(.maxBlock)!, "is larger than the maximum block")
            config.minBlock = defaults.minBlock
            config.maxBlock = max(config.maxBlock, defaults.minBlock)
        }
        if let problem = BuddyEngine.problem(with: config) {
            var line = TextBuffer()
            line.append("buddy: BUDDY_* settings rejected: ")
            line.append(problem)
            line.append("; using the defaults\n")
            if !quiet { emit(line) }
            config = defaults
        }
        // The first segment as the engine will map it (a power of two, at least the smallest
        // segment), so that the report shows what happened (checkEnvironment says why it differs).
        if config.initialSize > 0 {
            config.initialSize = roundUpToPowerOfTwo(max(config.initialSize, config.minSegment))
        }
        buddy_report_target_set(value(.report))
        checkEnvironment(config)
        return config
    }

    /// Parses `text` as `option`'s value into `config` (the pool's options) or the report
    /// settings (the report's); nil when it parsed, else what is wrong with it (config unchanged).
    /// Out of line: its switch is a jump table tools/check-malloc-path.py resolves only where
    /// it stays in its own function.
    @inline(never)
    static func apply(_ option: Option, _ text: UnsafePointer<CChar>, to config: inout PoolConfig) -> StaticString? {
        let settings = buddy_report_settings_get()!
        switch option {
        case .minBlock, .maxBlock:
            guard let v = parseSize(text) else { return notASize }
            guard v >= 16 && v <= 1 << 30 && v & (v - 1) == 0 else { return "is not a power of two between 16 and 1G" }
            if case .minBlock = option { config.minBlock = v } else { config.maxBlock = v }
        case .initialSize:
            guard let v = parseSize(text) else { return notASize }
            config.initialSize = v
        case .growthFactor:
            guard let f = parseDecimal(text), f >= 1.0, f <= 64.0 else { return "is not a number from 1.0 to 64" }
            config.growthFactor = f
        case .maxPoolSize:
            guard let v = parseSize(text) else { return notASize }
            guard v == 0 || v >= config.minSegment else { return "is below the smallest segment (64K, or the maximum block if larger)" }
            config.maxPoolSize = v
        case .releaseDelay:
            guard let f = parseDecimal(text), f <= 86400 else { return "is not a number of seconds from 0 to 86400" }
            config.releaseDelay = f
        case .slabs, .harden:
            let on: Bool
            if matches(text, "on") || matches(text, "1") { on = true }
            else if matches(text, "off") || matches(text, "0") { on = false }
            else { return "is neither on nor off" }
            if case .slabs = option { config.slabs = on } else { config.hardened = on }
        case .threadSafety:
            if matches(text, "auto") { config.threadSafety = .automatic }
            else if matches(text, "always") { config.threadSafety = .always }
            else { return "is neither auto nor always" }
        case .onError:
            if matches(text, "abort") { config.errorStrategy = .abort }
            else if matches(text, "log") { config.errorStrategy = .log }
            else { return "is neither abort nor log" }
        case .report:
            break // a destination, resolved when a report is written (report_destination.c)
        case .reportFormat:
            if matches(text, "text") { settings.pointee.format = Int32(BUDDY_REPORT_TEXT.rawValue) }
            else if matches(text, "json") { settings.pointee.format = Int32(BUDDY_REPORT_JSON.rawValue) }
            else { return "is neither text nor json" }
        case .reportSignal:
            guard let number = signalNumber(text) else { return "is not USR1, USR2, HUP, WINCH, a signal number or none" }
            settings.pointee.signal = number
        case .reportInterval:
            guard let seconds = parseDecimal(text), seconds <= 86400 * 365 else { return "is not a number of seconds" }
            settings.pointee.interval_ns = seconds > 0 ? UInt64(max(seconds, 0.01) * 1e9) : 0
        case .profileSample:
            guard let v = parseSize(text) else { return notASize }
            settings.pointee.profile_sample = UInt64(v)
        case .statsLatency:
            if matches(text, "sampled") {
                settings.pointee.latency_mode = Int32(BUDDY_LATENCY_SAMPLED.rawValue)
                settings.pointee.latency_period = Int32(Option.defaultLatencyPeriod)
            } else if let period = sampledPeriod(text) {
                settings.pointee.latency_mode = Int32(BUDDY_LATENCY_SAMPLED.rawValue)
                settings.pointee.latency_period = Int32(period)
            } else if matches(text, "exact") { settings.pointee.latency_mode = Int32(BUDDY_LATENCY_EXACT.rawValue) }
            else if matches(text, "off") { settings.pointee.latency_mode = Int32(BUDDY_LATENCY_OFF.rawValue) }
            else { return "is not sampled, sampled:N (N from 1 to 1048576), exact or off" }
        }
        return nil
    }

    /// Every row's default, through its parser (a default that does not parse is a bug: fatal).
    static func applyDefaults(to config: inout PoolConfig) {
        var raw = 0
        while let option = Option.row(raw) {
            if option.hasDefault, let problem = apply(option, option.defaultText, to: &config) { buddyFatal(problem) }
            raw &+= 1
        }
    }

    /// `BUDDY_NAME=value` as the user wrote it (the value cut at 40 bytes), in a warning.
    static func appendSetting(_ line: inout TextBuffer, _ option: Option, _ value: UnsafePointer<CChar>) {
        line.append(option.variable)
        line.append(byte: 61)
        line.append(cString: value, limit: 40)
    }

    static let notASize: StaticString = "is not a size (digits with an optional K, M or G)"

    /// The variable's value when it is set and not empty. (Out of line: see Option.defaultText.)
    @inline(never)
    static func value(_ option: Option) -> UnsafePointer<CChar>? {
        guard let v = buddy_os_getenv(UnsafeRawPointer(option.variable.utf8Start).assumingMemoryBound(to: CChar.self)),
              v[0] != 0 else { return nil }
        return v
    }

    static func size(_ option: Option) -> (Int, UnsafePointer<CChar>)? {
        guard let v = value(option) else { return nil }
        guard let n = parseSize(v) else {
            warn(option, v, notASize)
            return nil
        }
        return (n, v)
    }

    static func warn(_ option: Option, _ value: UnsafePointer<CChar>, _ problem: StaticString) {
        guard !quiet else { return }
        var line = TextBuffer()
        line.append("buddy: ignoring ")
        appendSetting(&line, option, value)
        line.append(": it ")
        line.append(problem)
        line.append("; using the default ")
        line.append(option.defaultValue)
        line.append(byte: 10)
        emit(line)
    }

    /// `123`, `64K`, `1M`, `2G` (also `KB`/`KiB`, any case) -> bytes; nil when malformed or huge.
    static func parseSize(_ s: UnsafePointer<CChar>) -> Int? {
        var i = 0
        var n = 0
        while s[i] >= 48 && s[i] <= 57 {
            guard n < (1 << 50) else { return nil }
            n = n * 10 + Int(s[i] - 48)
            i += 1
        }
        if i == 0 { return nil }
        var shift = 0
        switch s[i] | 0x20 {
        case 107: shift = 10 // k
        case 109: shift = 20 // m
        case 103: shift = 30 // g
        default: break
        }
        if shift != 0 {
            i += 1
            if s[i] | 0x20 == 105 { i += 1 } // i
            if s[i] | 0x20 == 98 { i += 1 }  // b
        } else if s[i] | 0x20 == 98 {
            i += 1
        }
        guard s[i] == 0, n <= (Int.max >> shift) else { return nil }
        return n << shift
    }

    /// `2`, `2.0`, `1.25` -> the number; nil when malformed.
    static func parseDecimal(_ s: UnsafePointer<CChar>) -> Double? {
        var i = 0
        var value = 0.0
        var digits = 0
        while s[i] >= 48 && s[i] <= 57 { value = value * 10 + Double(s[i] - 48); i += 1; digits += 1 }
        if s[i] == 46 {
            i += 1
            var scale = 0.1
            while s[i] >= 48 && s[i] <= 57 { value += Double(s[i] - 48) * scale; scale /= 10; i += 1; digits += 1 }
        }
        guard digits > 0, digits < 18, s[i] == 0 else { return nil }
        return value
    }

    static func matches(_ s: UnsafePointer<CChar>, _ word: StaticString) -> Bool {
        let w = word.utf8Start
        for i in 0..<word.utf8CodeUnitCount where UInt8(bitPattern: s[i]) | 0x20 != w[i] | 0x20 { return false }
        return s[word.utf8CodeUnitCount] == 0
    }
}
