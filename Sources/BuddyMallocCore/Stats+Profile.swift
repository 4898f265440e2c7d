#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
import CBuddySupport

/// The allocation-site profile (BUDDY_PROFILE_SAMPLE=<bytes>): about one allocation per that many
/// bytes allocated is sampled; its call stack (libunwind) is kept as a *site*, and the sampled
/// block is remembered by address so that its free subtracts it again. The report lists the
/// sites by live bytes, largest first.
///
/// A sample stands for `max(size, sample bytes)` bytes: an allocation of at least the sample
/// bytes is always sampled; a smaller one of s bytes is sampled with a chance of about
/// s / sample bytes (sample points fall at random intervals, scheduleNextSample), so
/// `live_bytes` estimates the bytes each site holds.
///
/// Everything lives in one mapping, created at the first sample and never unmapped:
///
///     sites       a table of `siteCapacity` records, open addressing keyed by the stack's hash;
///                 records are only added (never removed or moved), their hash published last,
///                 so readers (the report writer, maybe a signal handler) need no lock;
///     blocks      `stripes` tables of sampled addresses -> (site, weight), linear probing with
///                 backward-shift deletion, each behind a spin lock held for a few loads
///
/// The stack's frames are written as module+offset (buddy_locate: no symbol lookup inside
/// malloc; buddy-report names them offline) when its site is created, before any lock is taken:
/// the report only copies text. With the profile on, malloc's fast path pays its countdown and
/// nothing more (see `rearm`), and free one load of the filter (`maySample`).
enum AllocationProfile {
    static let siteCapacity = 1024
    static let maxFrames = 8
    static let frameText = 112
    static let stripes = 16
    static let stripeCapacity = 2048

    // Site record layout (bytes).
    static let hashOffset = 0
    static let liveBytesOffset = 8
    static let liveCountOffset = 16
    static let samplesOffset = 24
    static let frameCountOffset = 32
    static let textOffset = 40
    /// Estimates (a sample of s bytes stands for max(s, P) / s blocks, kept in 1/1024 blocks):
    /// the live blocks, and the bytes and blocks of every sample, freed or not.
    static let liveBlocksOffset = textOffset + maxFrames * frameText
    static let allocatedBytesOffset = liveBlocksOffset + 8
    static let allocatedBlocksOffset = allocatedBytesOffset + 8
    static let siteBytes = 960
    // Header: site-table lock (UInt32), sites used, samples dropped (tables full), the period.
    static let headerBytes = 64
    static let sitesOffset = headerBytes
    static let stripesOffset = sitesOffset + siteCapacity * siteBytes
    static let stripeHeaderBytes = 64
    static let stripeBytes = stripeHeaderBytes + stripeCapacity * 16
    /// The modules the sites' frames lie in (load base, path, GNU build-id in hex), so that
    /// buddy-report can symbolize offline and tell a changed file: up to `moduleCapacity`,
    /// appended under the site-table lock, their number (header word 32) published last.
    static let moduleCapacity = 32
    static let moduleNameBytes = 112
    static let modulePathBytes = 160
    static let moduleBuildIdBytes = 72
    static let moduleBytes = 8 + moduleNameBytes + modulePathBytes + moduleBuildIdBytes
    static let modulesOffset = stripesOffset + stripes * stripeBytes
    /// A counting filter in front of the sampled-block tables: `filterCounters` counters, each
    /// the number of sampled blocks whose address hashes to it (added under the block's stripe
    /// lock, with atomics). With the profile on, every free asks whether its block was sampled;
    /// a counter of 0 answers no with one load, where the stripe's spin lock took 7% of a python
    /// run's samples at BUDDY_PROFILE_SAMPLE=1M. (A block is sampled inside its malloc, before
    /// the program can hand it to the thread that frees it: the count is there before the free.)
    static let filterCounters = 16384
    static let filterOffset = modulesOffset + moduleCapacity * moduleBytes
    static let mappingBytes = filterOffset + filterCounters * 8

