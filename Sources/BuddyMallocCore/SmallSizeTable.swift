#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif

/// malloc's table for requests of 0 ... 1024 bytes in steps of 16: entry i holds the bin and the
/// allocation code of a request of 16(i-1)+1 ... 16i bytes (an order, or a slab class under
/// 1 KiB), so a request of n bytes is entry (n + 15) / 16: two loads from one line of the thread's
/// cache instead of a bit scan, its corrections and the class search. The bin is held as its
/// slot's offset in words (ThreadCache.wordsPerBin), which addresses it with no shift.
///
///     code(i) == pool.code(forSize: 16 i, alignment: 16)
///     binWords(i) == pool.binOfCode(code(i)) x ThreadCache.wordsPerBin
struct SmallSizeTable {
    static let entries = 65
    static let limit: UInt = 1024
    /// The bins in bytes 0 ..< 65, the codes in bytes 72 ..< 137.
    static let codeOffset = 72
    var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                  UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
        = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    /// The bin (in words, see above) and the code of a request of `size` <= limit bytes.
    @inline(__always) mutating func entry(_ size: UInt) -> (binWords: Int, code: Int) {
        withUnsafeMutableBytes(of: &storage) { raw in
            let base = raw.baseAddress.unsafelyUnwrapped
            let i = Int(truncatingIfNeeded: (size &+ 15) &>> 4)
            return (Int(base.load(fromByteOffset: i, as: UInt8.self)),
                    Int(base.load(fromByteOffset: SmallSizeTable.codeOffset &+ i, as: UInt8.self)))
        }
    }

    mutating func set(_ i: Int, bin: Int, code: Int) {
        withUnsafeMutableBytes(of: &storage) {
            $0[i] = UInt8(truncatingIfNeeded: bin &* ThreadCache.wordsPerBin)
            $0[SmallSizeTable.codeOffset + i] = UInt8(truncatingIfNeeded: code)
        }
    }
}

/// The table of requests above SmallSizeTable's, 1 KiB + 1 ... 32 KiB in steps of 128 (every
/// class from 1 KiB up, and every order there, starts and ends on a multiple of 128, so one code
/// serves each step): entry j holds the bin and code of a request of 1024 + 128 j + 1 ...
/// 1024 + 128 (j + 1) bytes, or `none` where no bin holds them (above the cached sizes). A request
/// of n bytes is entry (n - 1) / 128 - 8. (mallocMedium computed the code with two bit scans and
/// the class's corrections, then looked up its bin: 65 instructions more per call and free than
/// malloc's table path.)
///
///     code(j) == pool.code(forSize: 1024 + 128 (j + 1), alignment: 16)
///     binWords(j) == pool.binOfCode(code(j)) x ThreadCache.wordsPerBin, or none where that is -1
struct MediumSizeTable {
    static let entries = 248
    static let floor: UInt = 1024
    static let limit: UInt = 32 * 1024
    static let none = 0xFF
    /// The bins in bytes 0 ..< 248, the codes in bytes 248 ..< 496.
    static let codeOffset = 248
    var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                  UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                  UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                  UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                  UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                  UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                  UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                  UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
        = (~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0,
           ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0,
           ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0,
           ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0,
           ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0,
           ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0,
           ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0,
           ~0, ~0, ~0, ~0, ~0, ~0)

    /// The bin (in words, or none) and the code of a request of floor < `size` <= limit bytes.
    @inline(__always) mutating func entry(_ size: UInt) -> (binWords: Int, code: Int) {
        withUnsafeMutableBytes(of: &storage) { raw in
            let base = raw.baseAddress.unsafelyUnwrapped
            let j = Int(truncatingIfNeeded: (size &- 1) &>> 7) &- 8
            return (Int(base.load(fromByteOffset: j, as: UInt8.self)),
                    Int(base.load(fromByteOffset: MediumSizeTable.codeOffset &+ j, as: UInt8.self)))
        }
    }

    mutating func set(_ j: Int, bin: Int, code: Int) {
        withUnsafeMutableBytes(of: &storage) {
            $0[j] = bin < 0 ? UInt8(MediumSizeTable.none) : UInt8(truncatingIfNeeded: bin &* ThreadCache.wordsPerBin)
            $0[MediumSizeTable.codeOffset + j] = UInt8(truncatingIfNeeded: code)
        }
    }
}

/// The cached requests above the medium table's, MediumSizeTable.limit < size <= cachedSizeLimit
/// (1 MiB), need no table: no slab class lies above it (SlabClass.ceiling), so the code is the
/// order, ceil(log2(size)) - minShift, and an order's bin is its code (binOfCode):
///
///     entry(size).code == pool.code(forSize: size, alignment: 16)
///     entry(size).binWords == pool.binOfCode(code) x ThreadCache.wordsPerBin
enum LargeSizes {
    @inline(__always) static func entry(_ size: UInt, minShift: UInt) -> (binWords: Int, code: Int) {
        let order = (UInt.bitWidth &- (size &- 1).leadingZeroBitCount) &- Int(truncatingIfNeeded: minShift)
        return (order &* ThreadCache.wordsPerBin, order)
    }
}

/// free's table: by a tag's whole byte, the bin of a block or object tagged used with a code a
/// bin holds (an order or a slab class), else `none` (free, cached in the quarantine, a slab
/// block, no block), so that free tests the tag's state and finds the bin with one load from
/// the thread's cache whatever the code (held in words, as SmallSizeTable's bins are).
///
///     binWords(Tag.used | code) == pool.binOfCode(code) x ThreadCache.wordsPerBin, or none
///                                  where binOfCode is -1;
///     binWords(tag) == none for every other tag
struct TagBinTable {
    static let none = 0xFF
    var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                  UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                  UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                  UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
        = (~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0,
           ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0, ~0)

    /// The bin of a block whose tag is `tag`, in words (ThreadCache.wordsPerBin), or none.
    @inline(__always) mutating func binWords(_ tag: UInt8) -> Int {
        withUnsafeMutableBytes(of: &storage) { raw in
            Int(raw.baseAddress.unsafelyUnwrapped.load(fromByteOffset: Int(tag), as: UInt8.self))
        }
    }

    /// The bin of a block whose tag is `tag`, or -1.
    @inline(__always) mutating func bin(_ tag: UInt8) -> Int {
        let words = binWords(tag)
        return words == TagBinTable.none ? -1 : words / ThreadCache.wordsPerBin
    }

    mutating func set(code: Int, bin: Int) {
        withUnsafeMutableBytes(of: &storage) { $0[Int(Tag.used) | code] = UInt8(truncatingIfNeeded: bin &* ThreadCache.wordsPerBin) }
    }
}
