import Foundation
import Testing
@testable import BuddyReportKit

/// `buddy-report pprof`: profile.proto written by the tool, read back here by a reader of its own
/// (ProtoReader, below: nothing shared with the writer), by protoc and `go tool pprof` when they
/// are installed, and gzip-compressed as gzip and Python read it.
@Suite struct PprofTests {
    @Test func theFixtureAsAProfile() throws {
        let document = try Support.report("kvstore-errors.json")
        let profile = try PprofProfile([document], resolver: .raw)
        let p = try DecodedProfile(profile.encoded())
        #expect(p.strings.first == "")
        #expect(p.sampleTypes == ["alloc_space/bytes", "samples/count", "inuse_objects/count", "inuse_space/bytes"])
        #expect(p.defaultSampleType == "inuse_space")
        #expect(p.periodType == "space/bytes" && p.period == 524_288)
        #expect(p.timeNanos > 0 && p.durationNanos > 0)
        #expect(p.comments.contains { $0.contains("kvstore (pid 777, at exit") })
        // One sample per site, the leaf first, the wrapper (strdup) left out and named in `via`;
        // the values are the leaks estimates.
        #expect(p.samples.count == 3)
        let leaks = try LeakReport([document], resolver: .raw)
        for (sample, site) in zip(p.samples, leaks.processes[0].sites) {
            let e = site.estimate
            #expect(sample.values == [Int64(e.allocatedBytes ?? e.liveBytes), Int64(e.liveSamples), Int64(e.liveBlocks), Int64(e.liveBytes)])
            #expect(sample.stack.map { $0.last! } == site.stack.map { $0.function ?? "" })
            #expect(sample.labels["pid"] == "777" && sample.labels["program"] == "kvstore")
        }
        #expect(p.samples[0].stack == [["load_table"], ["open_store"], ["main"]])
        #expect(p.samples[0].values == [262_144, 4, 124, 262_144])
        #expect(p.samples[0].labels["inuse_space_error"] == "131072 bytes")
        #expect(p.samples[0].labels["blocks_estimate"] == "mean size")
        #expect(p.samples[2].stack == [["parse_key"], ["main"]] && p.samples[2].labels["via"] == "strdup")
        #expect(p.samples[1].labels["via"] == nil)
        // Shared frames are one location (main, open_store); every id resolves.
        #expect(p.locationCount == 8 && p.functionCount == 6)
        // One module: the program, named as the report has it (no file read without a symbolizer).
        #expect(p.mappings.map(\.filename) == ["/usr/local/bin/kvstore"])
        #expect(p.mappings[0].start == PprofProfile.firstBase && p.mappings[0].hasFunctions)
        // load_table+0x5c: no file, so no address; locations are still distinct.
        #expect(Set(p.samples.flatMap(\.locationIDs)).count == 8)
    }

    @Test func severalProcessesAndNoProfile() throws {
        var a = try Support.report("kvstore-errors.json")
        var b = a
        b.report.pid = 778
        a.report.profile?.sampleBytes = 262_144
        let p = try DecodedProfile(try PprofProfile([a, b], resolver: .raw).encoded())
        #expect(p.samples.count == 6)
        #expect(Set(p.samples.map { $0.labels["pid"]! }) == ["777", "778"])
        #expect(p.period == 524_288)
        // A report without a profile is left out (a note says so); none with one: an error.
        let none = try Support.report("python-exit.json")
        let mixed = try PprofProfile([none, b], resolver: .raw)
        #expect(mixed.samples.count == 3 && mixed.notes.contains { $0.contains("no allocation-site profile") })
        #expect(throws: ToolError.self) { try PprofProfile([none], resolver: .raw) }
    }

