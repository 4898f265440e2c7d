#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
import CBuddySupport

/// Blocks above the maximum block (README, "Limits"): each is a mapping of its own (mmap, whole
/// pages; mremap to resize; munmap when freed), recorded in a side table so that `free`,
/// `realloc`, `malloc_usable_size` and `free_sized` recognise it by address, and the report
/// counts it. glibc never sees these blocks, so its heap keeps no memory for them (glibc's
/// dynamic mmap threshold kept freed blocks of up to 32 MiB in its arenas).
///
/// The table (buddy_oversize_support.h) lives in static storage and one mapping of entries,
/// sorted by base (binary search: an interior pointer finds its block), behind its own lock,
/// which is never held while another allocator lock is taken or taken while one is held. Only
/// the process pool (malloc's) serves oversize blocks; private pools refuse such requests.
///
/// Each mapping ends with a guard page (PROT_NONE, not part of the block: malloc_usable_size
/// and the figures count the block's pages only), so a write past the end of an oversize block
/// stops the program with SIGSEGV at once instead of landing in whatever mapping the kernel put
/// next to it (mmap hands out addresses top-down: usually the previous block). It costs one
/// mprotect per block and a page of address space, never memory.
///
/// Retained: a freed block is not unmapped at once but kept, its pages resident, for the next
/// oversize requests, as glibc's dynamic mmap threshold keeps freed blocks of up to 32 MiB in its
/// heap: a program that cycles through big buffers (a decoder's frames, a compiler's arenas) then
/// faults its pages in once, not at every allocation. The freed block's mapping is moved
/// (mremap) to an address of its own, without a walk of its pages (an mprotect to PROT_NONE and
/// back cost 14% of malloc-large's cycles), and a tombstone (PROT_NONE, no memory) holds the
/// address the program knew while it is retained: a use after free faults, a second free is a
/// double free, and no later mapping (a reservation of ours) lands there. A request takes the
/// smallest retained mapping that holds it, else the largest ones (up to three) and fresh pages
/// for the rest, moved into a reservation of its size and guard page: freed blocks serve any
/// later size, as freed chunks coalesce in glibc's heap (malloc-large: 2.1 M page faults with
/// whole-block reuse only, 0.46 M now; glibc 0.51 M). The block then is up to four mappings
/// (`pieces` in its entry), which one mremap cannot grow: realloc moves it when it grows (it
/// shrinks in place); free retains each piece. At most `BUDDY_OVERSIZE_RETAINED` mappings and
/// `retainedLimit` bytes (64 MiB, or half the live oversize bytes when more), each for at most
/// BUDDY_RELEASE_DELAY seconds (checked at every oversize call), all of them returned by
/// malloc_trim. calloc never takes one (its memory must read as zero).
///
/// A ring of the last 64 unmapped blocks tells a double free (or a realloc, malloc_usable_size
/// of a freed block) from a pointer of glibc's: a pointer that is the base (or inside) of a
/// recently unmapped block, in memory that is still unmapped, is a bad pointer, not glibc's.
enum Oversize {
    @inline(__always) static var table: UnsafeMutablePointer<buddy_oversize_table> { buddy_oversize_get()! }

    /// What an address is to the side table.
    enum Found {
        /// Not an oversize block, live or recently freed: glibc's (or nobody's).
        case none
        /// The start of a live block of `bytes` usable bytes (`requested` asked for).
        case block(bytes: UInt, requested: UInt)
        /// A bad pointer: inside a live block, or the start or inside of a freed one.
        case bad(Misuse)
        /// The table's lock was busy and the caller may not wait (a re-entrant call).
        case busy
    }

    /// Whether one more oversize block may have mappings of its own: the live blocks' and the
    /// retained mappings (a block is up to four pieces and its guard page: counted as two) stay
    /// under half of vm.max_map_count, leaving the other half to the program (its thread stacks,
    /// files, libraries) and to the pool's segments. Past it, glibc serves (systemFallback).
    @inline(__always) static func withinMappingBudget() -> Bool {
        let t = table
        let mappings = 2 &* buddy_atomic_load_u64_relaxed(&t.pointee.count) &+ buddy_atomic_load_u64_relaxed(&t.pointee.retained_count)
        return mappings < UInt64(buddy_os_max_map_count() / 2)
    }

