import CBuddySupport

// When reports are written, and where (README, "The report"):
//
//   exit       the library's destructor (BUDDY_REPORT), after the program's own destructors;
//   signal     BUDDY_REPORT_SIGNAL (USR1 unless `none`): the handler (report_hooks.c) calls
//              buddy_report_on_signal, which writes the report at once when the interrupted
//              thread is outside the allocator and the pool lock is free (it only tries the lock,
//              naps and tries again a bounded number of times, never waits for it), and
//              otherwise leaves it pending: the next slow path of any thread (a refill, a flush,
//              a larger block), the interval thread, or the exit report writes it. Everything
//              the handler reaches is async-signal-safe: atomics, functions on POSIX's list,
//              and system calls of our own (the pool lock is buddy_mutex, a futex word, not a
//              pthread mutex); tools/check-malloc-path.py --signal-safe proves it (a test);
//   interval   BUDDY_REPORT_INTERVAL seconds: a thread started by the library's constructor;
//   api        buddy_report_write(fd, format).
//
// Destination: BUDDY_REPORT=stderr, or a path where %p becomes the pid. The exit report goes to
// the path itself; signal and interval reports to "<path>.<sequence>", each a complete document.
// Every file is written under a temporary name and renamed into place, so a reader never sees a
// partial report. One writer at a time (buddy_report_try_begin): they share the numbering.

/// A file path built on the stack (at most 511 bytes), NUL-terminated when handed to the OS.
struct PathBuffer {
    private var storage = zeroSinkChunk()
    private(set) var count = 0
    static let capacity = 511

    init() {}

    mutating func append(byte: UInt8) {
        guard count < PathBuffer.capacity else { return }
        let at = count
        withUnsafeMutableBytes(of: &storage) { $0[at] = byte; $0[at &+ 1] = 0 }
        count &+= 1
    }

    mutating func append(_ text: StaticString) {
        let start = text.utf8Start
        for i in 0..<text.utf8CodeUnitCount { append(byte: start[i]) }
    }

    mutating func append(decimal value: UInt64) {
        var divisor: UInt64 = 1
        while value / divisor >= 10 { divisor &*= 10 }
        while divisor > 0 {
            append(byte: UInt8(truncatingIfNeeded: 48 &+ (value / divisor) % 10))
            divisor /= 10
        }
    }

    /// BUDDY_REPORT's path with %p replaced by the pid.
    mutating func expand(_ target: UnsafePointer<CChar>) {
        var i = 0
        while target[i] != 0 && i < 400 {
            if target[i] == 37 && target[i + 1] == 112 { // "%p"
                append(decimal: UInt64(buddy_os_getpid()))
                i += 2
            } else {
                append(byte: UInt8(bitPattern: target[i]))
                i += 1
            }
        }
    }

    func open() -> Int32 {
        var copy = storage
        return withUnsafeMutableBytes(of: &copy) { buddy_os_open_report($0.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: CChar.self)) }
    }

    func unlink() {
        var copy = storage
        withUnsafeMutableBytes(of: &copy) { buddy_os_unlink($0.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: CChar.self)) }
    }

    /// Renames this file to `destination`; true on success.
    func rename(to destination: PathBuffer) -> Bool {
        var from = storage
        var to = destination.storage
        return withUnsafeMutableBytes(of: &from) { f in
            withUnsafeMutableBytes(of: &to) { t in
                buddy_os_rename(f.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: CChar.self),
                                t.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: CChar.self)) == 0
            }
        }
    }
}

enum ReportTriggers {
    /// Snapshots the process pool and writes the report where BUDDY_REPORT says. False when the
    /// lock could not be taken (`.attempt`): the caller keeps the request pending.
    static func writeReport(reason: ReportReason, locking: SnapshotLocking) -> Bool {
        guard let target = buddy_report_target_get(), let pool = ProcessPool.existing else { return true }
        var stats = buddy_stats()
        let taken = withUnsafeMutablePointer(to: &stats) { s in pool.snapshot(into: s, locking: locking) }
        guard taken else { return false }
        let sequence = buddy_report_next_sequence()
        let context = ReportContext(reason: reason, sequence: sequence, format: buddy_report_settings_get().pointee.format)
        if OptionReader.matches(target, "stderr") {
            var sink = ReportSink(fd: 2)
            withUnsafeMutablePointer(to: &stats) { s in Report.write(s, context, to: &sink) }
            return true
        }
        var path = PathBuffer()
        path.expand(target)
        if case .exit = reason {} else {
            path.append(byte: 46) // "."
            path.append(decimal: sequence)
        }
        var temporary = path
        temporary.append(".tmp")
        let fd = temporary.open()
        guard fd >= 0 else {
            var line = LineBuffer()
            line.append("buddy: cannot open the report file BUDDY_REPORT=")
            line.append(cString: target)
            line.append("; check that its folder exists and is writable\n")
            line.write(to: 2)
            return true
        }
        var sink = ReportSink(fd: fd)
        withUnsafeMutablePointer(to: &stats) { s in Report.write(s, context, to: &sink) }
        buddy_os_close(fd)
        if !temporary.rename(to: path) { temporary.unlink() }
        return true
    }

