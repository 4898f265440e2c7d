import CBuddySupport
import Foundation
import Glibc
import Testing
@testable import BuddyEngine
@testable import BuddyMallocCore

/// The report writer, byte for byte: a synthetic snapshot whose every field holds a value of its
/// own, rendered in both formats and compared with Tests/Fixtures/writer (written by the writer as
/// it stood before its field table; `REPORT_GOLDEN_WRITE=1 swift test --filter ReportWriterTests`
/// rewrites them, for a deliberate change of the format). A field read from the wrong place, a
/// key or a separator out of place, a number formatted otherwise: each changes the text.
@Suite struct ReportWriterTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/writer")

    /// Every 8-byte word a different value of its own magnitude (bytes to terabytes), then the
    /// fields that are not counters set to what a pool could report.
    static func fullSnapshot() -> buddy_stats {
        var s = buddy_stats()
        withUnsafeMutableBytes(of: &s) { raw in
            for i in 0..<(raw.count / 8) {
                let v = (UInt64(i &+ 1) &* 0x9E37_79B9_7F4A_7C15) >> UInt64(24 + i % 37)
                raw.storeBytes(of: v, toByteOffset: i * 8, as: UInt64.self)
            }
        }
        s.version = 1
        s.size = UInt32(MemoryLayout<buddy_stats>.size)
        s.created = 1764012345.125
        s.now = 1764012349.5
        s.uptime = 4.375
        s.last_activity = 1764012349.25
        s.growth_factor = 1.5
        // Neighbours with different values: one read from the other's place shows.
        s.thread_safety = 1
        s.on_error = 0
        s.usage = 0.14349
        s.internal_fragmentation = 0.29633
        s.external_fragmentation = 0.7
        s.order_count = 14
        s.health = 0
        s.latency_mode = UInt32(BUDDY_LATENCY_SAMPLED.rawValue)
        s.latency_period = 1024
        s.alloc_samples = 7
        s.free_samples = 1
        s.slab_class_count = 5
        s.slab_pad_ = 0
        s.small_slab_class_count = 2
        s.small_slab_pad_ = 0
        withUnsafeMutablePointer(to: &s) { p in
            // An order and a slab class with nothing in them (the text leaves them out).
            statsOrders(p)[3] = buddy_order_stats()
            statsOrders(p)[5] = buddy_order_stats(block_size: 512, live: 0, free: 0, cached: 0, allocations: 0,
                                                  splits: 0, coalesces: 0, frees: 9)
            statsSlabs(p)[2] = buddy_slab_stats()
            // Empty buckets are left out; the last one is "<= 16.0E" in the text.
            for b in stride(from: 0, to: 64, by: 3) { statsSizes(p)[b] = 0 }
            for b in 0..<64 where b % 5 != 0 { statsAlignments(p)[b] = 0 }
            statsAlignments(p)[63] = 0
            statsFailures(p)[Entry.calloc.rawValue] = 0
            statsFailures(p)[Entry.free.rawValue] = 0
        }
        return s
    }

    /// A pool that has done nothing yet, without slabs or latency samples.
    static func emptySnapshot() -> buddy_stats {
        var s = buddy_stats()
        s.version = 1
        s.size = UInt32(MemoryLayout<buddy_stats>.size)
        s.created = 1764012345
        s.now = 1764012345
        s.last_activity = 1764012345
        s.min_block = 16
        s.max_block = 8 << 20
        s.initial_size = 8 << 20
        s.growth_factor = 2
        s.thread_safety = 2
        s.on_error = 1
        s.order_count = 20
        s.latency_mode = UInt32(BUDDY_LATENCY_OFF.rawValue)
        s.reserved = 8 << 20
        s.free = 8 << 20
        s.segments = 1
        s.segments_added = 1
        s.largest_free_block = 8 << 20
        withUnsafeMutablePointer(to: &s) { p in
            for order in 0..<20 { statsOrders(p)[order].block_size = 16 << UInt64(order) }
            statsOrders(p)[19].free = 1
        }
        return s
    }

    /// What the writer renders for `stats`, as process 4242 running "golden".
    static func render(_ stats: buddy_stats, reason: ReportReason, sequence: UInt64, json: Bool) -> String {
        var copy = stats
        let context = ReportContext(reason: reason, sequence: sequence,
                                    format: Int32((json ? BUDDY_REPORT_JSON : BUDDY_REPORT_TEXT).rawValue), processPool: false)
        let program: StaticString = "golden"
        return captured { sink in
            withUnsafeMutablePointer(to: &copy) { s in
                Report.render(s, context, pid: 4242, ppid: 4241, program: program.utf8Start, to: &sink)
            }
        }
    }

    static let cases: [(name: String, stats: buddy_stats, reason: ReportReason, sequence: UInt64)] = [
        ("full", fullSnapshot(), .signal, 7),
        ("empty", emptySnapshot(), .exit, 0),
    ]

    @Test(arguments: ["full", "empty"], [false, true])
    func matchesTheFixture(_ name: String, _ json: Bool) throws {
        let c = try #require(Self.cases.first { $0.name == name })
        let text = Self.render(c.stats, reason: c.reason, sequence: c.sequence, json: json)
        let file = Self.fixtures.appendingPathComponent("\(name).\(json ? "json" : "txt")")
        if ProcessInfo.processInfo.environment["REPORT_GOLDEN_WRITE"] == "1" {
            try FileManager.default.createDirectory(at: Self.fixtures, withIntermediateDirectories: true)
            try text.write(to: file, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: file, encoding: .utf8)
        #expect(text == expected, "\(file.lastPathComponent) differs:\n\(text)")
        if json {
            // And it is JSON.
            #expect(throws: Never.self) { try JSONSerialization.jsonObject(with: Data(text.utf8)) }
        }
    }
}