    /// Stack groups: one location per recorded frame, its inlined functions first.
    @Test func inlinedFramesAreOneLocation() {
        let frames = [
            SymbolizedFrame(function: "std::vector<int>::push_back", file: "/usr/include/c++/12/bits/stl_vector.h", line: 1287, raw: "a", inlined: true),
            SymbolizedFrame(function: "fill", file: "x.cc", line: 9, raw: "a"),
            SymbolizedFrame(function: "inner", file: "x.cc", line: 20, raw: "b", inlined: true),
            SymbolizedFrame(function: "main", file: "x.cc", line: 30, raw: "b"),
        ]
        let all = PprofProfile.recordedFrames(frames, from: 0)
        #expect(all.map { $0.frames.map(\.function!) } == [["std::vector<int>::push_back", "fill"], ["inner", "main"]])
        // The top frame inside a group: the wrapper inlined into it is left out of that location.
        let fromTop = PprofProfile.recordedFrames(frames, from: 1)
        #expect(fromTop.map { $0.frames.map(\.function!) } == [["fill"], ["inner", "main"]])
        #expect(fromTop.map(\.dropped) == [1, 0])
    }

    @Test func theProtobufWriter() throws {
        var w = ProtobufWriter()
        w.int(1, 150)
        w.int(2, 0)  // proto3: a default value is left out
        w.int(3, -1)
        w.string(4, "testing")
        w.packed(5, [3, 270, 86942] as [UInt64])
        w.bool(6, true)
        // Protocol Buffers' documentation's examples: 150 is 08 96 01, "testing" 22 07 ..., the
        // packed 3, 270, 86942 is 2a 06 03 8e 02 9e a7 05; -1 is ten bytes.
        #expect(w.bytes == [0x08, 0x96, 0x01, 0x18] + [UInt8](repeating: 0xff, count: 9) + [0x01]
            + [0x22, 0x07] + Array("testing".utf8) + [0x2a, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05] + [0x30, 0x01])
        let m = try ProtoReader.parse(w.bytes[...])
        #expect(m.ints(1) == [150] && m.ints(3) == [UInt64.max] && m.string(4) == "testing" && m.ints(5) == [3, 270, 86942])
    }

    @Test func gzipFiles() throws {
        #expect(Gzip.crc32(Array("123456789".utf8)) == 0xcbf4_3926)  // the CRC-32 check value
        let directory = try Support.temporaryDirectory()
        var seed: UInt64 = 42
        let text = Array((0..<200_000).map { i -> UInt8 in
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return i % 3 == 0 ? UInt8(truncatingIfNeeded: seed >> 56) : UInt8(ascii: "a") + UInt8(i % 7)
        })
        for (name, input) in [("empty", [UInt8]()), ("text", text)] {
            for method in [Gzip.Method.stored, .zlib] where method == .stored || Gzip.hasZlib {
                let file = directory.appendingPathComponent("\(name).\(method.rawValue).gz").path
                let (bytes, used) = Gzip.compress(input, method: method)
                #expect(used == method)
                try Data(bytes).write(to: URL(fileURLWithPath: file))
                let test = try Support.run(["gzip", "-t", file])
                #expect(test.status == 0, "\(name) \(method): \(test.stderr)")
                let python = try Support.run(["python3", "-c", "import gzip, hashlib, sys; d = gzip.open(sys.argv[1]).read(); print(len(d), hashlib.sha256(d).hexdigest())", file])
                let expected = try Support.run(["sh", "-c", "gzip -dc '\(file)' | wc -c"])
                #expect(python.stdout.hasPrefix("\(input.count) "), "\(name) \(method): \(python.output)")
                #expect(expected.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(input.count)")
                // A third of the bytes are random: zlib shrinks the rest.
                if method == .zlib && !input.isEmpty { #expect(bytes.count < input.count * 6 / 10) }
                if method == .stored { #expect(bytes.count == input.count + 18 + 5 * max(1, (input.count + 65534) / 65535)) }
            }
        }
    }

    /// The command on a real program: a gzip file whose samples name the program's functions and
    /// lines, with the modules as mappings whose addresses lead back to the same functions.
    @Test(.enabled(if: Support.canProfile && Support.tool != nil, "needs cc, the tool and a libBuddyMalloc.so that writes JSON reports"),
          .timeLimit(.minutes(1)))
    func aRealProgramsProfile() throws {
        let directory = try Support.temporaryDirectory()
        let program = try Support.compile("sites", in: directory)
        let report = try Support.profile(program, in: directory).file
        let output = directory.appendingPathComponent("sites.pb.gz").path
        let result = try Support.runTool(["pprof", report, "-o", output])
        #expect(result.status == 0 && result.stdout == output + "\n", "\(result.stderr)")
        #expect(try Support.run(["gzip", "-t", output]).status == 0)
        let raw = directory.appendingPathComponent("sites.pb").path
        #expect(try Support.run(["sh", "-c", "gzip -dc '\(output)' > '\(raw)'"]).status == 0)
        let p = try DecodedProfile(Array(try Data(contentsOf: URL(fileURLWithPath: raw))))

        func sample(_ leaf: String) -> DecodedProfile.Sample? { p.samples.first { $0.stack.first?.last == leaf } }
        let big = try #require(sample("hold_big"), "\(p.samples.map(\.stack))")
        #expect(big.values[3] == 20 << 20 && big.values[2] == 1)
        #expect(big.stack[1] == ["main"])
        let holdBig = try #require(p.location(big.locationIDs[0]))
        #expect(holdBig.lines.first?.file.hasSuffix("sites.c") == true)
        #expect(holdBig.lines.first?.line == Int64(try Support.siteLine("hold_big")))
        let names = try #require(sample("make_name"))
        #expect(names.labels["via"] == "xmalloc" && names.stack[1] == ["keep_names"])
        #expect(!p.samples.contains { $0.stack.joined().contains { $0 == "xmalloc" || $0 == "churn" } })

        // The program's mapping: its file, its build-id, its code segment as a process maps it.
        let mapping = try #require(p.mappings.first { $0.id == holdBig.mappingID })
        #expect(mapping.filename == program)
        #expect(mapping.buildID.count == 40 && mapping.buildID.allSatisfy(\.isHexDigit))
        #expect(mapping.hasFunctions && mapping.start <= holdBig.address && holdBig.address < mapping.limit)
        // pprof's rule for a shared object or PIE: the file's address is x - start + offset -
        // p_offset + p_vaddr of the segment holding `offset` (readelf's, not the tool's); addr2line
        // names the function there (the return address minus one).
        let headers = try Support.run(["readelf", "-lW", program])
        let load = try #require(headers.stdout.split(separator: "\n").map { $0.split(separator: " ") }.first {
            $0.first == "LOAD" && UInt64($0[1].dropFirst(2), radix: 16) == mapping.offset
        }, "no LOAD at offset \(mapping.offset): \(headers.stdout)")
        let fileAddress = holdBig.address - mapping.start + mapping.offset - UInt64(load[1].dropFirst(2), radix: 16)! + UInt64(load[2].dropFirst(2), radix: 16)!
        let named = try Support.run(["addr2line", "-f", "-e", program, "0x" + String(fileAddress - 1, radix: 16)])
        #expect(named.stdout.hasPrefix("hold_big\n"), "\(named.output)")

        // protoc and go tool pprof, when installed, read it too.
        let proto = "/usr/share/gocode/src/github.com/google/pprof/proto/profile.proto"
        if let protoc = Support.command("protoc"), FileManager.default.fileExists(atPath: proto) {
            let decoded = try Support.run(["sh", "-c", "'\(protoc)' -I '\((proto as NSString).deletingLastPathComponent)' --decode=perftools.profiles.Profile profile.proto < '\(raw)'"])
            #expect(decoded.status == 0 && decoded.stdout.contains("default_sample_type:"), "\(decoded.stderr)")
        }
        if let go = Self.go {
            let top = try Support.run([go, "tool", "pprof", "-top", "-sample_index=inuse_space", output],
                                      environment: ["HOME": directory.path, "GOCACHE": directory.appendingPathComponent("go").path])
            #expect(top.status == 0, "\(top.stderr)")
            #expect(top.stdout.contains("hold_big") && top.stdout.contains("Type: inuse_space"), "\(top.stdout)")
        }
    }

    /// `go` on PATH, or Debian's golang packages' (/usr/lib/go-1.N/bin), for `go tool pprof`.
    static let go: String? = {
        if let go = Support.command("go") { return go }
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib")) ?? []
        return versions.filter { $0.hasPrefix("go-") }.sorted().last.map { "/usr/lib/\($0)/bin/go" }
            .flatMap { FileManager.default.isExecutableFile(atPath: $0) ? $0 : nil }
    }()
}

