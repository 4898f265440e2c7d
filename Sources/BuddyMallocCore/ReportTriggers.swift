#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
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
// What the path names decides how (buddy_os_report_open, buddy_report_support.h): a regular file
// is written under a new temporary beside it and renamed into place, so a reader never sees a
// partial report; a symlink is followed (never replaced); /dev/fd/N is written to descriptor N;
// a FIFO or character device is written in place; anything else is refused with one line on
// stderr. A stream (stderr, /dev/fd/N, a FIFO, a device) gets each document whole: the writer
// holds a lock on it that other processes' writers respect (buddy_os_stream_lock). With stderr
// closed (coreutils close it at exit), the report goes to /tmp/buddy-report.<pid> instead. One
// writer at a time in a process (buddy_report_try_begin): they share the numbering.

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
            if buddy_os_descriptor_writable(2) != 0 {
                withUnsafeMutablePointer(to: &stats) { s in writeWhole(s, context, to: 2) }
                return true
            }
            // stderr is closed (coreutils close it in an atexit handler) or read-only: a file
            // in /tmp, whose name replaces whatever is there and is never followed.
            var path = TextBuffer()
            path.append("/tmp/buddy-report.")
            path.append(decimal: UInt64(buddy_os_getpid()))
            if case .exit = reason {} else {
                path.append(byte: 46) // "."
                path.append(decimal: sequence)
            }
            let written = withUnsafeMutablePointer(to: &stats) { s in
                writeFile(path, options: Int32(BUDDY_DEST_NO_FOLLOW), s, context, warnAbout: nil)
            }
            // Say where, on a terminal the program still has (not on a pipe or a file of its
            // output, which the note would corrupt).
            if written, buddy_os_descriptor_writable(1) != 0, buddy_os_is_terminal(1) != 0 {
                var line = TextBuffer()
                line.append("buddy: stderr is closed; the report is in /tmp/buddy-report.")
                line.append(decimal: UInt64(buddy_os_getpid()))
                if case .exit = reason {} else {
                    line.append(byte: 46)
                    line.append(decimal: sequence)
                }
                line.append(byte: 10)
                line.write(to: 1)
            }
            return true
        }
        var path = TextBuffer()
        expand(target, into: &path)
        if case .exit = reason {} else {
            path.append(byte: 46) // "."
            path.append(decimal: sequence)
        }
        _ = withUnsafeMutablePointer(to: &stats) { s in writeFile(path, options: 0, s, context, warnAbout: target) }
        return true
    }

    /// BUDDY_REPORT's path with %p replaced by the pid (at most 400 bytes of it).
    static func expand(_ target: UnsafePointer<CChar>, into path: inout TextBuffer) {
        var i = 0
        while target[i] != 0 && i < 400 {
            if target[i] == 37 && target[i + 1] == 112 { // "%p"
                path.append(decimal: UInt64(buddy_os_getpid()))
                i += 2
            } else {
                path.append(byte: UInt8(bitPattern: target[i]))
                i += 1
            }
        }
    }

    /// How long a writer waits for another process's document on the same stream.
    static let streamLockTimeout: UInt64 = 2_000_000_000

    /// Writes one document to a stream (stderr, /dev/fd/N, a FIFO, a device) while holding the
    /// stream's lock, so that the reports of a process tree sharing it never interleave.
    static func writeWhole(_ stats: UnsafeMutablePointer<buddy_stats>, _ context: ReportContext, to fd: Int32) {
        let locked = buddy_os_stream_lock(fd, streamLockTimeout) != 0
        var sink = TextBuffer(flushingTo: fd)
        Report.write(stats, context, to: &sink)
        if locked { buddy_os_stream_unlock(fd) }
    }

    /// Writes one report where `path` says (buddy_os_report_open); true when it was written.
    /// A refusal or failure is one line on stderr naming BUDDY_REPORT's value (`warnAbout`).
    static func writeFile(_ path: TextBuffer, options: Int32, _ stats: UnsafeMutablePointer<buddy_stats>,
                          _ context: ReportContext, warnAbout target: UnsafePointer<CChar>?) -> Bool {
        var destination = buddy_report_destination()
        var cPath = emptyTextStorage()
        let fd = withUnsafeMutableBytes(of: &cPath) { raw in
            path.copyCString(to: raw)
            return buddy_os_report_open(raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: CChar.self), options, &destination)
        }
        guard fd >= 0 else {
            if let target { warn(target, destination.problem, destination.error, descriptor: destination.descriptor) }
            return false
        }
        if destination.kind == Int32(BUDDY_DEST_RENAME.rawValue) {
            var sink = TextBuffer(flushingTo: fd)
            Report.write(stats, context, to: &sink)
        } else {
            writeWhole(stats, context, to: fd)
        }
        let error = buddy_os_report_finish(&destination)
        if error != 0 {
            if let target { warn(target, -1, error, descriptor: -1) }
            return false
        }
        return true
    }

    /// "buddy: BUDDY_REPORT=<value>: <what went wrong>; <what to do>; no report written".
    static func warn(_ target: UnsafePointer<CChar>, _ problem: Int32, _ error: Int32, descriptor: Int32) {
        var line = TextBuffer()
        line.append("buddy: BUDDY_REPORT=")
        line.append(cString: target, limit: 80)
        line.append(": ")
        switch problem {
        case Int32(BUDDY_DEST_TOO_LONG.rawValue):
            line.append("the path (or a symlink's target) is too long; name a shorter path")
        case Int32(BUDDY_DEST_DIRECTORY.rawValue):
            line.append("is a directory; name a file in it (DIR/report.%p)")
        case Int32(BUDDY_DEST_NO_FOLDER.rawValue):
            line.append("the folder for the file does not exist; create it or name another path")
        case Int32(BUDDY_DEST_NOT_WRITABLE.rawValue):
            line.append("no file may be created in its folder (permissions, read-only); name a writable folder")
        case Int32(BUDDY_DEST_FIFO_NO_READER.rawValue):
            line.append("is a FIFO with no reader; start its reader before the report")
        case Int32(BUDDY_DEST_BLOCK_DEVICE.rawValue):
            line.append("is a block device, never written; name a file")
        case Int32(BUDDY_DEST_SOCKET.rawValue):
            line.append("is a socket, which cannot be opened; name a file, a FIFO or /dev/fd/N")
        case Int32(BUDDY_DEST_BAD_DESCRIPTOR.rawValue):
            line.append("descriptor ")
            line.append(decimal: Int(descriptor))
            line.append(" is not open for writing; open it (e.g. ")
            line.append(decimal: Int(descriptor))
            line.append(">file) or name a file")
        case Int32(BUDDY_DEST_PROC.rawValue):
            line.append("is in /proc (or a symlink leads there); name /dev/fd/N or a file")
        case Int32(BUDDY_DEST_TEMPORARY_TAKEN.rawValue):
            line.append("the temporary names beside the file (NAME.tmp.<pid>...) exist; remove them")
        case Int32(BUDDY_DEST_CHANGED.rawValue):
            line.append("changed while it was being opened; check what writes there")
        case -1:
            line.append("the finished report could not replace the file (errno ")
            line.append(decimal: Int(error))
            line.append("); check its folder's permissions")
        default:
            line.append("cannot be opened (errno ")
            line.append(decimal: Int(error))
            line.append("); check the path and its permissions")
        }
        line.append("; no report written\n")
        line.write(to: 2)
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

/// The exit checks (FreeLinks.auditAtExit, Hardening.checkAtExit), which the library's
/// destructor runs before the exit report: a report of the heap is worth little if the heap was
/// corrupted. Apart from buddy_exit_report, whose path (with the signal handler's) must reach no
/// allocation function: a finding's report takes a backtrace.
@_cdecl("buddy_exit_checks")
public func buddy_exit_checks() {
    guard ProcessPool.existing != nil else { return }
    FreeLinks.auditAtExit()
    Hardening.checkAtExit()
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
    var sink = TextBuffer(flushingTo: fd)
    withUnsafeMutablePointer(to: &stats) { s in Report.write(s, context, to: &sink) }
    return 0
}

// MARK: - The report options (Options.swift's table lists them)

extension OptionReader {
    /// Reads BUDDY_REPORT_FORMAT, BUDDY_REPORT_SIGNAL, BUDDY_REPORT_INTERVAL,
    /// BUDDY_PROFILE_SAMPLE and BUDDY_STATS_LATENCY into the C settings the hooks read.
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
