/// A protocol buffers encoder, for the few messages `buddy-report pprof` writes (proto3 wire format:
/// varints, length-delimited fields, packed repeated integers). No dependency, no reflection: the
/// caller writes each field by its number.
///
/// Wire types: 0 varint (int64, uint64, bool), 2 length-delimited (string, bytes, messages, packed
/// repeated scalars). proto3 leaves out scalar fields equal to their default (0, false, ""): so
/// does `int`/`uint`/`bool` here, unless `always` is set (a value of a repeated field, for one).
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    /// A base-128 varint, low groups first (an int64 as its two's-complement uint64: negative
    /// values take 10 bytes, as protobuf's int64 does).
    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func key(_ field: Int, wireType: Int) {
        varint(UInt64(field << 3 | wireType))
    }

    /// An int64 field (wire type 0); left out when 0.
    mutating func int(_ field: Int, _ value: Int64, always: Bool = false) {
        guard value != 0 || always else { return }
        key(field, wireType: 0)
        varint(UInt64(bitPattern: value))
    }

    mutating func int(_ field: Int, _ value: Int, always: Bool = false) {
        int(field, Int64(value), always: always)
    }

    /// A uint64 field; left out when 0.
    mutating func uint(_ field: Int, _ value: UInt64, always: Bool = false) {
        guard value != 0 || always else { return }
        key(field, wireType: 0)
        varint(value)
    }

    /// A bool field; left out when false.
    mutating func bool(_ field: Int, _ value: Bool) {
        guard value else { return }
        key(field, wireType: 0)
        varint(1)
    }

    /// A length-delimited field: bytes, a string's UTF-8, or an encoded message. Written even when
    /// empty (an element of a repeated field: string_table[0] is "").
    mutating func bytes(_ field: Int, _ value: [UInt8]) {
        key(field, wireType: 2)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func string(_ field: Int, _ value: String) {
        bytes(field, Array(value.utf8))
    }

    /// An embedded message, built by `body`.
    mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        body(&inner)
        bytes(field, inner.bytes)
    }

    /// A packed repeated integer field (proto3's default encoding); left out when empty.
    mutating func packed(_ field: Int, _ values: [UInt64]) {
        guard !values.isEmpty else { return }
        var inner = ProtobufWriter()
        for v in values { inner.varint(v) }
        bytes(field, inner.bytes)
    }

    mutating func packed(_ field: Int, _ values: [Int64]) {
        packed(field, values.map { UInt64(bitPattern: $0) })
    }
}