    /// Whether the table may know `pointer`: one load each (the foreign paths' quick test).
    @inline(__always) static func mayKnow() -> Bool {
        let t = table
        return buddy_atomic_load_u64_relaxed(&t.pointee.count) != 0 || buddy_atomic_load_u64_relaxed(&t.pointee.freed_next) != 0
    }

    // MARK: The lock

    /// Takes the lock; when `wait` is false (a re-entrant call: this thread may hold it already)
    /// only tries, a bounded number of times.
    @inline(__always) static func lock(wait: Bool) -> Bool {
        let lock = lockWord
        if wait { buddy_lock(lock); return true }
        for _ in 0..<1000 {
            if buddy_try_lock(lock) != 0 { return true }
            buddy_cpu_relax()
        }
        return false
    }

    @inline(__always) static func unlock() {
        buddy_unlock(lockWord)
    }

    /// The table's lock (its first field).
    @inline(__always) static var lockWord: UnsafeMutablePointer<buddy_mutex> {
        UnsafeMutableRawPointer(table).assumingMemoryBound(to: buddy_mutex.self)
    }

    // MARK: The table (the caller holds the lock)

    /// The index of the entry whose mapping holds `address`, or -1.
    static func index(of address: UInt) -> Int {
        let t = table
        guard let entries = t.pointee.entries else { return -1 }
        var low = 0, high = Int(t.pointee.count)
        while low < high {
            let middle = (low &+ high) >> 1
            if UInt(entries[middle].base) <= address { low = middle &+ 1 } else { high = middle }
        }
        if low == 0 { return -1 }
        let e = entries[low &- 1]
        return address &- UInt(e.base) < UInt(e.bytes) ? low &- 1 : -1
    }

    /// Adds an entry (growing the table's mapping when full); false when no memory for it.
    static func insert(base: UInt, bytes: UInt, requested: UInt, pieces: UInt64 = 0) -> Bool {
        let t = table
        let count = Int(t.pointee.count)
        if count == Int(t.pointee.capacity) {
            let page = buddy_os_page_size()
            let stride = MemoryLayout<buddy_oversize_entry>.stride
            let capacity = max(page / stride, count &* 2)
            guard let fresh = buddy_os_map_aligned(capacity &* stride, page) else { return false }
            if let old = t.pointee.entries {
                UnsafeMutableRawPointer(fresh).copyMemory(from: old, byteCount: count &* stride)
                buddy_os_unmap(old, (Int(t.pointee.capacity) &* stride &+ page &- 1) & ~(page &- 1))
            }
            t.pointee.entries = fresh.assumingMemoryBound(to: buddy_oversize_entry.self)
            t.pointee.capacity = UInt64(capacity)
        }
        let entries = t.pointee.entries!
        var at = count
        while at > 0 && UInt(entries[at &- 1].base) > base {
            entries[at] = entries[at &- 1]
            at &-= 1
        }
        entries[at] = buddy_oversize_entry(base: UInt64(base), bytes: UInt64(bytes), requested: UInt64(requested), pieces: pieces)
        buddy_atomic_add_u64_relaxed(&t.pointee.count, 1)
        added(bytes: bytes)
        return true
    }

    /// Removes entry `index`, remembering its range in the freed ring.
    static func remove(_ index: Int) {
        let t = table
        let entries = t.pointee.entries!
        let e = entries[index]
        let count = Int(t.pointee.count)
        var at = index
        while at &+ 1 < count {
            entries[at] = entries[at &+ 1]
            at &+= 1
        }
        buddy_atomic_add_u64_relaxed(&t.pointee.count, 0 &- 1)
        buddy_atomic_add_u64_relaxed(&t.pointee.live_bytes, 0 &- e.bytes)
        let slot = buddy_oversize_freed_slot(t.pointee.freed_next)!
        slot[0] = e.base
        slot[1] = e.bytes
        buddy_atomic_add_u64_relaxed(&t.pointee.freed_next, 1)
    }

