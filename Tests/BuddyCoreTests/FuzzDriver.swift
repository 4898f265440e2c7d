// The operation-sequence fuzzer of issue 13: a byte string decoded into operations on a private
// pool, either the engine itself (over an arena or mapped segments) or the C pool API
// (buddy_pool_*), checked after every operation against a model and the engine's invariant
// checker. Two drivers share this file: FuzzTests (the corpus in Tests/Fuzz/corpus plus seeded
// random inputs, in `swift test`) and the libFuzzer target Tests/Fuzz/main.swift, which
// tools/fuzz.sh compiles together with BuddyCore's sources into one module (BUDDY_FUZZER).
//
// The input: two header bytes, then operations of one opcode byte and up to three argument
// bytes each (a missing byte reads as 0).
//   header 0: bits 0-1 the target (0, 1: engine over an arena; 2: engine with mapped
//             segments; 3: C pool), bit 2 release delay 0 (empty segments unmapped at once)
//             instead of 1 s, bit 3 bounded (max pool size), bit 4 segments by size class
//             (engine), bit 5 on_error = log instead of return (C pool), bits 6-7 growth factor
//   header 1: the minimum block (16 << (bits 0-1)) and the maximum (4 to 16 orders above it,
//             at most 1 MiB)
//   opcode % 16: 0-4 allocate (size, alignment), 5-7 free, 8-9 realloc (engine: resize in place,
//             else move), 10 reset (one time in four; else trim or stats), 11 allocate until
//             full (or 256 blocks), 12 ownership and block size of a live block, an interior
//             pointer, a freed pointer or a foreign one, 13-14 bad frees (double, interior,
//             malloc's pointer, another pool's block), 15 trim (engine) or stats (C pool)
// The model: the live blocks (address, block size, a stamp id) in allocation order,
// and the last 32 freed addresses. Each block's first and last 64 bytes carry a pattern of its
// id, checked before it is freed, resized or moved; a new block must be aligned to its size (or
// the requested alignment) and overlap no live block; the model stops at 1024 blocks or 4 MiB.
// After every operation: checkInvariants, allocated bytes == the model's, and for the bad frees:
// nothing freed, the pool's figures and free lists unchanged, the right counter + 1.

#if !BUDDY_FUZZER
import CBuddySupport
@testable import BuddyEngine
@testable import BuddyMallocCore
#else
import CBuddySupport
#endif

/// What broke, at which step of which input.
struct FuzzFailure: Error, CustomStringConvertible {
    var step: Int
    var operation: String
    var message: String
    var description: String { "step \(step) (\(operation)): \(message)" }
}

/// Decodes and runs one input. `quiet` forces on_error = return in C pools (no error lines on
/// stderr: the counting is the same).
struct FuzzRun {
    struct Block {
        var address: UInt
        var size: Int
        var id: UInt32
    }

    enum Target {
        case engine(BuddyEngine)
        case cPool(UnsafeMutableRawPointer)
    }

    private var bytes: [UInt8]
    private var index = 0
    private var target: Target
    private let engine: BuddyEngine
    private var arena: (UnsafeMutableRawPointer, Int)? = nil
    /// A second pool, made by the first bad free of another pool's block.
    private var other: BuddyEngine? = nil
    private let bounded: Bool
    private let segregated: Bool
    private let geometry: Geometry
    private var live: [Block] = []
    private var liveBytes = 0
    private var freed: [UInt] = []
    private var nextID: UInt32 = 1
    private var step = 0
    private var operation = "setup"
    /// Operations run, for the tests' totals.
    private(set) var operations = 0

    static let liveLimit = 1024
    /// Allocations that would take the model above this are skipped: the invariant checker
    /// walks every slot of the carved part of every segment, so its cost grows with the pool.
    static let liveBytesLimit = 4 << 20
    static let fillLimit = 256
    static let stampBytes = 64

    /// Runs `input`; nil when every check held.
    static func run(_ input: [UInt8], quiet: Bool) -> FuzzFailure? {
        var count = 0
        return run(input, quiet: quiet, operations: &count)
    }

    static func run(_ input: [UInt8], quiet: Bool, operations: inout Int) -> FuzzFailure? {
        guard var run = FuzzRun(input, quiet: quiet) else { return nil }
        defer { run.destroy() }
        do {
            try run.execute()
            operations = run.operations
            return nil
        } catch {
            operations = run.operations
            return error
        }
    }

