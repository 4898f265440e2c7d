/// The shape of a pool's blocks: every block is `minBlock << order` bytes, for
/// `0 <= order <= maxOrder`, and starts at an address that is a multiple of its own size.
///
/// Conversions come in pairs: `order(forSize:)` / `size(ofOrder:)`.
///
/// Worked example (minBlock = 16, so minShift = 4): a 100-byte request needs 128 bytes, order 3.
/// A block of order 3 at 0x1080 has its buddy at `0x1080 ^ 128 = 0x1000`, and their parent,
/// of order 4, starts at `0x1080 & ~128 = 0x1000`.
public struct Geometry: Equatable, Sendable {
    /// log2 of the minimum block size.
    public let minShift: Int
    /// The largest order: `size(ofOrder: maxOrder) == maxBlock`.
    public let maxOrder: Int

    /// The largest order a pool supports; the order map stores orders in 6 bits.
    public static let orderLimit = 40

    public init(minBlock: Int, maxBlock: Int) {
        // Callers validate; these only catch a programming error.
        precondition(minBlock >= 16 && minBlock & (minBlock - 1) == 0)
        precondition(maxBlock >= minBlock && maxBlock & (maxBlock - 1) == 0)
        minShift = minBlock.trailingZeroBitCount
        maxOrder = maxBlock.trailingZeroBitCount - minShift
        precondition(maxOrder <= Geometry.orderLimit)
    }

    @inline(__always) public var minBlock: Int { 1 &<< minShift }
    @inline(__always) public var maxBlock: Int { 1 &<< (minShift &+ maxOrder) }

    /// Bytes in a block of `order`.
    @inline(__always) public func size(ofOrder order: Int) -> Int { 1 &<< (minShift &+ order) }

    /// The smallest order whose blocks hold `size` bytes (`size <= maxBlock`); 0 for size 0.
    @inline(__always) public func order(forSize size: Int) -> Int {
        if size <= minBlock { return 0 }
        return ceilLog2(UInt(bitPattern: size)) &- minShift
    }
}

/// ceil(log2(value)): the exponent of the smallest power of two >= value (0 for value <= 1),
/// without a loop. The one copy: orders, power-of-two rounding, the statistics' buckets, slab
/// classes and memalign's alignments all use it.
@inlinable @inline(__always) public func ceilLog2(_ value: UInt) -> Int {
    value <= 1 ? 0 : UInt.bitWidth &- (value &- 1).leadingZeroBitCount
}

/// The smallest power of two >= value (1 for value <= 1).
@inlinable @inline(__always) package func roundUpToPowerOfTwo(_ value: Int) -> Int {
    1 &<< ceilLog2(UInt(bitPattern: max(value, 1)))
}