    /// A block of `bytes` became live: the live figures and their peaks.
    static func added(bytes: UInt) {
        let t = table
        let live = buddy_atomic_fetch_add_u64_relaxed(&t.pointee.live_bytes, UInt64(bytes)) &+ UInt64(bytes)
        buddy_atomic_max_u64_relaxed(&t.pointee.peak_bytes, live)
        buddy_atomic_max_u64_relaxed(&t.pointee.peak_blocks, buddy_atomic_load_u64_relaxed(&t.pointee.count))
    }

    /// What the freed ring says of `address`: a double free (its base), an invalid pointer
    /// (inside), or nothing; only while its memory is still unmapped (else it is someone else's).
    static func freedKind(_ address: UInt) -> Found {
        let t = table
        let total = t.pointee.freed_next
        var i = total > UInt64(BUDDY_OVERSIZE_FREED_RING) ? total &- UInt64(BUDDY_OVERSIZE_FREED_RING) : 0
        var found = Found.none
        while i < total {
            let slot = buddy_oversize_freed_slot(i)!
            if address &- UInt(slot[0]) < UInt(slot[1]) {
                found = address == UInt(slot[0]) ? .bad(.doubleFree) : .bad(.invalidPointer)
            }
            i &+= 1
        }
        return found
    }

    // MARK: Operations (the caller has entered the allocator)

    /// What `pointer` is: a live block, a bad pointer, or not the table's. Waits for the lock
    /// unless `wait` is false.
    static func find(_ pointer: UnsafeRawPointer, wait: Bool) -> Found {
        if !mayKnow() { return .none }
        let address = UInt(bitPattern: pointer)
        guard lock(wait: wait) else { return .busy }
        var start = false
        let r = retainedIndex(of: address, start: &start)
        if r >= 0 {
            // A freed block's tombstone (or its mapping, moved aside): free to the program.
            let found = Found.bad(start ? .doubleFree : .invalidPointer)
            unlock()
            return found
        }
        let i = index(of: address)
        var found = Found.none
        if i >= 0 {
            let e = table.pointee.entries![i]
            found = UInt(e.base) == address ? .block(bytes: UInt(e.bytes), requested: UInt(e.requested)) : .bad(.invalidPointer)
        } else {
            found = freedKind(address)
        }
        unlock()
        if case .bad = found, i < 0, buddy_os_is_mapped(pointer) != 0 { return .none }
        return found
    }

    /// Maps a block for `size` bytes aligned to `alignment` (or reuses a retained one unless
    /// `zeroed`); nil (errno ENOMEM) when the OS refuses or the size cannot be mapped.
    /// `keepNs`: how long retained blocks stay (BUDDY_RELEASE_DELAY).
    static func allocate(_ size: UInt, alignment: UInt, zeroed: Bool, keepNs: UInt64) -> UnsafeMutableRawPointer? {
        let page = UInt(buddy_os_page_size())
        let (padded, overflow) = max(size, 1).addingReportingOverflow(page &- 1)
        // (An alignment of 2^63 is a power of two that no mapping can have.)
        if overflow || padded > UInt(Int.max) >> 1 || alignment > UInt(Int.max) >> 1 {
            buddy_errno_set(ENOMEM_)
            return nil
        }
        let bytes = padded & ~(page &- 1)
        if !zeroed && alignment <= page, let reused = reuseRetained(bytes: bytes, requested: size, keepNs: keepNs) { return reused }
        // (When the OS refuses, ulimit -v say, the retained mappings and their tombstones go first.)
        guard let block = buddy_os_map_fresh(Int(bytes &+ page), Int(max(alignment, page)))
            ?? (releaseRetained() > 0 ? buddy_os_map_fresh(Int(bytes &+ page), Int(max(alignment, page))) : nil) else { return nil }
        // The guard page (see above); should mprotect fail, the block simply has none.
        _ = buddy_os_protect(block + Int(bytes), Int(page), 0)
        _ = lock(wait: true)
        let recorded = insert(base: UInt(bitPattern: block), bytes: bytes, requested: size)
        unlock()
        if !recorded {
            buddy_os_unmap(block, Int(bytes &+ page))
            buddy_errno_set(ENOMEM_)
            return nil
        }
        return block
    }

