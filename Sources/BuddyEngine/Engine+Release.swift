import CBuddySupport

extension BuddyEngine {
    // MARK: Returning memory to the OS
    //
    // Policy: when a free leaves a block of at least `releaseMinBlock` (or of the top order) and
    // `releaseDelay` has passed since the last release, (1) every segment that is entirely free is
    // unmapped, except the pool's first one, and (2) the pages of the free blocks of at least
    // `releaseMinBlock` go back with MADV_DONTNEED, all but the first `releaseKeepBytes` met in
    // the order the next allocations take them (oldest segment first, smallest order first, most
    // recently freed first). A free block keeps its first page, which holds its free-list links
    // and the released mark: a block already given back is skipped, so a pass costs one system
    // call per block that was used since. `trim()` does the same at once, for all free blocks of
    // two pages or more, keeping nothing.

    /// Free blocks smaller than this keep their pages on the delayed pass: they are the ones the
    /// program reuses soonest, and each would cost a system call for little memory.
    package static let releaseMinBlock = 64 * 1024
    /// Resident free bytes the delayed pass keeps, so that a program cycling through big buffers
    /// does not fault all of them in again after every pass.
    package static let releaseKeepBytes = 4 << 20
    /// A free block of at least releaseMinBlock whose pages (after its first) went back to the OS
    /// holds this word after its free-list links; push writes 0 there otherwise.
    package static let releasedMark: UInt64 = 0x4445_5341_454C_4552 // "RELEASED"
    package static let releasedMarkOffset = MemoryLayout<FreeLink>.stride

    @inline(__always) package func isReleased(_ block: UnsafeMutableRawPointer, order: Int) -> Bool {
        geometry.size(ofOrder: order) >= BuddyEngine.releaseMinBlock
            && block.load(fromByteOffset: BuddyEngine.releasedMarkOffset, as: UInt64.self) == BuddyEngine.releasedMark
    }

    @inline(__always) package func releaseMemoryIfDue() {
        let delay = state.pointee.config.releaseDelay
        if delay > 0 {
            let now = buddy_os_monotonic_ns()
            if Double(now &- state.pointee.lastRelease) < delay * 1e9 { return }
            state.pointee.lastRelease = now
        }
        let minimumOrder = min(geometry.maxOrder, geometry.order(forSize: BuddyEngine.releaseMinBlock))
        releaseMemory(minimumOrder: minimumOrder, keepBytes: BuddyEngine.releaseKeepBytes)
    }

    /// Returns free memory to the OS now: `malloc_trim`. The caller holds the lock. Returns the
    /// bytes whose pages were given back or unmapped.
    @discardableResult
    public func trim() -> Int {
        releaseEmptySlabs()
        state.pointee.lastRelease = buddy_os_monotonic_ns()
        let page = buddy_os_page_size()
        return releaseMemory(minimumOrder: max(0, geometry.order(forSize: 2 * page)), keepBytes: 0)
    }

    @discardableResult
    package func releaseMemory(minimumOrder: Int, keepBytes: Int) -> Int {
        var released = 0
        var segment = state.pointee.segments
        while let current = segment {
            segment = current.pointee.next
            if current.pointee.freeBytes == current.pointee.size && !current.pointee.pinned {
                released &+= Int(current.pointee.size)
                removeSegment(current, unlinkFreeBlocks: true)
            }
        }
        let page = buddy_os_page_size()
        guard minimumOrder <= geometry.maxOrder, geometry.size(ofOrder: minimumOrder) >= 2 * page else { return released }
        var keep = keepBytes
        segment = state.pointee.segments
        while let current = segment {
            for order in minimumOrder...geometry.maxOrder where current.pointee.nonEmpty & (1 &<< UInt64(order)) != 0 {
                let size = geometry.size(ofOrder: order)
                var block = current.pointee.freeAreas[order].head
                while let b = block {
                    block = b.pointee.next
                    let raw = UnsafeMutableRawPointer(b)
                    if isReleased(raw, order: order) { continue }
                    if keep >= size { keep &-= size; continue }
                    buddy_os_release_pages(raw + page, size &- page)
                    released &+= size &- page
                    if size >= BuddyEngine.releaseMinBlock {
                        raw.storeBytes(of: BuddyEngine.releasedMark, toByteOffset: BuddyEngine.releasedMarkOffset, as: UInt64.self)
                    }
                }
            }
            segment = current.pointee.next
        }
        state.pointee.counters.releasedBytes &+= UInt64(released)
        return released
    }
}
