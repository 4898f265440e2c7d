import CBuddySupport

/// The exit report (BUDDY_REPORT): a plain-text summary written with write(2) from a stack
/// buffer, so it can run at exit without allocating.
enum Report {
    static func write(_ pool: BuddyEngine, to fd: Int32) {
        let locked = pool.lock()
        let s = pool.state.pointee
        let geometry = s.geometry
        var freeCounts: (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int,
                         Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int,
                         Int, Int, Int, Int, Int, Int, Int, Int, Int)
            = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
               0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &freeCounts) { raw in
            let counts = raw.baseAddress!.assumingMemoryBound(to: Int.self)
            for order in 0...geometry.maxOrder { counts[order] = pool.freeBlockCount(order: order) }
        }
        let calls = pool.calls
        let cached = pool.cachedBytes
        pool.unlock(locked)
        let c = s.counters

        var line = LineBuffer()
        line.append("BuddyMalloc report, pid ")
        line.append(decimal: Int(buddy_os_getpid()))
        line.append(byte: 10)
        line.write(to: fd)

        line = LineBuffer()
        line.append("  pool        ")
        line.append(bytes: UInt64(s.segmentBytes))
        line.append(" in ")
        line.append(decimal: s.segmentCount)
        line.append(" segments; allocated ")
        line.append(bytes: UInt64(s.allocatedBytes))
        line.append(" (")
        line.append(bytes: UInt64(cached))
        line.append(" in thread caches), free ")
        line.append(bytes: UInt64(s.freeBytes))
        line.append(", peak allocated ")
        line.append(bytes: c.peakAllocatedBytes)
        line.append(byte: 10)
        line.write(to: fd)

        line = LineBuffer()
        line.append("  calls       allocations ")
        line.append(decimal: calls.allocations)
        line.append(", frees ")
        line.append(decimal: calls.frees)
        line.append(", failed ")
        line.append(decimal: c.failedAllocations)
        line.append(", resized in place ")
        line.append(decimal: c.reallocInPlace)
        line.append(byte: 10)
        line.write(to: fd)

        line = LineBuffer()
        line.append("  system      ")
        line.append(decimal: buddy_atomic_load_u64_relaxed(&pool.state.pointee.counters.systemCalls))
        line.append(" calls, ")
        line.append(bytes: buddy_atomic_load_u64_relaxed(&pool.state.pointee.counters.systemBytes))
        line.append(" (larger than the maximum block ")
        line.append(bytes: UInt64(geometry.maxBlock))
        line.append(")\n")
        line.write(to: fd)

        line = LineBuffer()
        line.append("  errors      invalid pointers ")
        line.append(decimal: buddy_atomic_load_u64_relaxed(&pool.state.pointee.counters.invalidPointers))
        line.append(", double frees ")
        line.append(decimal: buddy_atomic_load_u64_relaxed(&pool.state.pointee.counters.doubleFrees))
        line.append(byte: 10)
        line.write(to: fd)

        line = LineBuffer()
        line.append("  blocks      splits ")
        line.append(decimal: c.splits)
        line.append(", coalesces ")
        line.append(decimal: c.coalesces)
        line.append(", segments added ")
        line.append(decimal: c.segmentsAdded)
        line.append(", released ")
        line.append(decimal: c.segmentsReleased)
        line.append(byte: 10)
        line.write(to: fd)

        line = LineBuffer()
        line.append("  free area  ")
        withUnsafeBytes(of: &freeCounts) { raw in
            let counts = raw.baseAddress!.assumingMemoryBound(to: Int.self)
            for order in 0...geometry.maxOrder {
                if line.count > 200 {
                    line.append(byte: 10)
                    line.write(to: fd)
                    line = LineBuffer()
                    line.append("             ")
                }
                line.append(byte: 32)
                line.append(bytes: UInt64(geometry.size(ofOrder: order)))
                line.append(byte: 58)
                line.append(decimal: counts[order])
            }
        }
        line.append(byte: 10)
        line.write(to: fd)
    }
}

/// Writes the exit report if BUDDY_REPORT asked for one. Called by the library's destructor.
@_cdecl("buddy_exit_report")
public func buddy_exit_report() {
    guard let target = buddy_report_target_get(), let pool = ProcessPool.existing else { return }
    buddy_thread_enter()
    defer { buddy_thread_leave() }
    if OptionReader.matches(target, "stderr") {
        Report.write(pool, to: 2)
        return
    }
    // Expand %p to the pid, so that every process of a tree writes its own file.
    var path = LineBuffer()
    var i = 0
    while target[i] != 0 && i < 200 {
        if target[i] == 37 && target[i + 1] == 112 { // "%p"
            path.append(decimal: Int(buddy_os_getpid()))
            i += 2
        } else {
            path.append(byte: UInt8(bitPattern: target[i]))
            i += 1
        }
    }
    path.append(byte: 0)
    let fd = path.openReportFile()
    guard fd >= 0 else {
        var line = LineBuffer()
        line.append("buddy: cannot open the report file BUDDY_REPORT=")
        line.append(cString: target)
        line.append("; check that its folder exists and is writable\n")
        line.write(to: 2)
        return
    }
    Report.write(pool, to: fd)
    buddy_os_close(fd)
}