    /// Frees the live block that starts at `pointer`: each of its pieces retained for reuse (see
    /// above) or unmapped; false when it is not one (the table changed since `find`: the program
    /// freed it twice at once). `keepNs` as in allocate (0: unmap it now).
    static func release(_ pointer: UnsafeMutableRawPointer, keepNs: UInt64) -> Bool {
        let address = UInt(bitPattern: pointer)
        let page = UInt(buddy_os_page_size())
        _ = lock(wait: true)
        let i = index(of: address)
        guard i >= 0, UInt(table.pointee.entries![i].base) == address else { unlock(); return false }
        let e = table.pointee.entries![i]
        let bytes = UInt(e.bytes)
        remove(i)
        let now = buddy_os_monotonic_ns()
        let cutoff = now &- min(now, keepNs)
        // Piece by piece (a block mapped whole is one piece): each one mapping, moved or unmapped
        // while it is still mapped (never a range already vacated, which another thread's mmap
        // may have taken meanwhile).
        var start: UInt = 0
        var k = 1
        while start < bytes {
            var end = bytes
            if k <= 3, case let cut = cutOffset(e.pieces, k, page: page), cut != 0 { end = cut }
            retain(address &+ start, end &- start, now: now, cutoff: cutoff, keep: keepNs > 0)
            start = end
            k &+= 1
        }
        buddy_os_unmap(pointer + Int(bytes), Int(page)) // the guard page
        unlock()
        return true
    }

    /// Where piece `k` (1...3: the second to the fourth) of an entry's `pieces` starts, in bytes
    /// from the base; 0 when it has no such piece.
    @inline(__always) static func cutOffset(_ pieces: UInt64, _ k: Int, page: UInt) -> UInt {
        UInt((pieces &>> UInt64(20 &* (k &- 1))) & 0xF_FFFF) &* page
    }

    /// The most pages an assembled block may have (a cut is 20 bits of pages).
    static let assembledPageLimit: UInt = 1 << 20

    // MARK: Retained blocks (the caller holds the lock, unless said otherwise)

    @inline(__always) static var retainedEntries: UnsafeMutablePointer<buddy_oversize_entry> { buddy_oversize_retained()! }

    /// Bytes of freed blocks kept mapped at most: 128 MiB, or half what the program holds in
    /// oversize blocks when that is more. (malloc-large, 300 MB of 5-25 MiB buffers, when a
    /// retained block served only requests it held whole: with the live bytes as the limit
    /// 6.6-7.8 s and 771 MB peak RSS, with half 7.4-8.9 s and 597 MB, with 64 MiB 9.2-10.1 s and
    /// 498 MB; glibc 4.4-5.0 s and 534 MB. Since blocks are assembled from retained pieces, the
    /// suite's `huge`, six live blocks of 2-32 MiB replaced at random, took 0.30 s with 64 MiB,
    /// 0.21 s and 9% more peak RSS with 128 MiB (tcmalloc 0.13 s, 15% more), no less with 256 MiB
    /// or 1 GiB: a 64 MiB limit evicted pieces a later block needed.)
    @inline(__always) static var retainedLimit: UInt { max(128 << 20, UInt(liveBytes) / 2) }

    /// Keeps the mapping of `bytes` at `address` (one piece of a freed block) as a retained
    /// entry, moved to an address of its own (so the program's pointer is unmapped: a use after
    /// free faults), when the limits allow (the oldest entries, and those freed before `cutoff`,
    /// evicted to make room); else unmaps it.
    static func retain(_ address: UInt, _ bytes: UInt, now: UInt64, cutoff: UInt64, keep: Bool) {
        let t = table
        let piece = UnsafeMutableRawPointer(bitPattern: address).unsafelyUnwrapped
        if keep && bytes <= retainedLimit {
            evictRetained(olderThan: cutoff, orToFit: bytes)
            // (Reserved before the piece leaves: never its own range.)
            if t.pointee.retained_count < UInt64(BUDDY_OVERSIZE_RETAINED), let home = buddy_os_reserve(Int(bytes)) {
                if buddy_os_move(piece, Int(bytes), home) == 0 {
                    // The address the program knows stays taken, inaccessible, while the piece is
                    // retained: no later mapping (a reservation of ours) lands there, so a use
                    // after free faults and a second free is found (unless another thread's mmap
                    // took the hole first: then it is an unmapped block's).
                    let tombstone = buddy_os_tombstone(piece, Int(bytes)) == 0 ? UInt64(address) : 0
                    retainedEntries[Int(t.pointee.retained_count)] = buddy_oversize_entry(
                        base: UInt64(UInt(bitPattern: home)), bytes: UInt64(bytes), requested: now, pieces: tombstone)
                    t.pointee.retained_count &+= 1
                    buddy_atomic_add_u64_relaxed(&t.pointee.retained_bytes, UInt64(bytes))
                    return
                }
                // (Not one mapping: the program changed the protection of part of it.)
                buddy_os_unmap(home, Int(bytes))
            }
        }
        buddy_os_unmap(piece, Int(bytes))
    }