    @inline(__always) static func filterCounter(_ table: UnsafeMutableRawPointer, _ address: UInt) -> UnsafeMutablePointer<UInt64> {
        let index = Int(truncatingIfNeeded: ((UInt64(address) >> 4) &* 0x9E37_79B9_7F4A_7C15) >> 50)
        return (table + filterOffset + index &* 8).assumingMemoryBound(to: UInt64.self)
    }

    @inline(__always) static func module(_ table: UnsafeMutableRawPointer, _ index: Int) -> UnsafeMutableRawPointer {
        table + modulesOffset + index &* moduleBytes
    }

    /// Records the module of each frame not recorded yet (dladdr and the build-id note are read
    /// before the lock is taken).
    static func registerModules(_ table: UnsafeMutableRawPointer, frames: UnsafeRawPointer, count: Int) {
        var scratch = emptyTextStorage()
        withUnsafeMutableBytes(of: &scratch) { raw in
            let name = raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: CChar.self)
            let path = name + moduleNameBytes
            let buildId = path + modulePathBytes
            for i in 0..<count {
                let frame = frames.load(fromByteOffset: i &* 8, as: UInt.self)
                // A module already recorded costs one lookup by address (the table only grows,
                // each entry's base written before the count that publishes it).
                let moduleBase = buddy_module_base(UnsafeRawPointer(bitPattern: frame))
                if moduleBase == 0 { continue }
                var recorded = false
                for m in 0..<Int(buddy_atomic_load_u64_acquire(word(table, 32))) where module(table, m).load(as: UInt.self) == moduleBase {
                    recorded = true
                    break
                }
                if recorded { continue }
                var base: UInt = 0
                guard buddy_module_of(UnsafeRawPointer(bitPattern: frame), &base, name, moduleNameBytes, path,
                                      modulePathBytes, buildId, moduleBuildIdBytes) != 0 else { continue }
                let lock = table.assumingMemoryBound(to: UInt32.self)
                buddy_spin_lock(lock)
                let known = Int(word(table, 32).pointee)
                var found = false
                for m in 0..<known where module(table, m).load(as: UInt.self) == base { found = true; break }
                if !found && known < moduleCapacity {
                    let entry = module(table, known)
                    entry.storeBytes(of: base, as: UInt.self)
                    (entry + 8).copyMemory(from: UnsafeRawPointer(name), byteCount: moduleNameBytes &+ modulePathBytes &+ moduleBuildIdBytes)
                    buddy_atomic_store_u64_release(word(table, 32), UInt64(known &+ 1))
                }
                buddy_spin_unlock(lock)
            }
        }
    }

    static func table() -> UnsafeMutableRawPointer? {
        if let existing = buddy_profile_table_get() { return existing }
        let page = buddy_os_page_size()
        let bytes = (mappingBytes + page - 1) & ~(page - 1)
        guard let fresh = buddy_os_map_aligned(bytes, page) else { return nil }
        if buddy_profile_table_publish(fresh) != 0 { return fresh }
        buddy_os_unmap(fresh, bytes)
        return buddy_profile_table_get()
    }

    @inline(__always) static func site(_ table: UnsafeMutableRawPointer, _ index: Int) -> UnsafeMutableRawPointer {
        table + sitesOffset + index &* siteBytes
    }

    @inline(__always) static func word(_ p: UnsafeMutableRawPointer, _ offset: Int) -> UnsafeMutablePointer<UInt64> {
        (p + offset).assumingMemoryBound(to: UInt64.self)
    }

    // MARK: Sampling

    /// An allocation of `size` bytes at `block` (by a thread with a cache): sampled when it
    /// reaches the thread's sample point (or is as large as the period); the countdown is armed
    /// again. `counted`: its bytes are in the thread's `requestedBytes` (an oversize block's
    /// are not: they bring the sample point nearer instead). Calling it twice for one allocation
    /// samples it once when the target was reached (the target then lies ahead), but a block of
    /// the period or more twice: every malloc is checked by exactly one path (FastPaths).
    static func allocated(_ block: UnsafeMutableRawPointer, size: UInt, counted: Bool, cache: UnsafeMutablePointer<ThreadCache>) {
        let period = cache.pointee.pool.pointee.stats.profileSampleBytes
        guard period != 0 else { return }
        let bytes = UInt64(size)
        // A block of the period or more is always sampled, standing for itself, and moves no
        // sample point; the smaller ones share the sample points, each standing for a period's bytes.
        if bytes >= period {
            if counted { cache.pointee.calls.profileTarget &+= bytes }
            sample(block, size: bytes, period: period)
        } else {
            if !counted { cache.pointee.calls.profileTarget &-= bytes }
            if Int64(bitPattern: cache.pointee.calls.requestedBytes &- cache.pointee.calls.profileTarget) >= 0 {
                scheduleNextSample(cache, period: period)
                sample(block, size: bytes, period: period)
            }
        }
        rearm(cache)
    }

    /// Arms malloc's countdown with the profile on: the calls until a timed one is due (sampled
    /// latency; every call with exact latency) or until the sample point may be reached,
    /// whichever comes first. The calls the countdown lets through unchecked are those of
    /// mallocFast's inline path, of at most `orderPathLimit` (L) bytes each (every other call
    /// checks itself: mallocMedium, mallocSlow, the other entry points); with R bytes left to
    /// the sample point, the countdown stops at call max(1, R / L), so the first of them that
    /// can reach it is always checked: the calls before it bring at most (R / L - 1) x L < R
    /// bytes. A sample thus falls on the very allocation whose bytes reach the point, as when
    /// every call was checked; python3 (64-byte objects, L = 1 KiB) checks about one malloc in
    /// 100 instead of every one.
    static func rearm(_ cache: UnsafeMutablePointer<ThreadCache>) {
        let pool = cache.pointee.pool
        // The calls counted since the last arming: latency's share.
        let elapsed = cache.pointee.calls.countdownArmed &- cache.pointee.calls.countdown
        cache.pointee.calls.latencyCountdown &-= elapsed
        var calls = Int.max
        let mode = pool.pointee.stats.latencyMode
        if mode == Int32(BUDDY_LATENCY_EXACT.rawValue) {
            calls = 1
        } else if mode == Int32(BUDDY_LATENCY_SAMPLED.rawValue) {
            calls = max(1, cache.pointee.calls.latencyCountdown)
        }
        let limit = UInt64(cache.pointee.orderPathLimit)
        let remaining = Int64(bitPattern: cache.pointee.calls.profileTarget &- cache.pointee.calls.requestedBytes)
        var bound = 1
        if limit != 0, pool.pointee.stats.profileSampleBytes > limit, remaining > Int64(limit) {
            bound = Int(remaining / Int64(limit))
        }
        let armed = min(calls, bound)
        cache.pointee.calls.countdown = armed
        cache.pointee.calls.countdownArmed = armed
    }

    /// The countdown stopped (mallocProfiled): whether this malloc is timed, and so the free
    /// after it. Sampled latency times one malloc in its period, counted across the stops.
    static func latencyDue(_ cache: UnsafeMutablePointer<ThreadCache>) -> Bool {
        let pool = cache.pointee.pool
        cache.pointee.calls.latencyCountdown &-= cache.pointee.calls.countdownArmed
        cache.pointee.calls.countdownArmed = 0 // consumed (the countdown is 0): rearm counts from here
        var timed = false
        let mode = pool.pointee.stats.latencyMode
        if mode == Int32(BUDDY_LATENCY_EXACT.rawValue) {
            timed = true
        } else if mode == Int32(BUDDY_LATENCY_SAMPLED.rawValue), cache.pointee.calls.latencyCountdown <= 0 {
            cache.pointee.calls.latencyCountdown = pool.pointee.stats.latencyPeriod
            timed = true
        }
        if timed { cache.setFreeSampleDue(CallCounters.timedFree | CallCounters.profileFrees) }
        return timed
    }

    /// The bytes a sample of `size` bytes stands for, and the blocks in 1/1024: max(s, P) and
    /// max(s, P) x 1024 / s.
    @inline(__always) static func estimates(size: UInt64, period: UInt64) -> (bytes: UInt64, blocks: UInt64) {
        let bytes = max(size, period)
        return (bytes, bytes &* 1024 / max(size, 1))
    }

    /// The next sample point: a random interval of P/2 ... 3P/2 bytes (mean P, the period) after
    /// the point that just fell, the overshoot carried. A fixed interval restarted at each sample
    /// locks onto a program that repeats one pattern of allocations: each allocation of the
    /// pattern got the same number of samples whatever its size (3 sites of 56, 128 and 101
    /// bytes: 29, 29 and 28 samples). With the phase carried and the intervals random, each byte
    /// is a sample point with probability 1/P in the long run, so a site's samples follow its
    /// bytes. (xorshift64* per thread, seeded from the pool's random key and the cache's address.)
    static func scheduleNextSample(_ cache: UnsafeMutablePointer<ThreadCache>, period: UInt64) {
        let p = min(period, UInt64(Int64.max >> 4))
        let now = cache.pointee.calls.requestedBytes
        var next = cache.pointee.calls.profileTarget
        var state = cache.pointee.calls.profileRandom
        if state == 0 { state = (UInt64(cache.pointee.linkKey) ^ UInt64(UInt(bitPattern: cache))) | 1 }
        while Int64(bitPattern: now &- next) >= 0 {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            let r = state &* 0x2545_F491_4F6C_DD1D
            next &+= max(1, p / 2 &+ r % p)
        }
        cache.pointee.calls.profileRandom = state
        cache.pointee.calls.profileTarget = next
    }

    @inline(never)
    static func sample(_ block: UnsafeMutableRawPointer, size: UInt64, period: UInt64) {
        let (weight, blocks) = estimates(size: size, period: period)
        // Whatever the unwinder or dladdr allocate goes to glibc.
        buddy_thread_enter()
        defer { buddy_thread_leave() }
        guard let table = table() else { return }
        var frames: (UInt, UInt, UInt, UInt, UInt, UInt, UInt, UInt) = (0, 0, 0, 0, 0, 0, 0, 0)
        let count = withUnsafeMutableBytes(of: &frames) { raw in
            Int(buddy_backtrace(raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: UnsafeMutableRawPointer?.self), Int32(maxFrames)))
        }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for i in 0..<count {
            let frame = withUnsafeBytes(of: &frames) { $0.load(fromByteOffset: i &* 8, as: UInt.self) }
            hash = (hash ^ UInt64(frame)) &* 0x100_0000_01b3
        }
        if hash == 0 { hash = 1 }
        var index = findSite(table, hash)
        if index < 0 {
            // A new stack: symbolize it outside every lock, then insert it.
            var texts = (emptyTextStorage(), emptyTextStorage())
            withUnsafeMutableBytes(of: &texts) { raw in
                let base = raw.baseAddress.unsafelyUnwrapped
                for i in 0..<count {
                    let frame = withUnsafeBytes(of: &frames) { $0.load(fromByteOffset: i &* 8, as: UInt.self) }
                    _ = buddy_locate(UnsafeRawPointer(bitPattern: frame), (base + i &* frameText).assumingMemoryBound(to: CChar.self), frameText)
                }
                index = insertSite(table, hash, texts: base, count: count)
            }
            withUnsafeBytes(of: &frames) { registerModules(table, frames: $0.baseAddress.unsafelyUnwrapped, count: count) }
        }
        guard index >= 0 else {
            buddy_atomic_add_u64_relaxed(word(table, 16), 1) // dropped: the site table is full
            return
        }
        let s = site(table, index)
        word(table, 24).pointee = period // the same for the whole process: freed() reads it
        buddy_atomic_add_u64_relaxed(word(s, allocatedBytesOffset), weight)
        buddy_atomic_add_u64_relaxed(word(s, allocatedBlocksOffset), blocks)
        guard remember(table, UInt(bitPattern: block), site: index, size: size) else {
            buddy_atomic_add_u64_relaxed(word(table, 16), 1) // dropped: the block table is full
            return
        }
        buddy_atomic_add_u64_relaxed(word(s, liveBytesOffset), weight)
        buddy_atomic_add_u64_relaxed(word(s, liveBlocksOffset), blocks)
        buddy_atomic_add_u64_relaxed(word(s, liveCountOffset), 1)
        buddy_atomic_add_u64_relaxed(word(s, samplesOffset), 1)
    }

    /// The site of `hash`, or -1 (no lock: sites are published whole and never move).
    static func findSite(_ table: UnsafeMutableRawPointer, _ hash: UInt64) -> Int {
        var i = Int(hash % UInt64(siteCapacity))
        for _ in 0..<siteCapacity {
            let h = buddy_atomic_load_u64_acquire(word(site(table, i), hashOffset))
            if h == hash { return i }
            if h == 0 { return -1 }
            i = (i &+ 1) % siteCapacity
        }
        return -1
    }

    static func insertSite(_ table: UnsafeMutableRawPointer, _ hash: UInt64, texts: UnsafeMutableRawPointer, count: Int) -> Int {
        let lock = table.assumingMemoryBound(to: UInt32.self)
        buddy_spin_lock(lock)
        defer { buddy_spin_unlock(lock) }
        let used = word(table, 8)
        var i = Int(hash % UInt64(siteCapacity))
        for _ in 0..<siteCapacity {
            let s = site(table, i)
            let h = buddy_atomic_load_u64_acquire(word(s, hashOffset))
            if h == hash { return i }
            if h == 0 {
                if used.pointee >= UInt64(siteCapacity * 7 / 8) { return -1 }
                (s + textOffset).copyMemory(from: texts, byteCount: maxFrames * frameText)
                s.storeBytes(of: count, toByteOffset: frameCountOffset, as: Int.self)
                used.pointee &+= 1
                buddy_atomic_store_u64_release(word(s, hashOffset), hash)
                return i
            }
            i = (i &+ 1) % siteCapacity
        }
        return -1
    }

    /// In a forked child: the profile's spin locks (the site table's and each stripe's) may have
    /// been held by a thread that does not exist here, and would stop the child's first sample
    /// forever. They are freed; an entry a vanished thread was moving may be counted twice or
    /// lost, which skews the child's profile by a sample, never its allocations. (Not taken
    /// in fork's prepare handler: a spin lock has no owner, and a signal handler that forks may
    /// interrupt its own thread holding one.)
    static func resetLocksInChild() {
        guard let table = buddy_profile_table_get() else { return }
        buddy_spin_unlock(table.assumingMemoryBound(to: UInt32.self))
        for i in 0..<stripes {
            buddy_spin_unlock((table + stripesOffset + i &* stripeBytes).assumingMemoryBound(to: UInt32.self))
        }
    }

    // MARK: Sampled blocks

    @inline(__always) static func stripe(_ table: UnsafeMutableRawPointer, _ address: UInt) -> (UnsafeMutableRawPointer, Int) {
        let mixed = UInt64(address >> 4) &* 0x9E37_79B9_7F4A_7C15
        let s = table + stripesOffset + Int(mixed >> 60) &* stripeBytes
        return (s, Int((mixed >> 20) % UInt64(stripeCapacity)))
    }

    @inline(__always) static func entry(_ stripe: UnsafeMutableRawPointer, _ i: Int) -> UnsafeMutablePointer<UInt64> {
        (stripe + stripeHeaderBytes + i &* 16).assumingMemoryBound(to: UInt64.self)
    }

    static func remember(_ table: UnsafeMutableRawPointer, _ address: UInt, site: Int, size: UInt64) -> Bool {
        let (s, home) = stripe(table, address)
        let lock = s.assumingMemoryBound(to: UInt32.self)
        let used = word(s, 8)
        buddy_spin_lock(lock)
        defer { buddy_spin_unlock(lock) }
        if used.pointee >= UInt64(stripeCapacity * 3 / 4) { return false }
        var i = home
        while true {
            let e = entry(s, i)
            if e[0] == 0 || e[0] == UInt64(address) {
                if e[0] == 0 {
                    used.pointee &+= 1
                    buddy_atomic_add_u64_relaxed(filterCounter(table, address), 1)
                }
                e[0] = UInt64(address)
                e[1] = UInt64(site) << 48 | min(size, (1 << 48) - 1)
                return true
            }
            i = (i &+ 1) % stripeCapacity
        }
    }

    /// Whether the block at `address` may be sampled (free's fast path asks before `freed`):
    /// false, with one load, for a block no sampled block's address hashes with.
    @inline(__always) static func maySample(_ address: UInt) -> Bool {
        guard let table = buddy_profile_table_get() else { return false }
        return buddy_atomic_load_u64_relaxed(filterCounter(table, address)) != 0
    }

    /// The program freed `pointer`: if it was sampled, its site's live figures go down.
    @inline(never)
    static func freed(_ pointer: UnsafeMutableRawPointer) {
        guard let table = buddy_profile_table_get() else { return }
        let address = UInt(bitPattern: pointer)
        if buddy_atomic_load_u64_relaxed(filterCounter(table, address)) == 0 { return }
        let (s, home) = stripe(table, address)
        let used = word(s, 8)
        if buddy_atomic_load_u64_relaxed(used) == 0 { return }
        let lock = s.assumingMemoryBound(to: UInt32.self)
        buddy_spin_lock(lock)
        var i = home
        var found: UInt64 = 0
        while true {
            let e = entry(s, i)
            if e[0] == 0 { break }
            if e[0] == UInt64(address) {
                found = e[1]
                // Backward-shift deletion: pull later entries of the run into the hole.
                var hole = i
                var j = (i &+ 1) % stripeCapacity
                while entry(s, j)[0] != 0 {
                    let (_, want) = stripe(table, UInt(entry(s, j)[0]))
                    // Move j into the hole unless its home lies cyclically in (hole, j].
                    let inRange = hole <= j ? (want > hole && want <= j) : (want > hole || want <= j)
                    if !inRange {
                        entry(s, hole)[0] = entry(s, j)[0]
                        entry(s, hole)[1] = entry(s, j)[1]
                        hole = j
                    }
                    j = (j &+ 1) % stripeCapacity
                }
                entry(s, hole)[0] = 0
                entry(s, hole)[1] = 0
                used.pointee &-= 1
                buddy_atomic_add_u64_relaxed(filterCounter(table, address), 0 &- 1)
                break
            }
            i = (i &+ 1) % stripeCapacity
        }
        buddy_spin_unlock(lock)
        guard found != 0 else { return } // not sampled (the site's index or the size is not 0)
        let siteIndex = Int(found >> 48)
        let (weight, blocks) = estimates(size: found & ((1 << 48) - 1), period: word(table, 24).pointee)
        let r = site(table, siteIndex)
        buddy_atomic_add_u64_relaxed(word(r, liveBytesOffset), 0 &- weight)
        buddy_atomic_add_u64_relaxed(word(r, liveBlocksOffset), 0 &- blocks)
        buddy_atomic_add_u64_relaxed(word(r, liveCountOffset), 0 &- 1)
    }

    // MARK: Report

    static let topSites = 20

    /// The index of the site with the most live bytes below `(bound, boundIndex)` in the order
    /// (live bytes descending, index ascending), or -1: selection without sorting or memory.
    static func nextSite(_ table: UnsafeMutableRawPointer, below bound: UInt64, _ boundIndex: Int) -> Int {
        var best = -1
        var bestBytes: UInt64 = 0
        for i in 0..<siteCapacity {
            let s = site(table, i)
            if buddy_atomic_load_u64_acquire(word(s, hashOffset)) == 0 { continue }
            let bytes = buddy_atomic_load_u64_relaxed(word(s, liveBytesOffset))
            if Int64(bitPattern: bytes) <= 0 { continue }
            let after = bytes < bound || (bytes == bound && i > boundIndex)
            if !after { continue }
            if best < 0 || bytes > bestBytes { best = i; bestBytes = bytes }
        }
        return best
    }
}

