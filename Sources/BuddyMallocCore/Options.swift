import BuddyEngine
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

    public var meaning: StaticString {
        switch self {
        case .minBlock: return "Smallest block in bytes, a power of two >= 16. Every pointer is aligned to it."
        case .maxBlock: return "Largest block, a power of two <= 1G. Larger requests get a mapping of their own (whole pages)."
        case .initialSize: return "Bytes mapped for the first segment at the first call, rounded up to a power of two and to the smallest segment (64K, or the maximum block if larger; a warning says so); 0: none until needed."
        case .growthFactor: return "When the pool is full, a new segment grows it from S to about S x factor bytes (1.0 to 64)."
        case .maxPoolSize: return "Upper bound on the pool's segments, 0 (no limit) or at least the smallest segment (64K, or the maximum block if larger). A request that would pass it first gets back the thread's cached blocks and the empty slabs, then fails with ENOMEM."
        case .releaseDelay: return "Seconds between passes that give free blocks of 64K or more (their pages, beyond 4M kept) and empty segments back to the OS (0: at once)."
        case .slabs: return "on: requests of 1K to 32K get slab objects of 9/8 ... 15/8 of a power of two (less memory than a block). off: blocks only."
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

/// Reads the options from the environment once, at the first call: without allocating, and
/// with a one-line warning (never a crash) for a value it cannot use.
enum OptionReader {
    static func processConfig() -> PoolConfig {
        let defaults = PoolConfig.process
        var config = defaults
        // Each value is checked on its own, so a bad one names itself and leaves the others.
        if case let (v, text)? = size(.minBlock) {
            if v >= 16 && v <= 1 << 30 && v & (v - 1) == 0 { config.minBlock = v }
            else { warn(.minBlock, text, "is not a power of two between 16 and 1G") }
        }
        if case let (v, text)? = size(.maxBlock) {
            if v >= 16 && v <= 1 << 30 && v & (v - 1) == 0 { config.maxBlock = v }
            else { warn(.maxBlock, text, "is not a power of two between 16 and 1G") }
        }
        if config.minBlock > config.maxBlock {
            warn(.minBlock, value(.minBlock) ?? value(.maxBlock)!, "is larger than the maximum block")
            config.minBlock = defaults.minBlock
            config.maxBlock = max(config.maxBlock, defaults.minBlock)
        }
        if case let (v, _)? = size(.initialSize) { config.initialSize = v }
        if let v = value(.growthFactor) {
            if let f = parseDecimal(v), f >= 1.0, f <= 64.0 { config.growthFactor = f }
            else { warn(.growthFactor, v, "is not a number from 1.0 to 64") }
        }
        if case let (v, text)? = size(.maxPoolSize) {
            if v == 0 || v >= config.minSegment { config.maxPoolSize = v }
            else { warn(.maxPoolSize, text, "is below the smallest segment (64K, or the maximum block if larger)") }
        }
        if let v = value(.releaseDelay) {
            if let f = parseDecimal(v), f <= 86400 { config.releaseDelay = f }
            else { warn(.releaseDelay, v, "is not a number of seconds from 0 to 86400") }
        }
        if let v = value(.slabs) {
            if matches(v, "on") || matches(v, "1") { config.slabs = true }
            else if matches(v, "off") || matches(v, "0") { config.slabs = false }
            else { warn(.slabs, v, "is neither on nor off") }
        }
        if let v = value(.threadSafety) {
            if matches(v, "auto") { config.threadSafety = .automatic }
            else if matches(v, "always") { config.threadSafety = .always }
            else { warn(.threadSafety, v, "is neither auto nor always") }
        }
        if let v = value(.onError) {
            if matches(v, "abort") { config.errorStrategy = .abort }
            else if matches(v, "log") { config.errorStrategy = .log }
            else { warn(.onError, v, "is neither abort nor log") }
        }
        if let v = value(.harden) {
            if matches(v, "on") || matches(v, "1") { config.hardened = true }
            else if matches(v, "off") || matches(v, "0") { config.hardened = false }
            else { warn(.harden, v, "is neither on nor off") }
        }
        if let problem = BuddyEngine.problem(with: config) {
            var line = LineBuffer()
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
        readReportSettings()
        checkEnvironment(config)
        return config
    }

    static func value(_ option: Option) -> UnsafePointer<CChar>? {
        guard let v = buddy_os_getenv(UnsafeRawPointer(option.variable.utf8Start).assumingMemoryBound(to: CChar.self)),
              v[0] != 0 else { return nil }
        return v
    }

    static func size(_ option: Option) -> (Int, UnsafePointer<CChar>)? {
        guard let v = value(option) else { return nil }
        guard let n = parseSize(v) else {
            warn(option, v, "is not a size (digits with an optional K, M or G)")
            return nil
        }
        return (n, v)
    }

    static func warn(_ option: Option, _ value: UnsafePointer<CChar>, _ problem: StaticString) {
        guard !quiet else { return }
        var line = LineBuffer()
        line.append("buddy: ignoring ")
        line.append(option.variable)
        line.append(byte: 61)
        line.append(cString: value, limit: 40)
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