    /// The retained entry whose mapping or tombstone holds `address`, or -1; `start` set when
    /// `address` is where one of them starts.
    static func retainedIndex(of address: UInt, start: inout Bool) -> Int {
        let t = table
        for r in 0..<Int(t.pointee.retained_count) {
            let e = retainedEntries[r]
            let tombstone = UInt(e.pieces)
            if address &- UInt(e.base) < UInt(e.bytes) || (tombstone != 0 && address &- tombstone < UInt(e.bytes)) {
                start = address == UInt(e.base) || address == tombstone
                return r
            }
        }
        return -1
    }

    /// Unmaps the first `bytes` of retained entry `r`'s tombstone (the whole of it: the entry is
    /// gone), the rest of it staying with the entry's rest.
    static func dropTombstone(_ r: Int, bytes: UInt) {
        let tombstone = UInt(retainedEntries[r].pieces)
        guard tombstone != 0 else { return }
        buddy_os_unmap(UnsafeMutableRawPointer(bitPattern: tombstone), Int(bytes))
        retainedEntries[r].pieces = bytes < UInt(retainedEntries[r].bytes) ? UInt64(tombstone &+ bytes) : 0
    }

    /// Takes retained entry `r` out of the list (the mapping stays; its tombstone goes).
    static func takeRetained(_ r: Int) -> buddy_oversize_entry {
        let t = table
        dropTombstone(r, bytes: UInt(retainedEntries[r].bytes))
        let e = retainedEntries[r]
        t.pointee.retained_count &-= 1
        retainedEntries[r] = retainedEntries[Int(t.pointee.retained_count)]
        buddy_atomic_add_u64_relaxed(&t.pointee.retained_bytes, 0 &- e.bytes)
        return e
    }

    /// Unmaps the retained blocks freed before `cutoff` (monotonic ns), and the oldest ones
    /// until `bytes` more fit under the limits.
    static func evictRetained(olderThan cutoff: UInt64, orToFit bytes: UInt) {
        let t = table
        var r = 0
        while r < Int(t.pointee.retained_count) {
            if retainedEntries[r].requested < cutoff {
                let e = takeRetained(r)
                buddy_os_unmap(UnsafeMutableRawPointer(bitPattern: UInt(e.base)), Int(e.bytes))
            } else {
                r &+= 1
            }
        }
        while t.pointee.retained_count > 0 && (t.pointee.retained_count == UInt64(BUDDY_OVERSIZE_RETAINED)
                                               || UInt(t.pointee.retained_bytes) &+ bytes > retainedLimit) {
            var oldest = 0
            for r in 1..<Int(t.pointee.retained_count) where retainedEntries[r].requested < retainedEntries[oldest].requested { oldest = r }
            let e = takeRetained(oldest)
            buddy_os_unmap(UnsafeMutableRawPointer(bitPattern: UInt(e.base)), Int(e.bytes))
        }
    }

