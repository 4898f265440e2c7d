import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// gzip files (RFC 1952) without linking zlib: the deflate data comes from the system's zlib
/// (`libz.so.1`, loaded with dlopen when first needed: `compress2`, whose zlib stream minus its
/// 2-byte header and 4-byte Adler-32 trailer is raw deflate), else from stored blocks (RFC 1951,
/// BTYPE 00: the bytes as they are, in blocks of at most 65535). Either is a gzip file every
/// reader takes (gzip, Go's compress/gzip that pprof uses, Python's gzip).
public enum Gzip {
    public enum Method: String, Sendable {
        /// Compressed by the system's zlib (level 9).
        case zlib
        /// Stored blocks: no compression, no dependency.
        case stored
    }

    /// The gzip file of `data`; `method` nil: zlib when the system has it, else stored.
    public static func compress(_ data: [UInt8], method: Method? = nil) -> (bytes: [UInt8], method: Method) {
        var deflated: [UInt8]?
        var used = Method.stored
        if method != .stored, let z = zlibDeflate(data) {
            deflated = z
            used = .zlib
        }
        var out: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, used == .zlib ? 2 : 0, 3]  // no name, mtime 0, Unix
        out += deflated ?? storedDeflate(data)
        let crc = crc32(data)
        let size = UInt32(truncatingIfNeeded: data.count)
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: crc >> UInt32(shift))) }
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: size >> UInt32(shift))) }
        return (out, used)
    }

    /// Raw deflate in stored blocks: a header byte (BFINAL on the last block, BTYPE 00), LEN and
    /// its complement NLEN (little-endian), then the bytes. An empty input is one empty final block.
    static func storedDeflate(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + data.count / 65535 * 5 + 5)
        var start = 0
        repeat {
            let length = min(65535, data.count - start)
            let final = start + length == data.count
            out.append(final ? 1 : 0)
            let len = UInt16(length), nlen = ~UInt16(length)
            out += [UInt8(len & 0xff), UInt8(len >> 8), UInt8(nlen & 0xff), UInt8(nlen >> 8)]
            out += data[start..<start + length]
            start += length
        } while start < data.count
        return out
    }

    /// CRC-32 (IEEE 802.3, reflected, as gzip and zlib compute it).
    static func crc32(_ data: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xffff_ffff
        for byte in data {
            crc = crcTable[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8)
        }
        return ~crc
    }

    static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xedb8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    // MARK: - The system's zlib

    private typealias Compress2 = @convention(c) (UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt>?, UnsafePointer<UInt8>?, UInt, Int32) -> Int32
    private typealias CompressBound = @convention(c) (UInt) -> UInt

    private struct ZLib: @unchecked Sendable {
        var compress2: Compress2
        var compressBound: CompressBound
    }

    /// zlib's functions, or nil when no libz.so.1 (nor libz.so) can be loaded.
    private static let zlib: ZLib? = {
        for name in ["libz.so.1", "libz.so"] {
            guard let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) else { continue }
            guard let c = dlsym(handle, "compress2"), let b = dlsym(handle, "compressBound") else { continue }
            return ZLib(compress2: unsafeBitCast(c, to: Compress2.self), compressBound: unsafeBitCast(b, to: CompressBound.self))
        }
        return nil
    }()

    /// Whether the system's zlib was found.
    public static var hasZlib: Bool { zlib != nil }

    /// Raw deflate of `data` by zlib's compress2 at level 9, or nil.
    static func zlibDeflate(_ data: [UInt8]) -> [UInt8]? {
        guard let z = zlib else { return nil }
        var capacity = z.compressBound(UInt(data.count))
        var out = [UInt8](repeating: 0, count: Int(capacity))
        let status = out.withUnsafeMutableBufferPointer { o in
            data.withUnsafeBufferPointer { i in z.compress2(o.baseAddress, &capacity, i.baseAddress, UInt(data.count), 9) }
        }
        // Z_OK; a zlib stream: CMF (deflate, CM 8), FLG without a preset dictionary, ..., Adler-32.
        guard status == 0, capacity >= 6, out[0] & 0x0f == 8, out[1] & 0x20 == 0 else { return nil }
        return Array(out[2..<Int(capacity) - 4])
    }
}
