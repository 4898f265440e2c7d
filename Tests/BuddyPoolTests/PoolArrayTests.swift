import Synchronization
import Testing
@testable import BuddyPool

/// Counts live instances, to prove a PoolArray destroys its elements.
final class Tracker: Sendable {
    let live = Atomic<Int>(0)
}

struct Tracked: ~Copyable {
    let value: Int
    let tracker: Tracker
    init(_ value: Int, _ tracker: Tracker) {
        self.value = value
        self.tracker = tracker
        tracker.live.add(1, ordering: .relaxed)
    }
    deinit { tracker.live.subtract(1, ordering: .relaxed) }
}

@Suite("PoolArray")
struct PoolArrayTests {
    @Test("append, subscript, count, forEach, removeLast, elements")
    func basics() throws {
        let pool = MemoryPool()
        var array = try PoolArray<Int>(pool: pool)
        #expect(array.isEmpty && array.count == 0 && array.capacity == 0)
        for i in 0..<1000 { try array.append(i * i) }
        #expect(array.count == 1000 && array.capacity >= 1000)
        #expect(array[999] == 999 * 999)
        array[0] = -1
        array[1] += 10
        #expect(array[0] == -1 && array[1] == 11)
        var sum = 0
        array.forEach { sum += $0 }
        #expect(sum == (0..<1000).reduce(0) { $0 + $1 * $1 } - 0 + -1 + 10)
        #expect(array.removeLast() == 999 * 999 && array.count == 999)
        #expect(array.elements.count == 999 && array.elements[2] == 4)
        #expect(array.withUnsafeBufferPointer { $0.count } == 999)
        array.withUnsafeMutableBufferPointer { $0[5] = 5 }
        #expect(array[5] == 5)
        #expect(array.indices == 0..<999)
        array.removeAll()
        #expect(array.isEmpty && array.capacity > 0)
        // The storage is one pool block, grown in place to 1024 Ints.
        #expect(array.capacity == 1024 && pool.stats.usedBytes == 8192)
    }

    @Test("its block goes back to the pool when it goes away")
    func freesItsBlock() throws {
        let pool = MemoryPool()
        do {
            var array = try PoolArray<UInt64>(pool: pool, capacity: 100)
            #expect(array.capacity == 128) // the whole 1 KiB block
            for i in 0..<100 { try array.append(UInt64(i)) }
            #expect(pool.stats.usedBytes == 1024)
        }
        #expect(pool.stats.usedBytes == 0)
        #expect(pool.stats.allocationCount == pool.stats.deallocationCount)
        expectIntact(pool)
    }

    @Test("noncopyable elements are destroyed by removeLast, removeAll and deinit")
    func noncopyable() throws {
        let pool = MemoryPool()
        let tracker = Tracker()
        do {
            var array = try PoolArray<Tracked>(pool: pool)
            for i in 0..<50 { try array.append(Tracked(i, tracker)) }
            #expect(tracker.live.load(ordering: .relaxed) == 50)
            #expect(array[49].value == 49)
            var total = 0
            array.forEach { total += $0.value }
            #expect(total == 49 * 50 / 2)
            let last = array.removeLast()
            #expect(last.value == 49 && tracker.live.load(ordering: .relaxed) == 50)
            _ = consume last
            #expect(tracker.live.load(ordering: .relaxed) == 49)
        }
        #expect(tracker.live.load(ordering: .relaxed) == 0)
        var cleared = try PoolArray<Tracked>(pool: pool)
        for i in 0..<10 { try cleared.append(Tracked(i, tracker)) }
        cleared.removeAll()
        #expect(tracker.live.load(ordering: .relaxed) == 0)
    }

    @Test("growth is in place while the buddies above are free")
    func growsInPlace() throws {
        let pool = MemoryPool()
        var array = try PoolArray<UInt8>(pool: pool, capacity: 16)
        try array.append(1)
        let start = array.withUnsafeBufferPointer { $0.baseAddress! }
        for i in 0..<4000 { try array.append(UInt8(truncatingIfNeeded: i)) }
        #expect(array.withUnsafeBufferPointer { $0.baseAddress! } == start, "grew by absorbing free buddies, no copy")
        #expect(pool.stats.allocationCount == 1)
        // A block above it blocks in-place growth: the array moves.
        let blocker = try pool.allocate(byteCount: array.capacity)
        let capacity = array.capacity
        for _ in array.count...capacity { try array.append(0) }
        #expect(array.withUnsafeBufferPointer { $0.baseAddress! } != start)
        #expect(array[0] == 1 && array[4000] == UInt8(truncatingIfNeeded: 3999))
        try pool.deallocate(blocker)
        expectIntact(pool)
    }

    @Test("more than the largest block is out of memory, and the array is unchanged")
    func tooLarge() throws {
        let pool = try MemoryPool(.init(initialSize: 64 << 10, maxBlockSize: 64 << 10))
        var array = try PoolArray<UInt64>(pool: pool)
        for i in 0..<(8 << 10) { try array.append(UInt64(i)) }
        #expect(throws: PoolError.outOfMemory) { try array.append(0) }
        #expect(array.count == 8 << 10 && array[8191] == 8191)
        #expect(throws: PoolError.outOfMemory) { _ = try PoolArray<UInt64>(pool: pool, capacity: 10_000) }
    }

    @Test("after pool.reset() the array is empty and usable again")
    func afterReset() throws {
        let pool = MemoryPool()
        var array = try PoolArray<Int>(pool: pool)
        for i in 0..<100 { try array.append(i) }
        pool.reset()
        #expect(array.count == 0 && array.capacity == 0)
        try array.append(42)
        #expect(array.count == 1 && array[0] == 42)
        #expect(pool.stats.usedBytes > 0)
    }

    @Test("zero-sized elements")
    func zeroSized() throws {
        let pool = MemoryPool()
        var array = try PoolArray<Void>(pool: pool)
        for _ in 0..<10 { try array.append(()) }
        #expect(array.count == 10)
    }
}