    /// A live block of `bytes` assembled from retained mappings, or nil (none retained). The
    /// pieces are moved (mremap: their pages go with them, no copy, no fault) into a fresh
    /// reservation of `bytes` and a guard page: the smallest retained mapping that holds the
    /// rest of the block, else the largest (up to three), and what they do not cover is fresh
    /// memory. A mapping larger than the rest gives its start; its end stays retained. So the
    /// program faults in only the pages that no freed block held, as in glibc's heap, where
    /// freed chunks coalesce. Takes the lock itself.
    static func reuseRetained(bytes: UInt, requested: UInt, keepNs: UInt64) -> UnsafeMutableRawPointer? {
        guard buddy_atomic_load_u64_relaxed(&table.pointee.retained_bytes) != 0 else { return nil }
        let page = UInt(buddy_os_page_size())
        guard bytes / page < assembledPageLimit else { return nil }
        _ = lock(wait: true)
        defer { unlock() }
        let now = buddy_os_monotonic_ns()
        evictRetained(olderThan: now &- min(now, keepNs), orToFit: 0)
        let t = table
        guard t.pointee.retained_count > 0, let raw = buddy_os_reserve(Int(bytes &+ page)) else { return nil }
        let block = UInt(bitPattern: raw)
        var filled: UInt = 0, pieces: UInt64 = 1 &<< 63, taken = 0
        while filled < bytes && t.pointee.retained_count > 0 && taken < 4 {
            let need = bytes &- filled
            // The smallest that holds the rest, else the largest.
            var best = 0
            for r in 1..<Int(t.pointee.retained_count) {
                let size = UInt(retainedEntries[r].bytes), bestSize = UInt(retainedEntries[best].bytes)
                if size >= need ? (bestSize < need || size < bestSize) : (bestSize < need && size > bestSize) { best = r }
            }
            let e = retainedEntries[best]
            let length = min(UInt(e.bytes), need)
            // The fourth piece is fresh memory unless a retained one covers the rest.
            if length < need && taken == 3 { break }
            guard buddy_os_move(UnsafeMutableRawPointer(bitPattern: UInt(e.base)).unsafelyUnwrapped, Int(length),
                                UnsafeMutableRawPointer(bitPattern: block &+ filled).unsafelyUnwrapped) == 0 else { break }
            if length < UInt(e.bytes) {
                dropTombstone(best, bytes: length)
                retainedEntries[best].base &+= UInt64(length)
                retainedEntries[best].bytes &-= UInt64(length)
                buddy_atomic_add_u64_relaxed(&t.pointee.retained_bytes, 0 &- UInt64(length))
            } else {
                _ = takeRetained(best)
            }
            if taken > 0 { pieces |= UInt64(filled / page) &<< UInt64(20 &* (taken &- 1)) }
            filled &+= length
            taken &+= 1
        }
        if taken == 0 {
            buddy_os_unmap(raw, Int(bytes &+ page))
            return nil
        }
        if filled < bytes { pieces |= UInt64(filled / page) &<< UInt64(20 &* (taken &- 1)) }
        // Readable and writable: the rest of the reservation, and any piece the program had
        // protected otherwise before it freed it (a no-op, without a walk of its pages, for a
        // mapping that is so already). The guard page after the block stays inaccessible.
        guard buddy_os_protect(raw, Int(bytes), 1) == 0,
              insert(base: block, bytes: bytes, requested: requested, pieces: pieces) else {
            buddy_os_unmap(raw, Int(bytes &+ page))
            buddy_errno_set(ENOMEM_)
            return nil
        }
        return raw
    }

    /// Unmaps every retained block (malloc_trim): the bytes given back.
    static func releaseRetained() -> UInt {
        guard buddy_atomic_load_u64_relaxed(&table.pointee.retained_bytes) != 0 else { return 0 }
        _ = lock(wait: true)
        let bytes = UInt(table.pointee.retained_bytes)
        evictRetained(olderThan: UInt64.max, orToFit: 0)
        unlock()
        return bytes
    }

    static var retainedBytes: UInt64 { buddy_atomic_load_u64_relaxed(&table.pointee.retained_bytes) }