    private init?(_ input: [UInt8], quiet: Bool) {
        bytes = input
        let h0 = input.count > 0 ? input[0] : 0, h1 = input.count > 1 ? input[1] : 0
        index = 2
        let minShift = 4 + Int(h1 & 3)
        let maxShift = min(20, minShift + 4 + Int(h1 >> 2) % 13)
        let kind = Int(h0 & 3)
        segregated = kind != 3 && h0 & 0x10 != 0
        bounded = h0 & 0x08 != 0
        var config = PoolConfig()
        config.minBlock = 1 << minShift
        config.maxBlock = 1 << maxShift
        config.releaseDelay = h0 & 0x04 != 0 ? 0 : 1.0
        config.growthFactor = [2.0, 1.0, 4.0, 1.5][Int(h0 >> 6)]
        config.threadSafety = .off
        config.errorStrategy = .log
        if segregated {
            config.smallBlocksBelow = min(config.maxBlock, config.minBlock << 3)
            config.largeBlocksFrom = min(config.maxBlock, config.minBlock << 7)
        }
        let minSegment = config.minSegment
        config.initialSize = minSegment
        switch kind {
        case 0, 1:
            let size = minSegment * 2
            config.maxPoolSize = bounded ? size * 2 : 0
            guard let base = buddy_os_map_aligned(size, size) else { return nil }
            guard let made = BuddyEngine.create(config, arena: base, size: size) else {
                buddy_os_unmap(base, size)
                return nil
            }
            arena = (base, size)
            engine = made
            target = .engine(made)
        case 2:
            config.maxPoolSize = bounded ? minSegment * 4 : 0
            guard let made = BuddyEngine.create(config) else { return nil }
            engine = made
            target = .engine(made)
        default:
            var c = CPoolConfig(version: 1, threadSafe: 0, initialSize: UInt(minSegment), minBlock: UInt(config.minBlock),
                                maxBlock: UInt(config.maxBlock), maxSize: bounded ? UInt(minSegment * 4) : 0,
                                growthFactor: config.growthFactor, releaseDelay: config.releaseDelay,
                                onError: !quiet && h0 & 0x20 != 0 ? PoolOnError.log : PoolOnError.returnCode, reserved: 0)
            guard let pool = withUnsafeBytes(of: &c, { buddy_pool_create($0.baseAddress) }) else { return nil }
            engine = pool.assumingMemoryBound(to: CPoolHandle.self).pointee.engine
            target = .cPool(pool)
        }
        geometry = engine.geometry
    }

    private mutating func destroy() {
        switch target {
        case .engine(let engine): engine.destroy()
        case .cPool(let pool): buddy_pool_destroy(pool)
        }
        if let (base, size) = arena { buddy_os_unmap(base, size) }
        other?.destroy()
    }

    // MARK: Decoding

    private mutating func byte() -> UInt8 {
        defer { index += 1 }
        return index < bytes.count ? bytes[index] : 0
    }

    private func fail(_ message: String) -> FuzzFailure {
        FuzzFailure(step: step, operation: operation, message: message)
    }

    /// A request size from two bytes: within (2^k / 2, 2^k] for k up to one order above the
    /// maximum block, or 0.
    private mutating func requestSize() -> Int {
        let b0 = byte(), b1 = byte()
        let shift = Int(b0) % (geometry.minShift + geometry.maxOrder + 2)
        if b1 == 255 { return 0 }
        let top = 1 << shift
        return max(1, top - (top * Int(b1)) >> 9)
    }

    // MARK: Running

    private mutating func execute() throws(FuzzFailure) {
        try checkAll()
        while index < bytes.count {
            step += 1
            operations += 1
            let op = byte()
            switch op % 16 {
            case 0...4: try allocateOperation()
            case 5...7: try freeOperation()
            case 8, 9: try reallocOperation()
            case 10: if op >> 4 < 4 { try resetOperation() } else { try trimOrStats() }
            case 11: try fillOperation()
            case 12: try checkOperation()
            case 13, 14: try badFreeOperation()
            default: try trimOrStats()
            }
            try checkAll()
        }
        step += 1
        operation = "free everything"
        while let block = live.last { try release(live.count - 1, block) }
        try checkAll()
        if engine.usage.allocatedBytes != 0 { throw fail("allocated bytes \(engine.usage.allocatedBytes) after every block was freed") }
    }

    private func checkAll() throws(FuzzFailure) {
        if let broken = engine.checkInvariants() { throw fail("invariant broken: \(broken)") }
        let allocated = engine.usage.allocatedBytes
        if allocated != liveBytes { throw fail("allocated bytes \(allocated), the model has \(liveBytes)") }
    }

