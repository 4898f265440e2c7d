import CBuddySupport
import Foundation
import Glibc
import Synchronization
import Testing
@testable import BuddyEngine
@testable import BuddyMallocCore

/// The statistics of a private engine (no C layer): per-order splits and coalesces counted by the
/// engine, live blocks from the order maps, the snapshot's memory equations, and the report's
/// number formatting.
@Suite struct StatsTests {
    @Test func perOrderCountersAndSnapshotOfAPrivatePool() throws {
        let arena = Arena(size: 64 * 1024)
        let pool = try makePool(arena: arena)
        // One 16-byte block splits the 64 KiB block down to order 0: one split at each order 1...12.
        let a = try #require(pool.allocate(order: 0))
        for order in 1...12 { #expect(pool.state.pointee.stats.splits[order] == 1, "order \(order)") }
        #expect(pool.state.pointee.stats.splits[0] == 0)
        let b = try #require(pool.allocate(order: 5)) // 512 B, from the free 512 B half
        var s = buddy_stats()
        withUnsafeMutablePointer(to: &s) { #expect(pool.snapshot(into: $0, locking: .wait)) }
        #expect(s.version == UInt32(BUDDY_STATS_VERSION) && Int(s.size) == MemoryLayout<buddy_stats>.size)
        #expect(s.reserved == 65536 && s.used == 16 + 512 && s.cached == 0 && s.free == 65536 - 528)
        #expect(s.reserved == s.used + s.cached + s.free)
        #expect(s.live_allocations == 2 && s.order_count == 13)
        withUnsafeMutablePointer(to: &s) { p in
            let orders = statsOrders(p)
            #expect(orders[0].live == 1 && orders[5].live == 1 && orders[0].block_size == 16 && orders[12].block_size == 65536)
            // The free halves: one block at each order 0...11 except 5 (taken by b).
            for order in 0...11 { #expect(orders[order].free == (order == 5 ? 0 : 1), "order \(order)") }
            var splits: UInt64 = 0
            for order in 0...12 { splits += orders[order].splits }
            #expect(splits == pool.counters.splits)
        }
        #expect(s.largest_free_block == 32768 && abs(s.external_fragmentation - (1 - 32768.0 / Double(s.free))) < 1e-9)
        #expect(s.calls.0 == 2) // malloc: one engine call per call in a private pool
        // Freeing both coalesces back to one top-order block: one coalesce at each order 0...11.
        _ = pool.release(a)
        _ = pool.release(b)
        for order in 0...11 { #expect(pool.state.pointee.stats.coalesces[order] == 1, "order \(order)") }
        #expect(pool.state.pointee.stats.coalesces[12] == 0)
        withUnsafeMutablePointer(to: &s) { #expect(pool.snapshot(into: $0, locking: .attempt)) }
        #expect(s.used == 0 && s.live_allocations == 0 && s.peak_live_allocations == 2 && s.external_fragmentation == 0)
        #expect(s.health == UInt32(Health.healthy))
        expectInvariants(pool)
        pool.destroy()
    }

    /// A private pool's peak of live blocks is the engine's own count, kept at every allocation:
    /// exact, not sampled at snapshots.
    @Test func peakLiveBlocksOfAPrivatePoolIsExact() throws {
        let arena = Arena(size: 1 << 20)
        let pool = try makePool(arena: arena)
        var blocks: [UnsafeMutableRawPointer] = []
        for i in 0..<300 { blocks.append(try #require(pool.allocate(order: i % 5))) }
        for block in blocks { _ = pool.release(block) }
        blocks.removeAll()
        for i in 0..<120 { blocks.append(try #require(pool.allocate(order: (i * 3) % 7))) }
        var s = buddy_stats()
        withUnsafeMutablePointer(to: &s) { #expect(pool.snapshot(into: $0, locking: .wait)) }
        #expect(s.live_allocations == 120 && s.peak_live_allocations == 300, "live \(s.live_allocations) peak \(s.peak_live_allocations)")
        // Resetting the counters restarts the peak at what is live; freeing everything keeps it.
        pool.resetCounters()
        pool.reset()
        withUnsafeMutablePointer(to: &s) { #expect(pool.snapshot(into: $0, locking: .wait)) }
        #expect(s.live_allocations == 0 && s.peak_live_allocations == 120, "live \(s.live_allocations) peak \(s.peak_live_allocations)")
        for _ in 0..<7 { _ = try #require(pool.allocate(order: 3)) }
        withUnsafeMutablePointer(to: &s) { #expect(pool.snapshot(into: $0, locking: .wait)) }
        #expect(s.live_allocations == 7 && s.peak_live_allocations == 120)
        expectInvariants(pool)
        pool.destroy()
    }

    /// Threads sharing a private pool allocate under its lock, so its peak stays exact: 4 threads
    /// that each hold 200 blocks at one moment (a barrier), then free them, peak at 800.
    @Test func peakLiveBlocksIsExactWithThreadsSharingAPrivatePool() throws {
        let arena = Arena(size: 1 << 20)
        let pool = try makePool(arena: arena)
        pool.setThreadSafety(.always)
        let threads = 4, perThread = 200
        let arrived = Atomic<Int>(0)
        let failures = Atomic<Int>(0)
        let address = UInt(bitPattern: pool.identity)
        let group = DispatchGroup()
        for thread in 0..<threads {
            group.enter()
            Thread {
                let pool = BuddyEngine(state: UnsafeMutablePointer(bitPattern: address)!)
                var held: [UnsafeMutableRawPointer] = []
                held.reserveCapacity(perThread)
                for i in 0..<perThread {
                    let locked = pool.lock()
                    let block = pool.allocate(order: (thread + i) % 4)
                    pool.unlock(locked)
                    if let block { held.append(block) } else { failures.add(1, ordering: .relaxed) }
                }
                arrived.add(1, ordering: .acquiringAndReleasing)
                while arrived.load(ordering: .acquiring) < threads { sched_yield() }
                for block in held {
                    let locked = pool.lock()
                    _ = pool.release(block)
                    pool.unlock(locked)
                }
                group.leave()
            }.start()
        }
        group.wait()
        #expect(failures.load(ordering: .relaxed) == 0)
        var s = buddy_stats()
        withUnsafeMutablePointer(to: &s) { #expect(pool.snapshot(into: $0, locking: .wait)) }
        #expect(s.live_allocations == 0 && s.peak_live_allocations == UInt64(threads * perThread),
                "live \(s.live_allocations) peak \(s.peak_live_allocations)")
        expectInvariants(pool)
        pool.destroy()
    }

    @Test func resizingInPlaceCountsPerOrder() throws {
        let arena = Arena(size: 64 * 1024)
        let pool = try makePool(arena: arena)
        let p = try #require(pool.allocate(order: 2))
        let splitsBefore = pool.state.pointee.stats.splits[2]
        #expect(pool.resizeInPlace(p, from: 2, to: 0)) // shrinking splits the order-2 and order-1 blocks
        #expect(pool.state.pointee.stats.splits[2] == splitsBefore + 1 && pool.state.pointee.stats.splits[1] >= 1)
        let coalescesBefore = pool.state.pointee.stats.coalesces[0]
        #expect(pool.resizeInPlace(p, from: 0, to: 2)) // growing merges back at orders 0 and 1
        #expect(pool.state.pointee.stats.coalesces[0] == coalescesBefore + 1)
        expectInvariants(pool)
        pool.destroy()
    }

    @Test func healthThresholds() {
        var s = buddy_stats()
        s.reserved = 128 << 20; s.free = 100 << 20; s.used = 28 << 20; s.max_block = 1 << 20
        s.usage = Double(s.used) / Double(s.reserved)
        withUnsafeMutablePointer(to: &s) { p in
            #expect(Health(p).status == Health.healthy)
            p.pointee.external_fragmentation = 0.6
            #expect(Health(p).status == Health.warning && Health(p).fragmentation == Health.warning)
            p.pointee.external_fragmentation = 0.95
            #expect(Health(p).status == Health.critical)
            p.pointee.external_fragmentation = 0
            p.pointee.double_frees = 1
            #expect(Health(p).status == Health.critical && Health(p).badPointers == Health.critical)
            p.pointee.double_frees = 0
            statsCalls(p)[Entry.malloc.rawValue] = 1000
            statsFailures(p)[Entry.malloc.rawValue] = 1
            #expect(Health(p).status == Health.warning)
            statsFailures(p)[Entry.malloc.rawValue] = 10
            #expect(Health(p).status == Health.critical)
            statsFailures(p)[Entry.malloc.rawValue] = 0
            p.pointee.used = 1 << 20
            p.pointee.usage = Double(p.pointee.used) / Double(p.pointee.reserved)
            #expect(Health(p).idle == Health.warning)
            p.pointee.max_pool_size = 1 << 20
            #expect(Health(p).limit == Health.critical)
        }
    }

    @Test func numbersInTheReport() {
        let render = captured
        #expect(render { $0.append(fixed: 0.14349, digits: 4) } == "0.1435")
        #expect(render { $0.append(fixed: 1764012345.5, digits: 6) } == "1764012345.500000")
        #expect(render { $0.append(fixed: -2.5, digits: 1) } == "-2.5")
        #expect(render { $0.append(fixed: .nan, digits: 2) } == "0.00")
        #expect(render { $0.append(percent: 0.256) } == "26%")
        #expect(render { $0.append(bytes: 1536) } == "1.5K" && render { $0.append(bytes: 200 << 20) } == "200M")
        #expect(render { $0.append(duration: 850) } == "850ns" && render { $0.append(duration: 3_400_000) } == "3.4ms")
        let quoted: StaticString = "a\"b\\c\nd"
        #expect(render { $0.append(jsonString: quoted) } == "\"a\\\"b\\\\c\\u000ad\"")
        #expect(render { $0.append(decimal: 42, width: 5) } == "   42")
        // Longer than the sink's buffer: flushed along the way, nothing lost.
        #expect(render { for _ in 0..<1000 { $0.append("abcde") } }.count == 5000)
    }
}
