/// A growable array whose storage is one block of a `MemoryPool`: append, subscript, iterate,
/// and it frees its block (after destroying its elements) when it goes away. Noncopyable, so
/// exactly one value owns the block; elements may be noncopyable too.
///
///     var squares = try PoolArray<Int>(pool: pool)
///     for i in 0..<100 { try squares.append(i * i) }
///     squares.forEach { print($0) }
///
/// Growth doubles the capacity, in place when the buddies above the block are free (no copy),
/// else by moving to a new block. The whole array fits in one block, so it holds at most
/// `pool.maxBlockSize / MemoryLayout<Element>.stride` elements; past that `append` throws
/// `PoolError.outOfMemory`. The array keeps its pool alive. After `pool.reset()` it is empty
/// (its elements are gone with the block, without being deinitialized).
///
/// C++: `std::vector<T, PoolAllocator<T>>` (design document section 9.3).
public struct PoolArray<Element: ~Copyable>: ~Copyable {
    /// The pool the storage comes from.
    public let pool: MemoryPool
    private var storage: UnsafeMutablePointer<Element>?
    private var _count = 0
    private var _capacity = 0
    /// The pool's reset count when the storage was allocated.
    private var generation: UInt64

    /// An empty array that allocates from `pool` (room for `capacity` elements when > 0).
    public init(pool: MemoryPool, capacity: Int = 0) throws(PoolError) {
        self.pool = pool
        generation = pool.generation.load(ordering: .acquiring)
        if capacity > 0 { try grow(toAtLeast: capacity) }
    }

    deinit {
        if let storage, live {
            storage.deinitialize(count: _count)
            pool.tryDeallocate(UnsafeMutableRawPointer(storage))
        }
    }

    /// False once the pool was reset under this array: its storage is gone.
    private var live: Bool { pool.generation.load(ordering: .acquiring) == generation }

    /// Elements in the array.
    public var count: Int { live ? _count : 0 }
    /// Elements the current block holds.
    public var capacity: Int { live ? _capacity : 0 }
    public var isEmpty: Bool { count == 0 }
    public var indices: Range<Int> { 0..<count }

    /// Adds an element at the end, growing the block when it is full.
    /// C++: `std::vector::push_back`.
    public mutating func append(_ element: consuming Element) throws(PoolError) {
        if !live { forgetStorage() }
        if _count == _capacity { try grow(toAtLeast: _count + 1) }
        (storage! + _count).initialize(to: element)
        _count += 1
    }

    /// Removes and returns the last element. The array must not be empty.
    public mutating func removeLast() -> Element {
        precondition(count > 0, "PoolArray.removeLast() on an empty array")
        _count -= 1
        return (storage! + _count).move()
    }

    /// Destroys every element, keeping the block.
    public mutating func removeAll() {
        if live, let storage { storage.deinitialize(count: _count) }
        _count = 0
    }

    /// The element at `index` (0 ..< count).
    public subscript(index: Int) -> Element {
        _read {
            precondition(index >= 0 && index < count, "PoolArray index out of range")
            yield storage![index]
        }
        _modify {
            precondition(index >= 0 && index < count, "PoolArray index out of range")
            yield &storage![index]
        }
    }

    /// Calls `body` with each element in order, borrowed. C++: iteration with `begin()`/`end()`.
    public func forEach<E: Error>(_ body: (borrowing Element) throws(E) -> Void) throws(E) {
        for index in indices { try body(storage![index]) }
    }

    /// The elements as a buffer, for the duration of `body`.
    public func withUnsafeBufferPointer<R: ~Copyable, E: Error>(
        _ body: (UnsafeBufferPointer<Element>) throws(E) -> R
    ) throws(E) -> R {
        try body(UnsafeBufferPointer(start: count == 0 ? nil : storage, count: count))
    }

    /// The elements as a mutable buffer, for the duration of `body` (which must not change
    /// which of them are initialized).
    public mutating func withUnsafeMutableBufferPointer<R: ~Copyable, E: Error>(
        _ body: (UnsafeMutableBufferPointer<Element>) throws(E) -> R
    ) throws(E) -> R {
        try body(UnsafeMutableBufferPointer(start: count == 0 ? nil : storage, count: count))
    }

    /// The pool was reset: the storage is gone (do not touch or free it).
    private mutating func forgetStorage() {
        storage = nil
        _count = 0
        _capacity = 0
        generation = pool.generation.load(ordering: .acquiring)
    }

    private mutating func grow(toAtLeast minimum: Int) throws(PoolError) {
        let stride = MemoryLayout<Element>.stride
        let limit = pool.maxBlockSize / max(stride, 1)
        guard minimum <= limit else {
            throw pool.fail(.outOfMemory, "out of memory: a PoolArray of \(minimum) \(Element.self) values needs more than the pool's largest block (\(pool.maxBlockSize) bytes); raise maxBlockSize")
        }
        let wanted = min(max(minimum, _capacity * 2, 4), limit)
        let bytes = max(wanted * stride, 1)
        if let storage, pool.resizeInPlace(UnsafeMutableRawPointer(storage), toByteCount: bytes) {
            _capacity = pool.blockSize(of: storage)! / max(stride, 1)
            return
        }
        let raw = try pool.allocate(byteCount: bytes, alignment: max(MemoryLayout<Element>.alignment, 1))
        let block = raw.bindMemory(to: Element.self, capacity: wanted)
        if let storage {
            block.moveInitialize(from: storage, count: _count)
            pool.tryDeallocate(UnsafeMutableRawPointer(storage))
        }
        storage = block
        _capacity = stride == 0 ? limit : pool.blockSize(of: raw)! / stride
    }
}

extension PoolArray where Element: Copyable {
    /// The elements, copied into a Swift array.
    public var elements: [Element] { withUnsafeBufferPointer { Array($0) } }
}

extension MemoryPool {
    /// Grows the allocated block at `pointer` to hold `byteCount` bytes without moving it, when
    /// the buddies above it are free; false (nothing changed) otherwise.
    func resizeInPlace(_ pointer: UnsafeMutableRawPointer, toByteCount byteCount: Int) -> Bool {
        core.resizeInPlace(pointer, toSize: UInt(byteCount))
    }
}
