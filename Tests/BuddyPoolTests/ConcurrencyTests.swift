import Foundation
import Synchronization
import Testing
@testable import BuddyPool

/// Runs `body(thread)` on `count` threads at once and waits for all of them.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    let start = DispatchSemaphore(value: 0)
    for thread in 0..<count {
        group.enter()
        Thread {
            start.wait()
            body(thread)
            group.leave()
        }.start()
    }
    for _ in 0..<count { start.signal() }
    group.wait()
}

/// A seeded generator, one per thread, so a failing run can be repeated.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("MemoryPool under threads")
struct ConcurrencyTests {
    @Test("8 threads allocate, write, check and free at random on one thread-safe pool", arguments: [4, 8])
    func randomTraffic(_ threads: Int) throws {
        let pool = try MemoryPool(.init(initialSize: 256 << 10))
        let failures = Atomic<Int>(0)
        let operations = 4000
        onThreads(threads) { thread in
            var random = SplitMix64(state: UInt64(thread) &* 7919)
            var live: [(UnsafeMutableRawPointer, Int, UInt8)] = []
            for step in 0..<operations {
                if !live.isEmpty && (Int.random(in: 0..<5, using: &random) < 2 || live.count > 200) {
                    let (p, size, tag) = live.remove(at: Int.random(in: 0..<live.count, using: &random))
                    // Nobody else wrote into our block.
                    if p.load(as: UInt8.self) != tag || p.load(fromByteOffset: size - 1, as: UInt8.self) != tag {
                        failures.add(1, ordering: .relaxed)
                    }
                    if !pool.tryDeallocate(p) { failures.add(1, ordering: .relaxed) }
                } else {
                    let size = Int.random(in: 1...(step % 10 == 0 ? 70_000 : 600), using: &random)
                    guard let p = pool.tryAllocate(byteCount: size, alignment: 1 << Int.random(in: 0...6, using: &random)) else {
                        failures.add(1, ordering: .relaxed)
                        continue
                    }
                    let tag = UInt8(truncatingIfNeeded: thread &* 31 &+ step)
                    p.initializeMemory(as: UInt8.self, repeating: tag, count: size)
                    live.append((p, size, tag))
                }
            }
            for (p, _, _) in live where !pool.tryDeallocate(p) { failures.add(1, ordering: .relaxed) }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
        let stats = pool.stats
        #expect(stats.usedBytes == 0)
        #expect(stats.allocationCount == stats.deallocationCount)
        #expect(pool.errorStats.allocationFailures == 0 && pool.errorStats.deallocationFailures == 0)
        expectIntact(pool)
    }

    @Test("threads racing to free the same block: exactly one succeeds")
    func racingDoubleFree() throws {
        let pool = try MemoryPool(.init(errorStrategy: .returnNil))
        for _ in 0..<50 {
            let p = try pool.allocate(byteCount: 48)
            let successes = Atomic<Int>(0)
            let address = UInt(bitPattern: p)
            onThreads(4) { _ in
                if pool.tryDeallocate(UnsafeMutableRawPointer(bitPattern: address)!) { successes.add(1, ordering: .relaxed) }
            }
            #expect(successes.load(ordering: .relaxed) == 1)
        }
        #expect(pool.errorStats.doubleFrees == 150)
        expectIntact(pool)
    }

    @Test("two pools used by threads at once stay independent")
    func twoPools() throws {
        let a = MemoryPool(), b = MemoryPool()
        onThreads(4) { thread in
            let mine = thread % 2 == 0 ? a : b, other = thread % 2 == 0 ? b : a
            for i in 0..<2000 {
                guard let p = mine.tryAllocate(byteCount: 16 + i % 300) else { continue }
                // The other pool refuses it and stays intact; ours frees it.
                if other.tryDeallocate(p) { fatalError("a pool freed another pool's block") }
                mine.tryDeallocate(p)
            }
        }
        #expect(a.stats.usedBytes == 0 && b.stats.usedBytes == 0)
        #expect(a.errorStats.invalidPointerErrors == 4000 && b.errorStats.invalidPointerErrors == 4000)
        expectIntact(a)
        expectIntact(b)
    }

    @Test("PoolArrays on several threads share one pool")
    func arraysOnThreads() throws {
        let pool = MemoryPool()
        let sums = Mutex<[Int]>([])
        onThreads(4) { thread in
            do {
                var array = try PoolArray<Int>(pool: pool)
                for i in 0..<5000 { try array.append(i &* (thread + 1)) }
                var sum = 0
                array.forEach { sum += $0 }
                sums.withLock { $0.append(sum) }
            } catch {
                sums.withLock { $0.append(-1) }
            }
        }
        #expect(sums.withLock { $0.sorted() } == (1...4).map { 5000 * 4999 / 2 * $0 })
        #expect(pool.stats.usedBytes == 0)
        expectIntact(pool)
    }
}