    // MARK: The model's blocks

    private func stamp(_ block: Block) {
        let p = UnsafeMutableRawPointer(bitPattern: block.address)!
        let n = min(FuzzRun.stampBytes, block.size)
        for i in 0..<n { p.storeBytes(of: UInt8(truncatingIfNeeded: block.id &* 31 &+ UInt32(i)), toByteOffset: i, as: UInt8.self) }
        if block.size > 2 * FuzzRun.stampBytes {
            for i in block.size - n..<block.size {
                p.storeBytes(of: UInt8(truncatingIfNeeded: block.id &* 17 &+ UInt32(i & 0xFF) &+ 7), toByteOffset: i, as: UInt8.self)
            }
        }
    }

    private func verify(_ block: Block, keptBytes: Int? = nil) throws(FuzzFailure) {
        let p = UnsafeRawPointer(bitPattern: block.address)!
        let n = min(FuzzRun.stampBytes, keptBytes ?? block.size)
        for i in 0..<n where p.load(fromByteOffset: i, as: UInt8.self) != UInt8(truncatingIfNeeded: block.id &* 31 &+ UInt32(i)) {
            throw fail("block 0x\(String(block.address, radix: 16)) (\(block.size) B, id \(block.id)): byte \(i) overwritten")
        }
        if keptBytes == nil, block.size > 2 * FuzzRun.stampBytes {
            for i in block.size - n..<block.size where p.load(fromByteOffset: i, as: UInt8.self) != UInt8(truncatingIfNeeded: block.id &* 17 &+ UInt32(i & 0xFF) &+ 7) {
                throw fail("block 0x\(String(block.address, radix: 16)) (\(block.size) B, id \(block.id)): byte \(i) overwritten")
            }
        }
    }

    /// Adds a new block to the model after checking its size, alignment and overlap.
    private mutating func adopt(_ pointer: UnsafeMutableRawPointer, order: Int, alignment: Int = 0) throws(FuzzFailure) {
        let address = UInt(bitPattern: pointer)
        let size = geometry.size(ofOrder: order)
        if address % UInt(size) != 0 { throw fail("block 0x\(String(address, radix: 16)) of \(size) B not aligned to its size") }
        if alignment > 0, address % UInt(alignment) != 0 { throw fail("block not aligned to the requested \(alignment)") }
        let reported = engine.blockSize(of: pointer)
        if reported != size { throw fail("block size \(String(describing: reported)), expected \(size)") }
        for other in live where address < other.address + UInt(other.size) && other.address < address + UInt(size) {
            throw fail("new block 0x\(String(address, radix: 16)) (\(size) B) overlaps live block 0x\(String(other.address, radix: 16)) (\(other.size) B)")
        }
        let block = Block(address: address, size: size, id: nextID)
        nextID &+= 1
        stamp(block)
        live.append(block)
        liveBytes += size
        freed.removeAll { $0 == address }
    }

    private mutating func forget(_ position: Int) {
        let block = live.remove(at: position)
        liveBytes -= block.size
        freed.append(block.address)
        if freed.count > 32 { freed.removeFirst() }
    }

    private mutating func release(_ position: Int, _ block: Block) throws(FuzzFailure) {
        try verify(block)
        let pointer = UnsafeMutableRawPointer(bitPattern: block.address)!
        switch target {
        case .engine(let engine):
            let outcome = engine.release(pointer)
            if outcome != .released { throw fail("release of a live block: \(outcome)") }
        case .cPool(let pool):
            let code = buddy_pool_free(pool, pointer)
            if code != PoolCode.ok { throw fail("buddy_pool_free of a live block: \(code)") }
        }
        forget(position)
    }

