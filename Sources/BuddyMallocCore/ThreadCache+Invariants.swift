#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
import CBuddySupport

// The thread caches' invariants, executable (tests call it after every step, as they call the
// engine's; O(pool size), never on the malloc path):
//
//     every block on a bin of code k is tagged used | k, and its stored tag address is its
//         own tag's (the links decode with the pool's key, FreeLinks): the cache mark
//     a bin's list holds exactly `count` blocks, and count <= limit
//     the blocks with the cache mark in the order maps == the blocks on all bins of all caches
//         + their spare batches + the blocks of all batches on the depot's shelves
//     0 <= lowWater <= shelf.count <= shelf.capacity <= slotCount (a power of two), and each
//         batch on shelf s is a list of exactly counts[i] blocks, 1 <= counts[i] <=
//         batchBlocks(s), each tagged used | code(s); shelf.blocks == sum of its counts
//         (Depot.swift)
//     a bin's limit is batchBlocks of its shelf, or consumerLimit of it (a consumer's bin)
//     calls.freeSampleDue != 0  =>  lastSize == 0 (free's range test sends a due free to its
//         sample check: ThreadCache.setFreeSampleDue)
//     the engine's invariants hold (a cached block is allocated to the pool)

extension BuddyEngine {
    /// Nil when the engine's invariants and the thread caches' hold, else the first broken one.
    /// Only while no other thread uses the pool (the caches are read without their owners).
    func checkInvariantsWithCaches() -> StaticString? {
        var tagged = 0
        if let problem = checkInvariants(cachedBlocks: &tagged) { return problem }
        var listed = 0
        var cache = processIfAny?.pointee.caches
        while let current = cache {
            if let problem = checkCache(current, listed: &listed) { return problem }
            cache = current.pointee.next
        }
        if let problem = checkDepot(listed: &listed) { return problem }
        if listed != tagged { return "blocks with the cache mark in the order maps != blocks on the thread caches' bins and the depot" }
        return nil
    }

    private func checkCache(_ cache: UnsafeMutablePointer<ThreadCache>, listed: inout Int) -> StaticString? {
        if cache.pointee.calls.freeSampleDue != 0 && cache.pointee.lastSize != 0 {
            return "a thread cache has a free sample due and a segment copy that lets frees skip it"
        }
        for bin in 0..<cache.totalBins {
            let binState = (cache.bins + bin).pointee
            if binState.count < 0 || binState.count > binState.limit { return "a bin holds more blocks than its limit" }
            if let process = processIfAny, process.pointee.depot != nil {
                let full = shelf(bin).pointee.batchBlocks
                if binState.limit != full && binState.limit != Depot.consumerLimit(full) { return "a bin's limit is neither its shelf's batch nor a consumer's" }
                if binState.spareCount > full { return "a bin's spare batch is larger than its shelf's batches" }
            }
            if let problem = checkList(binState.head, count: binState.count, code: cache.code(ofBin: bin), listed: &listed) { return problem }
            if (binState.spare == nil) != (binState.spareCount == 0) { return "a bin's spare batch disagrees with its count" }
            if let problem = checkList(binState.spare, count: binState.spareCount, code: cache.code(ofBin: bin), listed: &listed) { return problem }
        }
        return nil
    }

    private func checkDepot(listed: inout Int) -> StaticString? {
        guard let process = processIfAny, process.pointee.depot != nil else { return nil }
        for bin in 0..<process.pointee.depotShelves {
            let shelf = self.shelf(bin).pointee
            if shelf.count < 0 || shelf.count > shelf.capacity || shelf.capacity > shelf.slotCount
                || Int(shelf.slotCount) > Depot.maxBatches { return "a depot shelf holds more batches than its capacity" }
            if shelf.slotCount & (shelf.slotCount - 1) != 0 || shelf.first < 0 || shelf.first >= shelf.slotCount
                || shelf.lowWater > shelf.count { return "a depot shelf's ring is out of shape" }
            var blocks: Int32 = 0
            for i in 0..<shelf.count {
                let count = shelf.counts[shelf.slot(i)]
                if count < 1 || count > shelf.batchBlocks { return "a depot batch's count is not 1 ... batchBlocks" }
                if let problem = checkList(shelf.slots[shelf.slot(i)], count: count, code: codeOfBin(bin), listed: &listed) { return problem }
                blocks &+= count
            }
            if blocks != shelf.blocks { return "a depot shelf's blocks are not the sum of its batches' counts" }
        }
        return nil
    }

    /// A list of cached blocks of `code`, linked as the bins link them, exactly `count` long.
    private func checkList(_ head: UnsafeMutableRawPointer?, count: Int32, code allocationCode: Int, listed: inout Int) -> StaticString? {
        let key = process.pointee.linkKey
        let code = UInt8(truncatingIfNeeded: allocationCode)
        var block = head
        var walked: Int32 = 0
        while let b = block {
            walked &+= 1
            if walked > count { return "a bin's list is longer than its count" }
            let next = FreeLinks.decode(b.load(as: UInt.self), key: key)
            let tag = FreeLinks.decode(b.load(fromByteOffset: MemoryLayout<UInt>.stride, as: UInt.self), key: key)
            if !FreeLinks.valid(next: next, tag: tag) { return "a cached block's links do not decode" }
            let address = UInt(bitPattern: b)
            guard let segment = self.segment(containing: address) else { return "a cached block lies outside the pool" }
            let own = segment.pointee.orderMap + slot(address, in: segment)
            if tag != UInt(bitPattern: own) { return "a cached block's tag address is not its own tag" }
            if own.pointee != Tag.used | code { return "a block on a bin of code k is not tagged used | k" }
            block = UnsafeMutableRawPointer(bitPattern: next)
        }
        if walked != count { return "a bin's list is shorter than its count" }
        listed &+= Int(walked)
        return nil
    }
}
