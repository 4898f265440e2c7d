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
        // ceil(log2(size)) - minShift, without a loop.
        return (Int.bitWidth &- (size &- 1).leadingZeroBitCount) &- minShift
    }
}

/// The smallest power of two >= value (value >= 1).
@inlinable @inline(__always) package func roundUpToPowerOfTwo(_ value: Int) -> Int {
    value <= 1 ? 1 : 1 &<< (Int.bitWidth &- (value &- 1).leadingZeroBitCount)
}
