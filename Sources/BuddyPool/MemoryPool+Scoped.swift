// Scoped memory: a block that lives exactly as long as a closure, freed on every exit path
// (return or throw). The Swift shape of the design document's RAII use of a pool.

extension MemoryPool {
    /// Calls `body` with an uninitialized buffer for `capacity` values of `T` from this pool,
    /// and frees it when `body` returns or throws. Initialize values before reading them, and
    /// deinitialize the ones you initialized before returning (trivial types need nothing).
    /// Do not let the buffer escape.
    ///
    /// Throws what `body` throws, or the `PoolError` of the allocation.
    /// C++: a scope that pairs `allocate_type<T>(count)` with `deallocate` (RAII); the Swift
    /// standard library's analogue is `withUnsafeTemporaryAllocation(of:capacity:_:)`.
    public func withTemporaryBuffer<T, R: ~Copyable>(
        of type: T.Type, capacity: Int, _ body: (UnsafeMutableBufferPointer<T>) throws -> R
    ) throws -> R {
        let start = try allocate(T.self, capacity: capacity)
        defer { tryDeallocate(UnsafeMutableRawPointer(start)) }
        return try body(UnsafeMutableBufferPointer(start: start, count: capacity))
    }

    /// Calls `body` with `byteCount` uninitialized bytes aligned to `alignment` from this pool,
    /// and frees them when `body` returns or throws. The buffer's count is the requested
    /// `byteCount` (the block may be larger: see `blockSize(of:)`).
    /// C++: a scope that pairs `allocate(size, alignment)` with `deallocate` (RAII).
    public func withTemporaryAllocation<R: ~Copyable>(
        byteCount: Int, alignment: Int = MemoryPool.defaultAlignment,
        _ body: (UnsafeMutableRawBufferPointer) throws -> R
    ) throws -> R {
        let start = try allocate(byteCount: byteCount, alignment: alignment)
        defer { tryDeallocate(start) }
        return try body(UnsafeMutableRawBufferPointer(start: start, count: byteCount))
    }
}
