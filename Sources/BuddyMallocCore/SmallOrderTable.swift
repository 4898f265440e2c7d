import BuddyEngine

/// 65 order bytes, for requests of 0 ... 1024 bytes in steps of 16 (see PoolState.smallOrders).
struct SmallOrderTable {
    static let entries = 65
    static let limit: UInt = 1024
    var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0, 0)

    /// The order of a request of `size` <= limit bytes.
    @inline(__always) mutating func order(_ size: UInt) -> Int {
        withUnsafeMutableBytes(of: &storage) { raw in
            Int(raw.baseAddress.unsafelyUnwrapped.load(fromByteOffset: Int(truncatingIfNeeded: (size &+ 15) &>> 4), as: UInt8.self))
        }
    }

    mutating func set(_ i: Int, _ order: UInt8) {
        withUnsafeMutableBytes(of: &storage) { $0[i] = order }
    }
}
