import CBuddySupport

/// The one counter-table type: 64 counters in fixed storage (no Swift allocation), indexed by
/// an allocation code (orders 0...Geometry.orderLimit and the slab classes' codes above them:
/// every value a tag's order field can hold), by a C entry point (`Entry`), or by a power of two
/// (slot b counts values v with 2^(b-1) < v <= 2^b; slot 0: v <= 1).
///
/// Plain adds by a table's owner (a thread's cache, or a pool under its lock); atomic adds and
/// loads where several threads share a table.
public struct CounterTable {
    package static let count = 64
    private var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
        = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    package init() {}

    @inlinable @inline(__always) public subscript(_ i: Int) -> UInt64 {
        get { withUnsafeBytes(of: self) { $0.load(fromByteOffset: i &* 8, as: UInt64.self) } }
        set { withUnsafeMutableBytes(of: &self) { $0.storeBytes(of: newValue, toByteOffset: i &* 8, as: UInt64.self) } }
    }

    /// Slot `i`, read in place. The subscript's getter reads a copy: reached through a pointer
    /// (a thread cache's counters), the table's 512 bytes are copied to the stack first (at each
    /// bin overflow, stashBatch: a memcpy of 76 instructions per counter read).
    @inlinable @inline(__always) public mutating func load(_ i: Int) -> UInt64 {
        withUnsafeMutableBytes(of: &self) { $0.load(fromByteOffset: i &* 8, as: UInt64.self) }
    }

    /// Adds `n` (wrapping: a negative correction is `0 &- n`).
    @inlinable @inline(__always) public mutating func add(_ i: Int, _ n: UInt64 = 1) {
        withUnsafeMutableBytes(of: &self) { raw in
            let slot = raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: UInt64.self) + i
            slot.pointee &+= n
        }
    }

    /// Adds `n` atomically (a table shared by threads).
    @inlinable @inline(__always) public mutating func atomicAdd(_ i: Int, _ n: UInt64 = 1) {
        withUnsafeMutableBytes(of: &self) { raw in
            buddy_atomic_add_u64_relaxed(raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: UInt64.self) + i, n)
        }
    }

    /// Reads slot `i` with an atomic load (another thread may be adding to it).
    @inlinable @inline(__always) public mutating func atomicLoad(_ i: Int) -> UInt64 {
        withUnsafeMutableBytes(of: &self) { raw in
            buddy_atomic_load_u64_relaxed(raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: UInt64.self) + i)
        }
    }

    /// Adds every counter of the table stored at `other`, read in place (no copy of its 512
    /// bytes on the stack).
    package mutating func add(_ other: UnsafeRawPointer) {
        for i in 0..<CounterTable.count { add(i, other.load(fromByteOffset: i &* 8, as: UInt64.self)) }
    }

    package var total: UInt64 {
        var sum: UInt64 = 0
        for i in 0..<CounterTable.count { sum &+= self[i] }
        return sum
    }
}
