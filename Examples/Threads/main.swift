// The design document's example 9.2 in Swift: four threads allocate and free on one
// thread-safe pool, then the main thread prints the pool's statistics.
//
//     swift run PoolExampleThreads
import BuddyPool
import Foundation
import Synchronization

/// A small seeded generator (the C++ example uses rand()): each thread gets its own sequence.
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

func worker(_ pool: MemoryPool, _ id: Int, _ counter: borrowing Atomic<Int>) {
    let allocations = 1000
    var pointers: [UnsafeMutableRawPointer] = []
    var random = SplitMix64(state: UInt64(id))
    do {
        for _ in 0..<allocations {
            // 16 to 271 bytes.
            let size = Int.random(in: 16...271, using: &random)
            pointers.append(try pool.allocate(byteCount: size))
            // Free one now and then.
            if Int.random(in: 0..<3, using: &random) == 0, let last = pointers.popLast() {
                try pool.deallocate(last)
            }
        }
        for pointer in pointers { try pool.deallocate(pointer) }
        counter.add(allocations, ordering: .relaxed)
    } catch {
        print("thread \(id) error: \(error)")
    }
}

final class Shared: Sendable {
    let counter = Atomic<Int>(0)
}

// A thread-safe pool of 10 MiB.
let pool = try MemoryPool(.init(initialSize: 10 * 1024 * 1024))
let shared = Shared()
let threadCount = 4
let group = DispatchGroup()
for id in 0..<threadCount {
    group.enter()
    Thread {
        worker(pool, id, shared.counter)
        group.leave()
    }.start()
}
group.wait()

print("all threads done, total allocations: \(shared.counter.load(ordering: .relaxed))")
let stats = pool.stats
print("memory pool statistics:")
print("  total memory: \(stats.totalBytes) bytes")
print("  used memory: \(stats.usedBytes) bytes")
print("  free memory: \(stats.freeBytes) bytes")
print("  allocations: \(stats.allocationCount)")
print("  deallocations: \(stats.deallocationCount)")
print("  memory usage: \(stats.usagePercent)%")
print("  peak used: \(stats.peakUsedBytes) bytes")
