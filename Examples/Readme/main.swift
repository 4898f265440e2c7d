import BuddyPool

let pool = MemoryPool()                          // 1 MiB; blocks of 16 B to 1 MiB; thread safe
let p = try pool.allocate(byteCount: 100)        // a 128-byte block, 16-byte aligned
print(pool.blockSize(of: p)!)                    // 128
try pool.deallocate(p)
do {
    try pool.deallocate(p)                       // freed twice: refused, the pool unchanged
} catch {
    print(error.name)                            // INVALID_POINTER
}

var squares = try PoolArray<Int>(pool: pool)     // a growable array in one pool block
for i in 0..<100 { try squares.append(i * i) }
print(squares[99], pool.stats.usedBytes)         // 9801 1024
