#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
import CBuddySupport

/// Every bad pointer (invalid pointer, double free, another pool's pointer) is logged on stderr
/// with the call stack that passed it, and the last `capacity` are kept for the report's
/// `bad_pointers`. The stack comes from libunwind (buddy_backtrace) and is symbolized at once
/// with dladdr, outside every allocator lock: the report writer (maybe a signal handler) only
/// copies text.
///
/// The log is one mapping, created at the first bad pointer: a header (the count of records
/// ever started) and `capacity` records of fixed layout. A record's `sequence` is 0 while it is
/// written and n + 1 once the n-th record is complete, so a reader skips torn records.
enum BadPointerLog {
    static let capacity = 16
    static let maxFrames = 16
    static let frameText = 112

    // Record layout (bytes).
    static let sequenceOffset = 0
    static let kindOffset = 8
    static let functionOffset = 16       // StaticString start
    static let functionLengthOffset = 24
    static let pointerOffset = 32
    static let frameCountOffset = 40
    static let textOffset = 48
    static let recordBytes = textOffset + maxFrames * frameText
    static let headerBytes = 64
    static let mappingBytes = headerBytes + capacity * recordBytes

    static let invalidKind: UInt64 = 0, doubleFreeKind: UInt64 = 1, otherPoolKind: UInt64 = 2
    static let useAfterFreeKind: UInt64 = 3, wrongSizeKind: UInt64 = 4
    /// A free block's links overwritten (FreeLinks): the pointer is the block.
    static let corruptionKind: UInt64 = 5

    /// The log, mapping it on first use; nil when the OS gives no memory.
    static func log() -> UnsafeMutableRawPointer? {
        if let existing = buddy_bad_pointer_log_get() { return existing }
        let page = buddy_os_page_size()
        guard let fresh = buddy_os_map_aligned((mappingBytes + page - 1) & ~(page - 1), page) else { return nil }
        if buddy_bad_pointer_log_publish(fresh) != 0 { return fresh }
        buddy_os_unmap(fresh, (mappingBytes + page - 1) & ~(page - 1))
        return buddy_bad_pointer_log_get()
    }

    /// Records a bad pointer and writes its call stack to stderr, one frame per line after the
    /// "buddy: ..." line of reportBadPointer. Called without any allocator lock held.
    @inline(never)
    static func record(_ function: StaticString, _ pointer: UnsafeRawPointer, _ misuse: Misuse) {
        // Whatever the unwinder or dladdr allocate goes to glibc.
        buddy_thread_enter()
        defer { buddy_thread_leave() }
        var frames: (UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt)
            = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let count = withUnsafeMutableBytes(of: &frames) { raw in
            Int(buddy_backtrace(raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: UnsafeMutableRawPointer?.self), Int32(maxFrames)))
        }
        let kind: UInt64
        switch misuse {
        case .doubleFree: kind = doubleFreeKind
        case .otherPool: kind = otherPoolKind
        case .useAfterFree: kind = useAfterFreeKind
        case .wrongSize: kind = wrongSizeKind
        case .invalidPointer: kind = invalidKind
        case .heapCorruption: kind = corruptionKind
        }
        let log = self.log()
        var index: UInt64 = 0
        var record: UnsafeMutableRawPointer? = nil
        if let log {
            index = buddy_atomic_fetch_add_u64_relaxed(log.assumingMemoryBound(to: UInt64.self), 1)
            let r = log + headerBytes + Int(index % UInt64(capacity)) * recordBytes
            buddy_atomic_store_u64_release(r.assumingMemoryBound(to: UInt64.self), 0)
            r.storeBytes(of: kind, toByteOffset: kindOffset, as: UInt64.self)
            r.storeBytes(of: UInt(bitPattern: function.utf8Start), toByteOffset: functionOffset, as: UInt.self)
            r.storeBytes(of: function.utf8CodeUnitCount, toByteOffset: functionLengthOffset, as: Int.self)
            r.storeBytes(of: UInt(bitPattern: pointer), toByteOffset: pointerOffset, as: UInt.self)
            r.storeBytes(of: count, toByteOffset: frameCountOffset, as: Int.self)
            record = r
        }
        var scratch = emptyTextStorage()
        withUnsafeMutableBytes(of: &scratch) { raw in
            let text = raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: CChar.self)
            for i in 0..<count {
                let frame = withUnsafeBytes(of: &frames) { $0.load(fromByteOffset: i &* 8, as: UInt.self) }
                let length = buddy_symbolize(UnsafeRawPointer(bitPattern: frame), text, frameText)
                var line = TextBuffer()
                line.append("    #")
                line.append(decimal: i)
                line.append(byte: 32)
                line.append(cString: text, limit: 200)
                line.append(byte: 10)
                line.write(to: 2)
                if let record {
                    (record + textOffset + i &* frameText).copyMemory(from: text, byteCount: min(length &+ 1, frameText))
                    (record + textOffset + i &* frameText).storeBytes(of: 0, toByteOffset: frameText &- 1, as: UInt8.self)
                }
            }
        }
        if count == 0 {
            var line = TextBuffer()
            line.append("    (no call stack: neither libunwind.so.8 nor glibc's backtrace could unwind)\n")
            line.write(to: 2)
        }
        if let record { buddy_atomic_store_u64_release(record.assumingMemoryBound(to: UInt64.self), index &+ 1) }
    }

    /// Bad pointers recorded so far.
    static var total: UInt64 {
        guard let log = buddy_bad_pointer_log_get() else { return 0 }
        return buddy_atomic_load_u64_relaxed(log.assumingMemoryBound(to: UInt64.self))
    }

    /// The complete record number `index` (0-based), or nil when it is torn or overwritten.
    static func completeRecord(_ index: UInt64) -> UnsafeMutableRawPointer? {
        guard let log = buddy_bad_pointer_log_get() else { return nil }
        let r = log + headerBytes + Int(index % UInt64(capacity)) * recordBytes
        return buddy_atomic_load_u64_acquire(r.assumingMemoryBound(to: UInt64.self)) == index &+ 1 ? r : nil
    }
}

extension ReportWriter {
    /// The last bad pointers, oldest first (the process pool's report; a private pool's has none).
    mutating func writeBadPointers() {
        let process = figures.pointee.processPool
        let total = process ? BadPointerLog.total : 0
        let first = total > UInt64(BadPointerLog.capacity) ? total &- UInt64(BadPointerLog.capacity) : 0
        if json {
            out.append("[")
        } else {
            guard process else { return }
            out.append("  bad pointers ")
            out.append(decimal: total)
            if total == 0 { out.append(byte: 10); return }
            out.append(" (the last ")
            out.append(decimal: total &- first)
            out.append(", oldest first):\n")
        }
        var any = false
        var index = first
        while index < total {
            defer { index &+= 1 }
            guard let r = BadPointerLog.completeRecord(index) else { continue }
            record = UnsafeRawPointer(r)
            if json { writeElement(.badPointer, first: !any) } else { writeText(.badPointer) }
            any = true
        }
        record = nil
        if json { out.append(any ? "\n  ]" : "]") }
    }
}