    /// Resizes the live block at `pointer` to `size` bytes: in place (mremap shrinks, or grows
    /// when the pages after it are free), else moved by mremap. Nil (errno ENOMEM, the block
    /// intact) when the OS refuses, or (`assembled` set, errno untouched) when the block was
    /// assembled from retained mappings and grows, which one mremap cannot do: the caller moves it.
    /// `wait` as in `find`.
    static func resize(_ pointer: UnsafeMutableRawPointer, to size: UInt, wait: Bool, assembled: inout Bool) -> UnsafeMutableRawPointer? {
        let page = UInt(buddy_os_page_size())
        let (padded, overflow) = max(size, 1).addingReportingOverflow(page &- 1)
        if overflow || padded > UInt(Int.max) >> 1 {
            buddy_errno_set(ENOMEM_)
            return nil
        }
        let bytes = padded & ~(page &- 1)
        let address = UInt(bitPattern: pointer)
        guard lock(wait: wait) else { buddy_errno_set(ENOMEM_); return nil }
        let i = index(of: address)
        guard i >= 0, UInt(table.pointee.entries![i].base) == address else { unlock(); buddy_errno_set(22); return nil }
        let old = UInt(table.pointee.entries![i].bytes)
        var pieces = table.pointee.entries![i].pieces
        if bytes != old && pieces != 0 {
            // Assembled: shrunk in place (the first page past the new end becomes its guard, the
            // rest goes back with the old guard, and the cuts past the end are forgotten), or
            // moved by the caller.
            guard bytes < old, buddy_os_protect(pointer + Int(bytes), Int(page), 0) == 0 else {
                unlock()
                assembled = true
                return nil
            }
            buddy_os_unmap(pointer + Int(bytes &+ page), Int(old &- bytes))
            for k in 1...3 where cutOffset(pieces, k, page: page) >= bytes {
                pieces &= ~(UInt64(0xF_FFFF) &<< UInt64(20 &* (k &- 1)))
            }
            table.pointee.entries![i].pieces = pieces
        }
        // (Under the lock: a moved block's old range must not be mapped and recorded by another
        // thread before its entry is gone.) The guard page moves with the block: made writable
        // first (so that block and guard are one mapping mremap can take whole), the new last
        // page protected after.
        var moved: UnsafeMutableRawPointer? = pointer
        if bytes != old && pieces == 0 {
            _ = buddy_os_protect(pointer + Int(old), Int(page), 1)
            moved = buddy_os_remap(pointer, Int(old &+ page), Int(bytes &+ page), 1)
            _ = buddy_os_protect((moved ?? pointer) + Int(moved == nil ? old : bytes), Int(page), 0)
        }
        guard let moved else {
            unlock()
            buddy_errno_set(ENOMEM_)
            return nil
        }
        let t = table
        if moved == pointer {
            t.pointee.entries![i].bytes = UInt64(bytes)
            t.pointee.entries![i].requested = UInt64(size)
            if bytes >= old { added(bytes: bytes &- old) } else { buddy_atomic_add_u64_relaxed(&t.pointee.live_bytes, UInt64(0 &- (old &- bytes))) }
        } else {
            remove(i)
            // The count is back where it was: no growth, so the insertion cannot fail.
            _ = insert(base: UInt(bitPattern: moved), bytes: bytes, requested: size)
        }
        unlock()
        return moved
    }

    // MARK: Figures (atomic loads: any thread, a signal handler)

    static var liveBlocks: UInt64 { buddy_atomic_load_u64_relaxed(&table.pointee.count) }
    static var liveBytes: UInt64 { buddy_atomic_load_u64_relaxed(&table.pointee.live_bytes) }
    static var peakBlocks: UInt64 { buddy_atomic_load_u64_relaxed(&table.pointee.peak_blocks) }
    static var peakBytes: UInt64 { buddy_atomic_load_u64_relaxed(&table.pointee.peak_bytes) }

    /// Resident bytes of the live blocks and of the retained mappings (mincore, for the report).
    /// When the lock is busy and `wait` is false, their byte counts stand in (an upper bound).
    static func residency(wait: Bool) -> (live: UInt64, retained: UInt64) {
        guard lock(wait: wait) else { return (liveBytes, retainedBytes) }
        let t = table
        var live: UInt64 = 0, retained: UInt64 = 0
        for i in 0..<Int(t.pointee.count) {
            let entry = t.pointee.entries[i]
            live &+= buddy_os_resident_bytes(UnsafeRawPointer(bitPattern: UInt(entry.base)), Int(entry.bytes))
        }
        for r in 0..<Int(t.pointee.retained_count) {
            let entry = retainedEntries[r]
            retained &+= buddy_os_resident_bytes(UnsafeRawPointer(bitPattern: UInt(entry.base)), Int(entry.bytes))
        }
        unlock()
        return (live, retained)
    }

    // MARK: Fork (ProcessPool's atfork handlers)

    static func prepareFork() -> Bool { buddy_oversize_fork_prepare() != 0 }
    static func parentAfterFork() { buddy_oversize_fork_parent() }
    static func childAfterFork() { buddy_oversize_fork_child() }
}