extension ReportWriter {
    /// The sites holding the most live bytes, largest first (the process pool's report, with
    /// BUDDY_PROFILE_SAMPLE set; a private pool's has none).
    mutating func writeProfile() {
        typealias Profile = AllocationProfile
        let period = figures.pointee.processPool ? buddy_report_settings_get().pointee.profile_sample : 0
        let table = period != 0 ? buddy_profile_table_get() : nil
        if json {
            out.append("{ ")
            out.append(jsonKey: "sample_bytes")
            out.append(decimal: period)
            out.append(", ")
            out.append(jsonKey: "sites")
            out.append("[")
        } else {
            guard period != 0 else { return }
            out.append("  profile     one sample per ")
            out.append(bytes: period)
            out.append(" allocated")
            guard table != nil else { out.append(": no samples yet\n"); return }
            out.append("; the sites holding the most live bytes (estimated):\n")
        }
        guard let table else {
            if json { out.append("] }") }
            return
        }
        var any = false
        var bound = UInt64.max, boundIndex = -1
        for _ in 0..<Profile.topSites {
            let i = Profile.nextSite(table, below: bound, boundIndex)
            if i < 0 { break }
            let s = Profile.site(table, i)
            bound = buddy_atomic_load_u64_relaxed(Profile.word(s, Profile.liveBytesOffset))
            boundIndex = i
            record = UnsafeRawPointer(s)
            if json { writeElement(.profileSite, first: !any) } else { writeText(.profileSite) }
            any = true
        }
        record = nil
        if json {
            out.append(any ? "\n  ], " : "], ")
            out.append(jsonKey: "dropped_samples")
            out.append(decimal: buddy_atomic_load_u64_relaxed(Profile.word(table, 16)))
            out.append(", ")
            out.append(jsonKey: "modules")
            out.append("[")
            let modules = Int(buddy_atomic_load_u64_acquire(Profile.word(table, 32)))
            for m in 0..<min(modules, Profile.moduleCapacity) {
                let entry = Profile.module(table, m)
                out.append(m == 0 ? "\n    { " : ",\n    { ")
                out.append(jsonKey: "base")
                out.append(byte: 34)
                out.append(hex: entry.load(as: UInt.self))
                out.append("\", ")
                out.append(jsonKey: "name")
                out.append(jsonCString: UnsafePointer((entry + 8).assumingMemoryBound(to: UInt8.self)))
                out.append(", ")
                out.append(jsonKey: "path")
                out.append(jsonCString: UnsafePointer((entry + 8 + Profile.moduleNameBytes).assumingMemoryBound(to: UInt8.self)))
                out.append(", ")
                out.append(jsonKey: "build_id")
                out.append(jsonCString: UnsafePointer((entry + 8 + Profile.moduleNameBytes + Profile.modulePathBytes).assumingMemoryBound(to: UInt8.self)))
                out.append(" }")
            }
            out.append(modules > 0 ? "\n  ] }" : "] }")
        }
    }
}