/// What `body` writes through a sink (a flushing TextBuffer), read back from an anonymous temporary file.
func captured(_ body: (inout TextBuffer) -> Void) -> String {
    let file = tmpfile()!
    defer { fclose(file) }
    let fd = fileno(file)
    var sink = TextBuffer(flushingTo: fd)
    body(&sink)
    sink.flush()
    lseek(fd, 0, SEEK_SET)
    var all: [UInt8] = []
    var bytes = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(fd, &bytes, 4096)
        if n <= 0 { break }
        all += bytes.prefix(n)
    }
    return String(decoding: all, as: UTF8.self)
}

/// The one text buffer: a line truncates, a sink flushes, and columns stay aligned across a flush.
@Suite struct TextBufferTests {
    @Test func aLineTruncates() {
        var line = TextBuffer()
        for _ in 0..<60 { line.append("0123456789") }
        #expect(line.count == TextBuffer.capacity && line.text.hasPrefix("0123456789"))
        line.append(byte: 65)
        #expect(line.count == TextBuffer.capacity && !line.text.contains("A"))
    }

    @Test func numbers() {
        var line = TextBuffer()
        line.append(decimal: -42)
        line.append(byte: 32)
        line.append(hex: 0xdead_beef)
        line.append(byte: 32)
        line.append(hex: 0)
        line.append(byte: 32)
        line.append(decimal: UInt64.max)
        line.append(byte: 32)
        line.append(bytes: 1536, width: 8)
        line.append(bytes: 3 << 30)
        line.append(byte: 32)
        line.append(fixed: 1e30, digits: 2)
        #expect(line.text == "-42 0xdeadbeef 0x0 18446744073709551615     1.5K3.0G 18446744073709551615")
    }

    @Test func columnsAcrossFlushes() {
        let text = captured { sink in
            for i in 0..<400 { sink.append(decimal: UInt64(i) * 37, width: 9); sink.append(bytes: UInt64(i) << 12, width: 7) }
        }
        let expected = (0..<400).map { i -> String in
            var line = TextBuffer()
            line.append(bytes: UInt64(i) << 12)
            let decimal = String(i * 37), size = line.text
            return String(repeating: " ", count: 9 - decimal.count) + decimal + String(repeating: " ", count: max(0, 7 - size.count)) + size
        }.joined()
        #expect(text == expected)
    }

    @Test func cStrings() {
        var path = TextBuffer()
        path.append("/tmp/report.")
        path.append(decimal: 7)
        var bytes = [UInt8](repeating: 0xFF, count: 600)
        bytes.withUnsafeMutableBytes { path.copyCString(to: $0) }
        #expect(Array(bytes.prefix(15)) == Array("/tmp/report.7\0".utf8) + [0xFF])
        let name: StaticString = "a\"b"
        #expect(captured { $0.append(jsonCString: name.utf8Start) } == "\"a\\\"b\"")
    }
}
