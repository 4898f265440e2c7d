import CBuddySupport

/// 512 bytes on the stack: a TextBuffer's storage, and scratch space for C functions that write
/// text (the symbolizer's frame names).
package typealias TextStorage = (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                                 UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                                 UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                                 UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                                 UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                                 UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                                 UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                                 UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)

@inline(__always) package func emptyTextStorage() -> TextStorage {
    (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
}

/// Text built on the stack, for every message and report that must not allocate, and the one
/// formatter of numbers: decimal, signed, hex, byte sizes, fixed point, percentages, durations,
/// right-aligned columns, JSON strings. Two modes, one type:
///
///     TextBuffer()                a line: at most `capacity` bytes, truncated (never failing)
///                                 when full; `write(to:)` writes it
///     TextBuffer(flushingTo: fd)  a sink: written to fd whenever it fills and at `flush()`, so
///                                 text of any length goes out in a few write(2) calls, whole
///
/// `copyCString` hands the text to the OS (a path), NUL-terminated.
package struct TextBuffer {
    private var storage = emptyTextStorage()
    package private(set) var count = 0
    /// The descriptor a sink flushes to; -1 for a line.
    private let sink: Int32
    package static let capacity = 511

    /// A line, truncated when full.
    package init() { sink = -1 }

    /// A sink that writes to `fd` whenever it fills (call `flush()` at the end).
    package init(flushingTo fd: Int32) { sink = fd }

    // MARK: Bytes and text

    package mutating func append(byte: UInt8) {
        if count == TextBuffer.capacity {
            if sink < 0 { return }
            flush()
        }
        let at = count
        withUnsafeMutableBytes(of: &storage) { $0[at] = byte }
        count &+= 1
    }

    package mutating func append(_ text: StaticString) {
        let start = text.utf8Start
        for i in 0..<text.utf8CodeUnitCount { append(byte: start[i]) }
    }

    /// A NUL-terminated string, at most `limit` bytes of it.
    package mutating func append(cString: UnsafePointer<UInt8>, limit: Int = .max) {
        var i = 0
        while i < limit, cString[i] != 0 {
            append(byte: cString[i])
            i &+= 1
        }
    }

    package mutating func append(cString: UnsafePointer<CChar>, limit: Int = .max) {
        append(cString: UnsafeRawPointer(cString).assumingMemoryBound(to: UInt8.self), limit: limit)
    }

    // MARK: Numbers

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

    /// Signed: a minus sign before negative values.
    package mutating func append(decimal value: Int) {
        if value < 0 { append(byte: 45) }
        append(decimal: UInt64(value.magnitude))
    }

    /// "0x" and the digits, lowercase, without leading zeros.
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

    /// A byte count the way people read it: 512B, 1.5K, 64K, 3.2M, 2.0G.
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

    /// `value` with `digits` decimals (no exponent, as JSON wants; NaN and infinities as 0).
    package mutating func append(fixed value: Double, digits: Int) {
        var v = value
        if !(v.isFinite) { v = 0 }
        if v < 0 { append(byte: 45); v = -v }
        var scale: UInt64 = 1
        for _ in 0..<digits { scale &*= 10 }
        if v >= 1e18 / Double(scale) { append(decimal: v < 18446744073709551615.0 ? UInt64(v) : UInt64.max); return }
        // Half up by truncation (v >= 0 here): .rounded() calls libm's round, which is not on
        // POSIX's async-signal-safe list, and the signal handler writes reports.
        let scaled = UInt64(v * Double(scale) + 0.5)
        append(decimal: scaled / scale)
        if digits > 0 {
            append(byte: 46)
            var fraction = scaled % scale
            var divisor = scale / 10
            while divisor > 0 {
                append(byte: UInt8(truncatingIfNeeded: 48 &+ fraction / divisor))
                fraction %= divisor
                divisor /= 10
            }
        }
    }

    /// A ratio as a whole percentage: "14%".
    package mutating func append(percent ratio: Double) {
        append(fixed: ratio * 100, digits: 0)
        append(byte: 37)
    }

    /// A duration in nanoseconds the way people read it: 850ns, 12us, 3.4ms, 1.2s.
    package mutating func append(duration ns: UInt64) {
        if ns < 1000 { append(decimal: ns); append("ns"); return }
        if ns < 1_000_000 { append(fixed: Double(ns) / 1e3, digits: ns < 10_000 ? 1 : 0); append("us"); return }
        if ns < 1_000_000_000 { append(fixed: Double(ns) / 1e6, digits: ns < 10_000_000 ? 1 : 0); append("ms"); return }
        append(fixed: Double(ns) / 1e9, digits: 2)
        append(byte: 115)
    }

    // MARK: Columns

    /// `value` right-aligned in `width` columns.
    package mutating func append(decimal value: UInt64, width: Int) {
        guard width > 0 else { append(decimal: value); return }
        let start = beginColumn(width)
        append(decimal: value)
        alignRight(from: start, width: width)
    }

    /// `value` as a byte count (`append(bytes:)`), right-aligned in `width` columns.
    package mutating func append(bytes value: UInt64, width: Int) {
        guard width > 0 else { append(bytes: value); return }
        let start = beginColumn(width)
        append(bytes: value)
        alignRight(from: start, width: width)
    }

    /// `text` right-aligned in `width` columns (a heading).
    package mutating func append(_ text: StaticString, width: Int) {
        let start = beginColumn(width)
        append(text)
        alignRight(from: start, width: width)
    }

    /// Where a right-aligned column starts. A sink makes room for it first, so that the text of
    /// the column is still in the buffer when `alignRight` moves it (a number or a heading is
    /// at most 32 bytes).
    private mutating func beginColumn(_ width: Int) -> Int {
        if sink >= 0 && count &+ max(width, 32) > TextBuffer.capacity { flush() }
        return count
    }

    /// Moves what was appended since `start` to the right of `width` columns, spaces before it.
    private mutating func alignRight(from start: Int, width: Int) {
        let pad = width &- (count &- start)
        guard pad > 0 else { return }
        let end = min(count &+ pad, TextBuffer.capacity)
        withUnsafeMutableBytes(of: &storage) { raw in
            var i = end
            while i > start &+ pad { i &-= 1; raw[i] = raw[i &- pad] }
            while i > start { i &-= 1; raw[i] = 32 }
        }
        count = end
    }

    // MARK: JSON

    /// A JSON string: quotes, backslashes and control characters escaped.
    package mutating func append(jsonString text: StaticString) {
        append(byte: 34)
        let start = text.utf8Start
        for i in 0..<text.utf8CodeUnitCount { appendEscaped(start[i]) }
        append(byte: 34)
    }

    /// A NUL-terminated string as a JSON string. (Not `jsonString:`: a string literal would
    /// become a Swift String converted to a pointer, which allocates.)
    package mutating func append(jsonCString cString: UnsafePointer<UInt8>) {
        append(byte: 34)
        var i = 0
        while cString[i] != 0 { appendEscaped(cString[i]); i &+= 1 }
        append(byte: 34)
    }

    /// `"name": ` of a JSON object's member.
    package mutating func append(jsonKey name: StaticString) {
        append(byte: 34)
        append(name)
        append("\": ")
    }

    private mutating func appendEscaped(_ c: UInt8) {
        if c == 34 || c == 92 { append(byte: 92); append(byte: c) }
        else if c < 32 {
            append("\\u00")
            append(byte: 48 &+ c / 16)
            let low = c % 16
            append(byte: low < 10 ? 48 &+ low : 87 &+ low)
        } else { append(byte: c) }
    }

    // MARK: Out

    /// A line: writes its text to `fd` (the text stays).
    package func write(to fd: Int32) {
        withUnsafeBytes(of: storage) { buddy_os_write(fd, $0.baseAddress, count) }
    }

    /// A sink: writes what it holds to its descriptor and empties it.
    package mutating func flush() {
        if count == 0 || sink < 0 { return }
        let n = count
        withUnsafeBytes(of: &storage) { buddy_os_write(sink, $0.baseAddress, n) }
        count = 0
    }

    /// Copies the text, NUL-terminated, to the start of `destination` (at least capacity + 1
    /// bytes, e.g. a TextStorage): a path for the OS. (Not a `withCString` taking a closure: a
    /// call through a pointer that was not inlined is one tools/check-malloc-path.py cannot follow.)
    package func copyCString(to destination: UnsafeMutableRawBufferPointer) {
        let n = min(count, destination.count &- 1)
        withUnsafeBytes(of: storage) { destination.baseAddress.unsafelyUnwrapped.copyMemory(from: $0.baseAddress.unsafelyUnwrapped, byteCount: n) }
        destination[n] = 0
    }

    /// The text, for tests.
    package var text: String {
        var copy = storage
        return withUnsafeMutableBytes(of: &copy) { String(decoding: $0.prefix(count), as: UTF8.self) }
    }
}