// MARK: - A protobuf reader of the tests' own

/// Decodes protobuf's wire format into fields by number, knowing nothing of the schema: varints
/// (wire type 0), length-delimited bytes (2), and 64- and 32-bit values (1, 5) skipped.
struct ProtoReader {
    enum Value { case varint(UInt64), bytes(ArraySlice<UInt8>) }
    var fields: [Int: [Value]] = [:]

    struct Malformed: Error {}

    static func varint(_ bytes: ArraySlice<UInt8>, _ i: inout Int) throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard i < bytes.endIndex, shift < 64 else { throw Malformed() }
            let b = bytes[i]
            i += 1
            value |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return value }
            shift += 7
        }
    }

    static func parse(_ bytes: ArraySlice<UInt8>) throws -> ProtoReader {
        var m = ProtoReader()
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let key = try varint(bytes, &i)
            let field = Int(key >> 3)
            switch key & 7 {
            case 0: m.fields[field, default: []].append(.varint(try varint(bytes, &i)))
            case 2:
                let n = Int(try varint(bytes, &i))
                guard i + n <= bytes.endIndex else { throw Malformed() }
                m.fields[field, default: []].append(.bytes(bytes[i..<i + n]))
                i += n
            case 1: i += 8
            case 5: i += 4
            default: throw Malformed()
            }
        }
        guard i == bytes.endIndex else { throw Malformed() }
        return m
    }

    /// A repeated integer field, packed or not.
    func ints(_ field: Int) -> [UInt64] {
        (fields[field] ?? []).flatMap { value -> [UInt64] in
            switch value {
            case .varint(let v): return [v]
            case .bytes(let b):
                var i = b.startIndex
                var out: [UInt64] = []
                while i < b.endIndex, let v = try? Self.varint(b, &i) { out.append(v) }
                return out
            }
        }
    }

    func int(_ field: Int) -> UInt64 { ints(field).last ?? 0 }

    func messages(_ field: Int) throws -> [ProtoReader] {
        try (fields[field] ?? []).map { value in
            guard case .bytes(let b) = value else { throw Malformed() }
            return try Self.parse(b)
        }
    }

    func strings(_ field: Int) -> [String] {
        (fields[field] ?? []).compactMap { value in
            if case .bytes(let b) = value { return String(decoding: b, as: UTF8.self) }
            return nil
        }
    }

    func string(_ field: Int) -> String? { strings(field).last }
}