    /// Allocates a block of `order` (the engine) or `size` bytes aligned to `alignment` (the
    /// C pool); throws when a failure is not allowed. Returns false when the pool said no.
    private mutating func allocate(order: Int, size: Int, alignment: Int) throws(FuzzFailure) -> Bool {
        let wasEmpty = live.isEmpty
        if liveBytes + max(geometry.size(ofOrder: order), size, alignment) > FuzzRun.liveBytesLimit { return false }
        switch target {
        case .engine(let engine):
            if let p = engine.allocate(order: order) {
                try adopt(p, order: order)
                return true
            }
            if !bounded { throw fail("allocation of order \(order) failed in an unbounded pool") }
            if wasEmpty { throw fail("allocation of order \(order) failed in an empty pool") }
            return false
        case .cPool(let pool):
            var result: UnsafeMutableRawPointer? = nil
            let code = buddy_pool_alloc_ex(pool, size, alignment, &result)
            let align = UInt(alignment)
            if align & (align &- 1) != 0 || alignment > geometry.maxBlock {
                if code != PoolCode.invalidAlignment { throw fail("alignment \(alignment): code \(code), expected BUDDY_INVALID_ALIGNMENT") }
                return false
            }
            if size > geometry.maxBlock {
                if code != PoolCode.outOfMemory { throw fail("\(size) B above the maximum block: code \(code), expected BUDDY_OUT_OF_MEMORY") }
                return false
            }
            let wanted = max(geometry.order(forSize: size), geometry.order(forSize: alignment))
            if code == PoolCode.ok, let result {
                try adopt(result, order: wanted, alignment: alignment)
                return true
            }
            if !bounded { throw fail("buddy_pool_alloc(\(size), \(alignment)) failed in an unbounded pool: code \(code)") }
            if code != PoolCode.poolFull { throw fail("buddy_pool_alloc(\(size), \(alignment)) in a full bounded pool: code \(code), expected BUDDY_POOL_FULL") }
            if wasEmpty { throw fail("buddy_pool_alloc(\(size), \(alignment)) failed in an empty pool") }
            return false
        }
    }

    // MARK: Operations

    private mutating func allocateOperation() throws(FuzzFailure) {
        operation = "allocate"
        let size = requestSize()
        let a = byte()
        if live.count >= FuzzRun.liveLimit { return }
        switch target {
        case .engine:
            let order = min(geometry.maxOrder, geometry.order(forSize: size))
            operation = "allocate order \(order)"
            _ = try allocate(order: order, size: size, alignment: 0)
        case .cPool:
            let alignment: Int
            switch a & 3 {
            case 0: alignment = 0
            case 1: alignment = 1 << (Int(a >> 2) % (geometry.minShift + geometry.maxOrder + 2))
            case 2: alignment = Int(a >> 2) * 2 + 3
            default: alignment = 16
            }
            operation = "buddy_pool_alloc(\(size), \(alignment))"
            _ = try allocate(order: 0, size: size, alignment: alignment)
        }
    }

    private mutating func freeOperation() throws(FuzzFailure) {
        operation = "free"
        let i = Int(byte())
        if live.isEmpty { return }
        let position = i % live.count
        operation = "free 0x\(String(live[position].address, radix: 16))"
        try release(position, live[position])
    }

    private mutating func reallocOperation() throws(FuzzFailure) {
        operation = "realloc"
        let i = Int(byte())
        let size = requestSize()
        if live.isEmpty { return }
        let position = i % live.count
        let old = live[position]
        let oldOrder = geometry.order(forSize: old.size)
        let pointer = UnsafeMutableRawPointer(bitPattern: old.address)!
        try verify(old)
        switch target {
        case .engine(let engine):
            let newOrder = min(geometry.maxOrder, geometry.order(forSize: size))
            operation = "realloc 0x\(String(old.address, radix: 16)) order \(oldOrder) -> \(newOrder)"
            if engine.resizeInPlace(pointer, from: oldOrder, to: newOrder) {
                let kept = min(old.size, geometry.size(ofOrder: newOrder))
                try verify(old, keptBytes: kept)
                live[position].size = geometry.size(ofOrder: newOrder)
                liveBytes += live[position].size - old.size
                if engine.blockSize(of: pointer) != live[position].size { throw fail("block size after resizing in place: \(String(describing: engine.blockSize(of: pointer)))") }
                live[position].id = nextID
                nextID &+= 1
                stamp(live[position])
                return
            }
            if newOrder < oldOrder && !segregated { throw fail("shrinking in place failed") }
            if newOrder == oldOrder { throw fail("resizing to the same order failed") }
            // Move: a new block, the kept bytes copied, the old one freed.
            if live.count >= FuzzRun.liveLimit || liveBytes + geometry.size(ofOrder: newOrder) > FuzzRun.liveBytesLimit { return }
            guard let moved = engine.allocate(order: newOrder) else {
                if !bounded { throw fail("allocation of order \(newOrder) failed in an unbounded pool") }
                return
            }
            try adopt(moved, order: newOrder)
            let kept = min(FuzzRun.stampBytes, old.size, geometry.size(ofOrder: newOrder))
            moved.copyMemory(from: pointer, byteCount: kept)
            try verify(Block(address: UInt(bitPattern: moved), size: old.size, id: old.id), keptBytes: kept)
            stamp(live[live.count - 1])
            try release(position, old)
        case .cPool:
            // buddy.h has no realloc: what a program does instead (allocate, copy, free).
            operation = "realloc 0x\(String(old.address, radix: 16)) \(old.size) -> \(size) B"
            if live.count >= FuzzRun.liveLimit { return }
            guard try allocate(order: 0, size: size, alignment: 0) else { return }
            let moved = UnsafeMutableRawPointer(bitPattern: live[live.count - 1].address)!
            let kept = min(FuzzRun.stampBytes, old.size, live[live.count - 1].size)
            moved.copyMemory(from: pointer, byteCount: kept)
            try verify(Block(address: UInt(bitPattern: moved), size: old.size, id: old.id), keptBytes: kept)
            stamp(live[live.count - 1])
            try release(position, old)
        }
    }