    /// Writes the reports the signal asked for, if this thread can now: it takes the writers'
    /// flag (or leaves them to the writer that holds it) and the pool lock as `locking` allows.
    static func servicePending(locking: SnapshotLocking = .wait) {
        guard buddy_report_try_begin() != 0 else { return }
        while buddy_report_pending() != 0 {
            guard buddy_report_is_shutting_down() == 0 else { break }
            var attempts = 0
            var written = writeReport(reason: .signal, locking: locking)
            // A signal handler: the lock holder is another thread (this one is outside the
            // allocator), about to release it. Nap (our own nanosleep system call) and retry,
            // 20 x 0.5 ms at most: the interrupted thread waits as long, and the holder may be
            // stopped itself (in a debugger), so never until it is done.
            while !written && attempts < 20 {
                buddy_os_nap(500_000)
                attempts &+= 1
                written = writeReport(reason: .signal, locking: locking)
            }
            guard written else { break } // still pending: a later slow path writes it
            _ = buddy_report_take_pending() // signals that arrived meanwhile: this report covers them
        }
        buddy_report_end()
    }

    /// Waits (a bounded time) for another writer to finish; true when this thread holds the flag.
    static func beginWaiting() -> Bool {
        var tries = 0
        while buddy_report_try_begin() == 0 {
            if tries == 4000 { return false } // 2 s: a writer stopped by fork or a crash
            buddy_os_nap(500_000)
            tries &+= 1
        }
        return true
    }
}

// MARK: - Entry points for the C hooks (report_hooks.c) and the API (buddy_stats.h)

/// The library's constructor: makes sure the pool exists, so that the options (and the report
/// settings the hooks read) are known.
@_cdecl("buddy_report_prepare")
public func buddy_report_prepare() {
    if buddy_thread_depth() != 0 { return }
    buddy_thread_enter()
    _ = ProcessPool.get()
    buddy_thread_leave()
}

/// BUDDY_REPORT_SIGNAL's handler body (async-signal-safe: atomics, the pool lock's trylock, naps,
/// functions on POSIX's list, our own system calls; check-malloc-path.py --signal-safe).
@_cdecl("buddy_report_on_signal")
public func buddy_report_on_signal() {
    buddy_report_add_pending()
    // Inside the allocator, this thread may hold the pool lock or be mid-update: leave it to the
    // next safe point.
    if buddy_thread_depth() != 0 { return }
    buddy_thread_enter()
    ReportTriggers.servicePending(locking: .attempt)
    buddy_thread_leave()
}

/// The interval thread's tick (and its check for pending signal reports, `interval` false).
@_cdecl("buddy_report_on_interval")
public func buddy_report_on_interval(_ interval: Bool) {
    guard buddy_report_is_shutting_down() == 0 else { return }
    buddy_thread_enter()
    if interval, buddy_report_try_begin() != 0 {
        _ = ReportTriggers.writeReport(reason: .interval, locking: .wait)
        buddy_report_end()
    }
    if buddy_report_pending() != 0 { ReportTriggers.servicePending(locking: .wait) }
    buddy_thread_leave()
}

/// Writes the exit report if BUDDY_REPORT asked for one. Called by the library's destructor.
@_cdecl("buddy_exit_report")
public func buddy_exit_report() {
    guard buddy_report_target_get() != nil, ProcessPool.existing != nil else { return }
    buddy_report_set_shutting_down()
    buddy_thread_enter()
    defer { buddy_thread_leave() }
    let began = ReportTriggers.beginWaiting()
    _ = ReportTriggers.writeReport(reason: .exit, locking: .wait)
    if began { buddy_report_end() }
}

/// buddy_stats_get (buddy_stats.h): a snapshot into the caller's struct, at most its `size`.
@_cdecl("buddy_stats_get")
public func buddy_stats_get(_ out: UnsafeMutablePointer<buddy_stats>?) -> Int32 {
    guard let out else { return -1 }
    let full = MemoryLayout<buddy_stats>.size
    let wanted = out.pointee.size == 0 ? full : Int(out.pointee.size)
    guard wanted >= 8, let pool = ProcessPool.existing else { return -1 }
    // Inside the allocator (a program's signal handler), only try the lock.
    let locking: SnapshotLocking = buddy_thread_depth() == 0 ? .wait : .attempt
    buddy_thread_enter()
    defer { buddy_thread_leave() }
    var stats = buddy_stats()
    let taken = withUnsafeMutablePointer(to: &stats) { s in pool.snapshot(into: s, locking: locking) }
    guard taken else { return -1 }
    let n = min(wanted, full)
    stats.size = UInt32(n)
    withUnsafeBytes(of: &stats) { raw in
        UnsafeMutableRawPointer(out).copyMemory(from: raw.baseAddress.unsafelyUnwrapped, byteCount: n)
    }
    return 0
}