/// profile.proto's messages as the tests look at them: strings resolved, each sample's stack as
/// function names (each location's lines, inlined first).
struct DecodedProfile {
    struct Sample {
        var locationIDs: [UInt64]
        /// Leaf first; each location's function names.
        var stack: [[String]]
        var values: [Int64]
        /// key -> "string", or "number" / "number unit".
        var labels: [String: String]
    }
    struct Mapping {
        var id: UInt64, start: UInt64, limit: UInt64, offset: UInt64
        var filename: String, buildID: String
        var hasFunctions: Bool
    }
    struct Line { var function: String; var file: String; var line: Int64 }
    struct Location { var id: UInt64; var mappingID: UInt64; var address: UInt64; var lines: [Line] }

    var strings: [String]
    var sampleTypes: [String]
    var samples: [Sample] = []
    var mappings: [Mapping] = []
    var locations: [UInt64: Location] = [:]
    var functionCount = 0
    var locationCount: Int { locations.count }
    var periodType: String
    var period: Int64
    var timeNanos: Int64
    var durationNanos: Int64
    var comments: [String]
    var defaultSampleType: String

    func location(_ id: UInt64) -> Location? { locations[id] }

    struct Invalid: Error, CustomStringConvertible { var description: String }

    init(_ bytes: [UInt8]) throws {
        let m = try ProtoReader.parse(bytes[...])
        strings = m.strings(6)
        let s = strings
        func str(_ index: UInt64) throws -> String {
            guard index < s.count else { throw Invalid(description: "string index \(index) of \(s.count)") }
            return s[Int(index)]
        }
        sampleTypes = try m.messages(1).map { "\(try str($0.int(1)))/\(try str($0.int(2)))" }
        var functions: [UInt64: (String, String)] = [:]
        for f in try m.messages(5) {
            guard f.int(1) != 0 else { throw Invalid(description: "function id 0") }
            functions[f.int(1)] = (try str(f.int(2)), try str(f.int(4)))
        }
        functionCount = functions.count
        for l in try m.messages(4) {
            guard l.int(1) != 0 else { throw Invalid(description: "location id 0") }
            let lines = try l.messages(4).map { line -> Line in
                guard let f = functions[line.int(1)] else { throw Invalid(description: "no function \(line.int(1))") }
                return Line(function: f.0, file: f.1, line: Int64(bitPattern: line.int(2)))
            }
            locations[l.int(1)] = Location(id: l.int(1), mappingID: l.int(2), address: l.int(3), lines: lines)
        }
        mappings = try m.messages(3).map {
            Mapping(id: $0.int(1), start: $0.int(2), limit: $0.int(3), offset: $0.int(4), filename: try str($0.int(5)),
                    buildID: try str($0.int(6)), hasFunctions: $0.int(7) != 0)
        }
        let mappingIDs = Set(mappings.map(\.id))
        for l in locations.values where l.mappingID != 0 && !mappingIDs.contains(l.mappingID) {
            throw Invalid(description: "location \(l.id): no mapping \(l.mappingID)")
        }
        let locs = locations
        samples = try m.messages(2).map { sample in
            let ids = sample.ints(1)
            let stack = try ids.map { id -> [String] in
                guard let l = locs[id] else { throw Invalid(description: "no location \(id)") }
                return l.lines.map(\.function)
            }
            var labels: [String: String] = [:]
            for label in try sample.messages(3) {
                let key = try str(label.int(1))
                if label.int(2) != 0 {
                    labels[key] = try str(label.int(2))
                } else {
                    labels[key] = "\(Int64(bitPattern: label.int(3)))" + (label.int(4) != 0 ? " \(try str(label.int(4)))" : "")
                }
            }
            return Sample(locationIDs: ids, stack: stack, values: sample.ints(2).map { Int64(bitPattern: $0) }, labels: labels)
        }
        for sample in samples where sample.values.count != sampleTypes.count {
            throw Invalid(description: "a sample with \(sample.values.count) values for \(sampleTypes.count) types")
        }
        let periodMessages = try m.messages(11)
        periodType = try periodMessages.first.map { "\(try str($0.int(1)))/\(try str($0.int(2)))" } ?? ""
        period = Int64(bitPattern: m.int(12))
        timeNanos = Int64(bitPattern: m.int(9))
        durationNanos = Int64(bitPattern: m.int(10))
        comments = try m.ints(13).map(str)
        defaultSampleType = try str(m.int(14))
    }
}
