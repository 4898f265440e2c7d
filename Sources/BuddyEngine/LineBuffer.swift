import CBuddySupport

/// A line of text built on the stack, for messages and reports that must not allocate:
/// 240 bytes of inline storage, truncating (never failing) when full.
package struct LineBuffer {
    private var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                          UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                          UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                          UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
        = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    package private(set) var count = 0
    package static let capacity = 240

    package init() {}

    package mutating func append(byte: UInt8) {
        guard count < LineBuffer.capacity else { return }
        withUnsafeMutableBytes(of: &storage) { $0[count] = byte }
        count &+= 1
    }

    package mutating func append(_ text: StaticString) {
        let start = text.utf8Start
        for i in 0..<text.utf8CodeUnitCount { append(byte: start[i]) }
    }

    /// Appends a NUL-terminated C string (at most `limit` bytes of it).
    package mutating func append(cString: UnsafePointer<CChar>, limit: Int = 120) {
        var i = 0
        while i < limit, cString[i] != 0 {
            append(byte: UInt8(bitPattern: cString[i]))
            i &+= 1
        }
    }

    package mutating func append(decimal value: UInt64) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var n = 0
        var v = value
        withUnsafeMutableBytes(of: &digits) { d in
            repeat { d[n] = UInt8(truncatingIfNeeded: 48 &+ v % 10); v /= 10; n &+= 1 } while v > 0
        }
        withUnsafeBytes(of: &digits) { d in
            while n > 0 { n &-= 1; append(byte: d[n]) }
        }
    }

    package mutating func append(decimal value: Int) {
        if value < 0 { append(byte: 45) }
        append(decimal: UInt64(value.magnitude))
    }

    package mutating func append(hex value: UInt) {
        append("0x")
        var shift = UInt.bitWidth - 4
        var started = false
        while shift >= 0 {
            let nibble = UInt8(truncatingIfNeeded: (value >> UInt(shift)) & 0xF)
            if nibble != 0 || started || shift == 0 {
                started = true
                append(byte: nibble < 10 ? 48 &+ nibble : 87 &+ nibble)
            }
            shift -= 4
        }
    }

    /// A byte count the way people read it: 512, 1.5K, 64K, 3.2M, 2.0G.
    package mutating func append(bytes value: UInt64) {
        let units: StaticString = "KMGTP"
        if value < 1024 { append(decimal: value); append(byte: 66); return }
        var scaled = value
        var unit = -1
        var tenths: UInt64 = 0
        while scaled >= 1024 && unit < 4 {
            tenths = (scaled % 1024) * 10 / 1024
            scaled /= 1024
            unit += 1
        }
        append(decimal: scaled)
        if scaled < 100 { append(byte: 46); append(decimal: tenths) }
        append(byte: units.utf8Start[unit])
    }

    package mutating func pad(to column: Int) {
        while count < column { append(byte: 32) }
    }

    /// The text, for tests.
    package var text: String {
        var copy = storage
        return withUnsafeMutableBytes(of: &copy) { String(decoding: $0.prefix(count), as: UTF8.self) }
    }

    package func write(to fd: Int32) {
        withUnsafeBytes(of: storage) { buddy_os_write(fd, $0.baseAddress, count) }
    }
}