/// buddy_report_write (buddy_stats.h): the report, in either format, to any descriptor.
@_cdecl("buddy_report_write")
public func buddy_report_write(_ fd: Int32, _ format: Int32) -> Int32 {
    guard format == Int32(BUDDY_REPORT_TEXT.rawValue) || format == Int32(BUDDY_REPORT_JSON.rawValue),
          let pool = ProcessPool.existing else { return -1 }
    let locking: SnapshotLocking = buddy_thread_depth() == 0 ? .wait : .attempt
    buddy_thread_enter()
    defer { buddy_thread_leave() }
    var stats = buddy_stats()
    let taken = withUnsafeMutablePointer(to: &stats) { s in pool.snapshot(into: s, locking: locking) }
    guard taken else { return -1 }
    let context = ReportContext(reason: .api, sequence: buddy_report_next_sequence(), format: format)
    var sink = ReportSink(fd: fd)
    withUnsafeMutablePointer(to: &stats) { s in Report.write(s, context, to: &sink) }
    return 0
}

// MARK: - The report options (Options.swift's table lists them)

extension OptionReader {
    /// Reads BUDDY_REPORT_FORMAT, BUDDY_REPORT_SIGNAL, BUDDY_REPORT_INTERVAL,
    /// BUDDY_PROFILE_SAMPLE and BUDDY_STATS_LATENCY into the C settings the hooks read.
    static func readReportSettings() {
        let settings = buddy_report_settings_get()!
        if let v = value(.reportFormat) {
            if matches(v, "text") { settings.pointee.format = Int32(BUDDY_REPORT_TEXT.rawValue) }
            else if matches(v, "json") { settings.pointee.format = Int32(BUDDY_REPORT_JSON.rawValue) }
            else { warn(.reportFormat, v, "is neither text nor json") }
        }
        settings.pointee.signal = 10 // SIGUSR1
        if let v = value(.reportSignal) {
            if let number = signalNumber(v) { settings.pointee.signal = number }
            else { warn(.reportSignal, v, "is not USR1, USR2, HUP, WINCH, a signal number or none") }
        }
        if let v = value(.reportInterval) {
            if let seconds = parseDecimal(v), seconds <= 86400 * 365 {
                settings.pointee.interval_ns = seconds > 0 ? UInt64(max(seconds, 0.01) * 1e9) : 0
            } else { warn(.reportInterval, v, "is not a number of seconds") }
        }
        if case let (bytes, _)? = size(.profileSample) { settings.pointee.profile_sample = UInt64(bytes) }
        if let v = value(.statsLatency) {
            if matches(v, "sampled") { settings.pointee.latency_mode = Int32(BUDDY_LATENCY_SAMPLED.rawValue) }
            else if let period = sampledPeriod(v) {
                settings.pointee.latency_mode = Int32(BUDDY_LATENCY_SAMPLED.rawValue)
                settings.pointee.latency_period = Int32(period)
            }
            else if matches(v, "exact") { settings.pointee.latency_mode = Int32(BUDDY_LATENCY_EXACT.rawValue) }
            else if matches(v, "off") { settings.pointee.latency_mode = Int32(BUDDY_LATENCY_OFF.rawValue) }
            else { warn(.statsLatency, v, "is not sampled, sampled:N (N from 1 to 1048576), exact or off") }
        }
    }

    /// "sampled:N" -> N, for N in 1 ... 2^20 (one malloc in N timed).
    static func sampledPeriod(_ v: UnsafePointer<CChar>) -> Int? {
        let prefix: StaticString = "sampled:"
        let p = prefix.utf8Start
        for i in 0..<prefix.utf8CodeUnitCount where UInt8(bitPattern: v[i]) | 0x20 != p[i] | 0x20 { return nil }
        guard let n = parseSize(v + prefix.utf8CodeUnitCount), n >= 1, n <= 1 << 20 else { return nil }
        return n
    }

    /// "USR1", "SIGUSR1", "usr2", "HUP", "WINCH", "12", "none" -> the signal number (0: none).
    static func signalNumber(_ v: UnsafePointer<CChar>) -> Int32? {
        var s = v
        if (UInt8(bitPattern: s[0]) | 0x20) == 115, (UInt8(bitPattern: s[1]) | 0x20) == 105, (UInt8(bitPattern: s[2]) | 0x20) == 103 {
            s += 3 // "SIG"
        }
        if matches(s, "none") { return 0 }
        if matches(s, "usr1") { return 10 }
        if matches(s, "usr2") { return 12 }
        if matches(s, "hup") { return 1 }
        if matches(s, "winch") { return 28 }
        if let n = parseSize(s), n >= 1, n <= 64, n != 9, n != 19 { return Int32(n) } // not KILL, STOP
        return nil
    }
}