    private mutating func resetOperation() throws(FuzzFailure) {
        operation = "reset"
        for block in live { try verify(block) }
        switch target {
        case .engine(let engine): engine.reset()
        case .cPool(let pool):
            if buddy_pool_reset(pool) != PoolCode.ok { throw fail("buddy_pool_reset failed") }
        }
        while !live.isEmpty { forget(live.count - 1) }
        if engine.usage.allocatedBytes != 0 { throw fail("allocated bytes after reset: \(engine.usage.allocatedBytes)") }
    }

    private mutating func trimOrStats() throws(FuzzFailure) {
        switch target {
        case .engine(let engine):
            operation = "trim"
            engine.trim()
            for block in live { try verify(block) }
        case .cPool(let pool):
            operation = "buddy_pool_stats"
            let bytes = MemoryLayout<CPoolStatsHead>.stride + 8 * CPoolStatsHead.orders
            let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 8)
            defer { raw.deallocate() }
            raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
            raw.storeBytes(of: UInt32(1), as: UInt32.self)
            if buddy_pool_stats(pool, raw) != PoolCode.ok { throw fail("buddy_pool_stats failed") }
            let head = raw.load(as: CPoolStatsHead.self)
            var listed = 0
            for order in 0...geometry.maxOrder {
                listed += Int(raw.load(fromByteOffset: MemoryLayout<CPoolStatsHead>.stride + 8 * order, as: UInt64.self)) * geometry.size(ofOrder: order)
            }
            if head.allocatedBytes != UInt64(liveBytes) { throw fail("stats: allocated \(head.allocatedBytes), the model has \(liveBytes)") }
            if head.allocatedBytes + head.freeBytes != head.totalBytes { throw fail("stats: allocated + free != total") }
            if listed != Int(head.freeBytes) { throw fail("stats: free blocks add up to \(listed), free bytes \(head.freeBytes)") }
            if Int(head.largestFreeBlock) > geometry.maxBlock { throw fail("stats: largest free block \(head.largestFreeBlock)") }
        }
    }

    private mutating func fillOperation() throws(FuzzFailure) {
        let b = byte()
        let order = max(0, geometry.maxOrder - Int(b) % min(6, geometry.maxOrder + 1))
        operation = "allocate order \(order) until full"
        var count = 0
        while count < FuzzRun.fillLimit, live.count < FuzzRun.liveLimit {
            guard try allocate(order: order, size: geometry.size(ofOrder: order), alignment: 0) else { break }
            count += 1
        }
    }

    private func owns(_ pointer: UnsafeRawPointer) -> (size: Int?, owns: Bool) {
        switch target {
        case .engine(let engine):
            let size = engine.blockSize(of: pointer)
            return (size, size != nil)
        case .cPool(let pool):
            let size = buddy_pool_block_size(pool, pointer)
            return (size == 0 ? nil : size, buddy_pool_owns(pool, pointer) == 1)
        }
    }

    private mutating func checkOperation() throws(FuzzFailure) {
        let kind = byte(), i = Int(byte())
        var local = 0
        switch kind % 4 {
        case 0:
            operation = "ownership of a live block"
            guard !live.isEmpty else { return }
            let block = live[i % live.count]
            let answer = owns(UnsafeRawPointer(bitPattern: block.address)!)
            if answer.size != block.size || !answer.owns { throw fail("live block of \(block.size) B: \(answer)") }
        case 1:
            operation = "ownership of an interior pointer"
            guard !live.isEmpty else { return }
            let block = live[i % live.count]
            guard block.size > 1 else { return }
            let offset = 1 + Int(kind >> 2) * 37 % (block.size - 1)
            let answer = owns(UnsafeRawPointer(bitPattern: block.address + UInt(offset))!)
            if answer.size != nil || answer.owns { throw fail("interior pointer +\(offset) of a \(block.size)-byte block: \(answer)") }
        case 2:
            operation = "ownership of a freed pointer"
            guard !freed.isEmpty else { return }
            let address = freed[i % freed.count]
            let answer = owns(UnsafeRawPointer(bitPattern: address)!)
            if let block = live.first(where: { $0.address == address }) {
                if answer.size != block.size { throw fail("freed then reallocated 0x\(String(address, radix: 16)): \(answer)") }
            } else if answer.size != nil || answer.owns {
                throw fail("freed pointer 0x\(String(address, radix: 16)): \(answer)")
            }
        default:
            operation = "ownership of a foreign pointer"
            let answer = withUnsafePointer(to: &local) { owns(UnsafeRawPointer($0)) }
            if answer.size != nil || answer.owns { throw fail("a stack address: \(answer)") }
        }
    }

    private mutating func badFreeOperation() throws(FuzzFailure) {
        let kind = byte(), i = Int(byte())
        let pointer: UnsafeMutableRawPointer
        var foreign: UnsafeMutableRawPointer? = nil, otherBlock: UnsafeMutableRawPointer? = nil
        defer { foreign?.deallocate() }
        switch kind % 4 {
        case 0:
            operation = "double free"
            guard !freed.isEmpty else { return }
            let address = freed[i % freed.count]
            if live.contains(where: { $0.address == address }) { return }
            pointer = UnsafeMutableRawPointer(bitPattern: address)!
        case 1:
            operation = "interior free"
            guard !live.isEmpty else { return }
            let block = live[i % live.count]
            guard block.size > 1 else { return }
            let offset = 1 + (Int(kind >> 2) * 977 + i) % (block.size - 1)
            pointer = UnsafeMutableRawPointer(bitPattern: block.address + UInt(offset))!
        case 2:
            operation = "free of malloc's pointer"
            foreign = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16)
            pointer = foreign!
        default:
            operation = "free of another pool's block"
            if other == nil {
                var config = PoolConfig()
                config.maxBlock = 64 << 10
                config.initialSize = 64 << 10
                config.threadSafety = .off
                other = BuddyEngine.create(config)
            }
            guard let other, let block = other.allocate(order: Int(kind >> 2) % 8) else { return }
            otherBlock = block
            pointer = block
        }
        defer {
            if let otherBlock, other?.release(otherBlock) != .released { fatalError("the other pool's block was not released") }
        }
        operation += " 0x\(String(UInt(bitPattern: pointer), radix: 16))"
        let before = engine.counters
        let usage = engine.usage
        let free = (0...geometry.maxOrder).map { engine.freeBlockCount(order: $0) }
        let expectedKind = engine.classify(pointer)
        switch target {
        case .engine(let engine):
            let outcome = engine.release(pointer)
            if outcome == .released { throw fail("a bad pointer was released") }
            if outcome != BuddyEngine.outcome(for: expectedKind) { throw fail("outcome \(outcome) for a pointer classified \(expectedKind)") }
            let after = engine.counters
            let counted = (after.doubleFrees - before.doubleFrees, after.invalidPointers - before.invalidPointers)
            let expected: (UInt64, UInt64) = outcome == .doubleFree ? (1, 0) : outcome == .foreign ? (0, 0) : (0, 1)
            if counted != expected { throw fail("\(outcome) counted as \(counted) (double frees, invalid pointers)") }
        case .cPool(let pool):
            let code = buddy_pool_free(pool, pointer)
            if code != PoolCode.invalidPointer { throw fail("buddy_pool_free of a bad pointer: code \(code)") }
            let after = engine.counters
            let counted = after.doubleFrees - before.doubleFrees + after.invalidPointers - before.invalidPointers
            if counted != 1 { throw fail("a bad free counted \(counted) times") }
        }
        if engine.usage != usage { throw fail("a bad free changed the pool's figures") }
        if (0...geometry.maxOrder).map({ engine.freeBlockCount(order: $0) }) != free { throw fail("a bad free changed the free lists") }
        if kind % 4 == 1, expectedKind != .interior { throw fail("an interior pointer classified \(expectedKind)") }
    }
}

/// SplitMix64: the test's seeded random inputs.
struct FuzzRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A random input of `count` bytes whose opcodes favour allocations and frees.
    mutating func input(count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) }
    }
}
