#if !BUDDY_ONE_MODULE
import BuddyEngine
#endif
import CBuddySupport

// The walker of the report's field lists (ReportFields.swift): one list of fields, in the JSON
// schema's order, that both formats walk.
//
//   JSON   one walk: every field with a key is a member, in list order (objects and arrays as
//          the list opens them);
//   text   one walk per text position: a field's `text:` position says where the text shows it
//          (tens: the line, ones: the place in the line) and the words around it; each walk
//          writes the fields at one position and notes the next one.
//
// A field names where its value is (a key path into the snapshot, struct buddy_stats, or into
// ReportFigures; an offset into a record such as a bad pointer's) and how it is written (a
// ReportValue). The key paths are constant offsets once compiled (ReportFields.swift says how),
// so a field costs one call of `emit`. Nothing here allocates, takes a lock or calls the Swift
// runtime (tools/check-malloc-path.py --roots): no arrays, closures, existentials or strings,
// and if-case chains rather than switches (a jump table the checker may not follow).

/// How a value is written: in the text / in JSON.
enum ReportValue {
    /// UInt64 or UInt32: 1234 / 1234.
    case count
    /// UInt64: 1.5K / 1536.
    case bytes
    /// UInt64 in 1/1024 units (a sampled estimate), rounded: 1234 / 1234.
    case estimate
    /// Double, 0 to 1: 14% / 0.1435.
    case ratio
    /// Double: 4.38 / 4.375000.
    case seconds
    /// Double: 1.500 / 1.500.
    case factor
    /// Double: 31.5 / 31.5.
    case tenths
    /// StaticString: exit / "exit".
    case name
    /// UnsafePointer<UInt8> to a NUL-terminated string: python3 / "python3".
    case cString
    /// UInt32 or UInt64, the index of one of `names` ("a|b|c"; past the last: the last): log / "log".
    case choice
    /// UInt: 0x7f0a... / "0x7f0a...".
    case address
    /// A StaticString's start and length (e.g. "free()"), up to its "(": free / "free".
    case function
    /// The record's index in its table (an order, a slab class).
    case index
    /// A list of symbolized frames ("name+0x12 (file)"): one line each / ["...", "..."].
    case frames
    /// Written by code of its own (ReportPart).
    case part
}

/// Parts of the report that are more than a value (ReportParts.swift).
enum ReportPart {
    case header, healthMessage, entries, latency, orders, slabClasses, sizes, alignments, badPointers, profile
}

/// Where a field's offset points.
enum ReportBase {
    case stats, figures, record
}

/// The field lists (ReportFields.swift, BadPointerLog, AllocationProfile).
enum ReportFieldList {
    case report, orders, slabClasses, badPointer, profileSite
}

/// Whether a text table's columns write their headings or a row.
enum ColumnPass { case heading, row }

/// Writes a report: walks the field lists in either format into a TextBuffer.
struct ReportWriter {
    var out: TextBuffer
    let json: Bool
    let stats: UnsafeMutablePointer<buddy_stats>
    let figures: UnsafePointer<ReportFigures>
    /// The record the record lists read (an order, a slab class, a bad pointer, a profile site).
    var record: UnsafeRawPointer? = nil
    var index = 0
    /// Text: the position this walk writes, and the smallest one above it seen so far.
    var wanted: UInt8 = 0
    var next: UInt8 = 0
    var columns = ColumnPass.heading
    /// JSON: whether the next member is its object's first, and how deep it is (0: the document).
    var first = true
    var level = 0

    init(out: TextBuffer, json: Bool, stats: UnsafeMutablePointer<buddy_stats>, figures: UnsafePointer<ReportFigures>) {
        self.out = out
        self.json = json
        self.stats = stats
        self.figures = figures
    }

    /// Walks one list (an if-case chain: a switch here would be a jump table).
    @inline(never) mutating func walk(_ list: ReportFieldList) {
        if case .report = list { reportFields() }
        else if case .orders = list { orderColumns() }
        else if case .slabClasses = list { slabColumns() }
        else if case .badPointer = list { badPointerFields() }
        else { profileSiteFields() }
    }

    /// The text of `list`: its fields in the order of their positions, one walk per position.
    mutating func writeText(_ list: ReportFieldList) {
        let outer = (wanted, next)
        wanted = 0
        repeat {
            next = 0
            walk(list)
            wanted = next
        } while wanted != 0
        (wanted, next) = outer
    }

    /// `list` as one JSON object on one line.
    mutating func writeObject(_ list: ReportFieldList) {
        out.append("{ ")
        first = true
        level &+= 1
        walk(list)
        out.append(" }")
        first = false
        level &-= 1
    }

    /// An element of a JSON array of records, each on a line of its own.
    mutating func writeElement(_ list: ReportFieldList, first isFirst: Bool) {
        out.append(isFirst ? "\n    " : ",\n    ")
        writeObject(list)
    }

    // MARK: Writing one field

    @inline(never) mutating func emit(_ f: ReportField) {
        if json {
            guard f.key.utf8CodeUnitCount != 0 else { return }
            member(f.key, newLine: f.newLine)
            jsonValue(f)
        } else if f.width != 0 {
            if case .heading = columns { out.append(f.heading, width: f.width) } else { textValue(f) }
        } else if f.at == wanted && wanted != 0 {
            out.append(f.before)
            textValue(f)
            out.append(f.after)
        } else if f.at > wanted && (next == 0 || f.at < next) {
            next = f.at
        }
    }

