// The design document's example 9.1 in Swift: a pool, two allocations, two frees.
//
//     swift run PoolExampleBasic
import BuddyPool
#if canImport(Glibc)
import Glibc
#endif

do {
    // MemoryPool pool(1024 * 1024, 16, 1024 * 1024, true, 2.0);
    let pool = try MemoryPool(.init(initialSize: 1024 * 1024, minBlockSize: 16, maxBlockSize: 1024 * 1024,
                                    isThreadSafe: true, growthFactor: 2.0))

    let ptr1 = try pool.allocate(byteCount: 100)
    print("allocated 100 bytes at \(ptr1): a block of \(pool.blockSize(of: ptr1)!) bytes")

    let ptr2 = try pool.allocate(byteCount: 1024)
    print("allocated 1 KiB at \(ptr2): a block of \(pool.blockSize(of: ptr2)!) bytes")

    try pool.deallocate(ptr1)
    print("freed ptr1")
    try pool.deallocate(ptr2)
    print("freed ptr2")

    // Freeing ptr1 again is an error the pool detects (and survives).
    do {
        try pool.deallocate(ptr1)
    } catch {
        print("freeing ptr1 twice: \(error.name) (code \(error.code))")
    }

    let stats = pool.stats
    print("pool: \(stats.totalBytes) bytes, \(stats.usedBytes) used, \(stats.allocationCount) allocations, \(stats.deallocationCount) frees")
} catch {
    print("memory pool error: \(error)")
    exit(1)
}