    /// The separator before a JSON member, and its key.
    mutating func member(_ key: StaticString, newLine: Bool) {
        if first { first = false }
        else if level == 0 { out.append(",\n  ") }
        else { out.append(newLine ? ",\n    " : ", ") }
        out.append(jsonKey: key)
    }

    private func address(_ f: ReportField) -> UnsafeRawPointer {
        if case .stats = f.base { return UnsafeRawPointer(stats) + f.offset }
        if case .figures = f.base { return UnsafeRawPointer(figures) + f.offset }
        return record.unsafelyUnwrapped + f.offset
    }

    /// An integer field's value. A record's 8-byte values are read atomically: other threads
    /// update a live log (the profile's counts) while the report reads it.
    private func integer(_ f: ReportField) -> UInt64 {
        if case .index = f.value { return UInt64(index) }
        let p = address(f)
        if f.size == 4 { return UInt64(p.load(as: UInt32.self)) }
        if case .record = f.base { return buddy_atomic_load_u64_relaxed(p.assumingMemoryBound(to: UInt64.self)) }
        return p.load(as: UInt64.self)
    }

    private mutating func textValue(_ f: ReportField) {
        let v = f.value
        if case .count = v { out.append(decimal: integer(f), width: f.width) }
        else if case .estimate = v { out.append(decimal: (integer(f) &+ 512) / 1024, width: f.width) }
        else if case .index = v { out.append(decimal: integer(f), width: f.width) }
        else if case .bytes = v { out.append(bytes: integer(f), width: f.width) }
        else if case .ratio = v { out.append(percent: address(f).load(as: Double.self)) }
        else if case .seconds = v { out.append(fixed: address(f).load(as: Double.self), digits: 2) }
        else if case .factor = v { out.append(fixed: address(f).load(as: Double.self), digits: 3) }
        else if case .tenths = v { out.append(fixed: address(f).load(as: Double.self), digits: 1) }
        else if case .name = v { out.append(address(f).load(as: StaticString.self)) }
        else if case .cString = v { out.append(cString: address(f).load(as: UnsafePointer<UInt8>.self)) }
        else if case .choice = v { appendName(f.textNames.utf8CodeUnitCount != 0 ? f.textNames : f.names, integer(f)) }
        else if case .address = v { out.append(hex: address(f).load(as: UInt.self)) }
        else if case .function = v { appendFunction(f) }
        else if case .frames = v { writeFrames(f) }
        else { writePart(f.part) }
    }

    private mutating func jsonValue(_ f: ReportField) {
        let v = f.value
        if case .count = v { out.append(decimal: integer(f)) }
        else if case .estimate = v { out.append(decimal: (integer(f) &+ 512) / 1024) }
        else if case .index = v { out.append(decimal: integer(f)) }
        else if case .bytes = v { out.append(decimal: integer(f)) }
        else if case .ratio = v { out.append(fixed: address(f).load(as: Double.self), digits: 4) }
        else if case .seconds = v { out.append(fixed: address(f).load(as: Double.self), digits: 6) }
        else if case .factor = v { out.append(fixed: address(f).load(as: Double.self), digits: 3) }
        else if case .tenths = v { out.append(fixed: address(f).load(as: Double.self), digits: 1) }
        else if case .name = v { out.append(jsonString: address(f).load(as: StaticString.self)) }
        else if case .cString = v { out.append(jsonCString: address(f).load(as: UnsafePointer<UInt8>.self)) }
        // Names, functions and addresses hold nothing JSON escapes.
        else if case .choice = v { out.append(byte: 34); appendName(f.names, integer(f)); out.append(byte: 34) }
        else if case .address = v { out.append(byte: 34); out.append(hex: address(f).load(as: UInt.self)); out.append(byte: 34) }
        else if case .function = v { out.append(byte: 34); appendFunction(f); out.append(byte: 34) }
        else if case .frames = v { writeFrames(f) }
        else { writePart(f.part) }
    }

    /// Name number `index` of "a|b|c" (past the last: the last).
    private mutating func appendName(_ names: StaticString, _ index: UInt64) {
        let p = names.utf8Start
        var i = 0, n: UInt64 = 0
        let count = names.utf8CodeUnitCount
        while n < index {
            var j = i
            while j < count && p[j] != 124 { j &+= 1 }
            if j == count { break }
            i = j &+ 1
            n &+= 1
        }
        while i < count && p[i] != 124 { out.append(byte: p[i]); i &+= 1 }
    }

    /// A function's name from a StaticString's start and length (the word after them in the
    /// record), without its "()".
    private mutating func appendFunction(_ f: ReportField) {
        let p = address(f)
        let length = p.load(fromByteOffset: 8, as: Int.self)
        guard let start = UnsafePointer<UInt8>(bitPattern: p.load(as: UInt.self)) else { return }
        var i = 0
        while i < length && start[i] != 40 { out.append(byte: start[i]); i &+= 1 }
    }

    /// "      #0 name+0x12 (file)" lines, or a JSON array of strings.
    private mutating func writeFrames(_ f: ReportField) {
        let record = self.record.unsafelyUnwrapped
        let count = min(f.limit, max(0, record.load(fromByteOffset: f.countOffset, as: Int.self)))
        if json { out.append("[") }
        for i in 0..<count {
            let text = (record + f.offset + i &* f.stride).assumingMemoryBound(to: UInt8.self)
            if json {
                if i > 0 { out.append(", ") }
                out.append(jsonCString: text)
            } else {
                out.append("      #")
                out.append(decimal: i)
                out.append(byte: 32)
                out.append(cString: text)
                out.append(byte: 10)
            }
        }
        if json { out.append("]") }
    }
}
