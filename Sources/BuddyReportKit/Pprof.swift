import Foundation

/// `buddy-report pprof`: the sites of one or more reports as a pprof profile (profile.proto,
/// package `perftools.profiles`), which `pprof`, `go tool pprof` and speedscope read.
///
/// One sample per site, its stack from the top frame outwards (allocator wrappers left out, as in
/// collapsed stacks and flame graphs; they are the sample's `via` label), leaf first as pprof wants
/// it. Values, estimated as `leaks` estimates them (README, "buddy-report leaks"):
///
///     alloc_space/bytes    bytes allocated at the site so far (freed ones included)
///     samples/count        live samples (each one sampled block)
///     inuse_objects/count  estimated live blocks
///     inuse_space/bytes    estimated live bytes (the default sample type)
///
/// Labels: `pid` and `program` (several reports: `pprof -tagfocus pid=N`), `via` (the wrappers
/// skipped), `inuse_space_error` (one standard error of inuse_space, bytes), `blocks_estimate`
/// (how inuse_objects was estimated).
///
/// A location is one recorded frame (one return address): its lines are the symbolized frames,
/// inlined functions first, as in pprof. A mapping is one module's code segment; the report has no
/// load addresses, so each module is loaded, on paper, at an address of its own (from
/// 0x7f0000000000, 4 GiB apart; a classic non-PIE executable at its link address), and a frame's
/// address is that plus its offset from the module's load address, as in the process: pprof, given
/// the files (filename, build_id), can symbolize them again itself.
public struct PprofProfile {
    public struct ValueType: Equatable, Sendable {
        public var type: String
        public var unit: String
    }

    public struct Label: Equatable, Sendable {
        public var key: String
        public var str: String?
        public var num: Int64?
        public var numUnit: String?
    }

    public struct Sample: Sendable {
        /// Leaf first.
        public var locationIDs: [UInt64]
        /// One per sample type.
        public var values: [Int64]
        public var labels: [Label]
    }

    public struct Mapping: Sendable {
        public var id: UInt64
        public var memoryStart: UInt64
        public var memoryLimit: UInt64
        public var fileOffset: UInt64
        public var filename: String
        public var buildID: String
        public var hasFunctions: Bool
        public var hasFilenames: Bool
        public var hasLineNumbers: Bool
        public var hasInlineFrames: Bool
    }

    public struct Line: Sendable {
        public var functionID: UInt64
        public var line: Int64
    }

    public struct Location: Sendable {
        public var id: UInt64
        /// 0: no module.
        public var mappingID: UInt64
        public var address: UInt64
        /// Inlined functions first, the function the address is in last.
        public var lines: [Line]
    }

    public struct Function: Sendable {
        public var id: UInt64
        public var name: String
        public var systemName: String
        public var filename: String
        public var startLine: Int64
    }

    public static let sampleTypes = [
        ValueType(type: "alloc_space", unit: "bytes"),
        ValueType(type: "samples", unit: "count"),
        ValueType(type: "inuse_objects", unit: "count"),
        ValueType(type: "inuse_space", unit: "bytes"),
    ]

    public var sampleTypes: [ValueType] = Self.sampleTypes
    public var defaultSampleType = "inuse_space"
    public var samples: [Sample] = []
    public var mappings: [Mapping] = []
    public var locations: [Location] = []
    public var functions: [Function] = []
    public var periodType = ValueType(type: "space", unit: "bytes")
    /// One sample per this many bytes allocated (the largest of the reports' periods).
    public var period: Int64 = 0
    public var timeNanos: Int64 = 0
    public var durationNanos: Int64 = 0
    public var comments: [String] = []
    /// For the reader (reports without a profile, several sampling periods).
    public var notes: [String] = []

    /// The first mapping's synthetic start, and the space each module gets.
    static let firstBase: UInt64 = 0x7f00_0000_0000
    static let moduleSpan: UInt64 = 1 << 32
    static let pageSize: UInt64 = 4096

    /// `documents`: one report per process (each file's last). Throws when none has a profile.
    public init(_ documents: [ReportDocument], resolver: SiteResolver) throws(ToolError) {
        let reports = documents.map(\.report)
        let profiled = documents.filter { ($0.report.profile?.sampleBytes ?? 0) > 0 }
        guard !profiled.isEmpty else {
            throw ToolError("\(documents.map(\.label).joined(separator: ", ")): no allocation-site profile (the program ran without BUDDY_PROFILE_SAMPLE); run it again with e.g. BUDDY_PROFILE_SAMPLE=64K (buddy-report run --set PROFILE_SAMPLE=64K -- PROGRAM)")
        }
        for d in documents where (d.report.profile?.sampleBytes ?? 0) == 0 {
            notes.append("\(d.label): no allocation-site profile (run with BUDDY_PROFILE_SAMPLE=64K); left out")
        }
        resolver.prepare(reports)
        let periods = Set(profiled.map { $0.report.profile!.sampleBytes! })
        period = Int64(periods.max()!)
        if periods.count > 1 {
            notes.append("the reports were sampled at different periods (\(periods.sorted().map { Units.bytes($0) }.joined(separator: ", "))): the profile's period is the largest; each sample's values are its own report's estimates")
        }
        if let newest = profiled.compactMap({ $0.report.time }).max(by: { ($0.now ?? 0) < ($1.now ?? 0) }) {
            if let now = newest.now { timeNanos = Int64((now * 1e9).rounded()) }
            durationNanos = Int64((newest.uptime * 1e9).rounded())
        }
        comments.append("buddy-report pprof: BuddyMalloc's allocation-site profile of " + profiled.map {
            "\($0.report.displayName) (pid \($0.report.pid), \(ShowRenderer.reasonText($0.report.reason)), \($0.file))"
        }.joined(separator: ", "))
        comments.append("estimates from sampling one allocation per \(periods.sorted().map { "\($0)" }.joined(separator: "/")) bytes allocated: inuse_space ± the label inuse_space_error (one standard error), inuse_objects estimated as blocks_estimate says, alloc_space counts freed samples as the period's bytes (README, buddy-report leaks)")
        comments.append("allocator wrappers are left out of the stacks (label via)")

        var builder = Builder(symbolizer: resolver.symbolizer)
        for d in profiled {
            let r = d.report
            for site in resolver.sites(r) {
                let e = site.estimate
                guard e.liveBytes > 0 || (e.allocatedBytes ?? 0) > 0 || site.site.liveCount > 0 else { continue }
                // Innermost first: pprof's order (the leaf at location_id[0]).
                var ids: [UInt64] = []
                for group in Self.recordedFrames(site.frames, from: site.top) {
                    ids.append(builder.location(group.frames, dropped: group.dropped))
                }
                var labels = [Label(key: "pid", num: Int64(r.pid)), Label(key: "program", str: r.displayName)]
                if !site.skipped.isEmpty { labels.append(Label(key: "via", str: site.viaText)) }
                if e.liveBytesError > 0 { labels.append(Label(key: "inuse_space_error", num: Int64(e.liveBytesError), numUnit: "bytes")) }
                labels.append(Label(key: "blocks_estimate", str: e.blockMethod.rawValue))
                samples.append(Sample(locationIDs: ids, values: [
                    Int64(e.allocatedBytes ?? e.liveBytes), Int64(e.liveSamples), Int64(e.liveBlocks), Int64(e.liveBytes),
                ], labels: labels))
            }
        }
        mappings = builder.finishedMappings()
        locations = builder.locations
        functions = builder.functions
    }

    /// The stack's recorded frames from `top` outwards, outermost last: each group is the frames
    /// one return address gave (inlined functions first, ending with a frame that is not inlined),
    /// `dropped` the group's frames before `top` (wrappers inlined into the top frame's function).
    static func recordedFrames(_ frames: [SymbolizedFrame], from top: Int) -> [(frames: ArraySlice<SymbolizedFrame>, dropped: Int)] {
        var groups: [(ArraySlice<SymbolizedFrame>, Int)] = []
        var start = 0
        for (i, frame) in frames.enumerated() where !frame.inlined || i == frames.count - 1 {
            if i >= top {
                let first = max(start, top)
                groups.append((frames[first...i], first - start))
            }
            start = i + 1
        }
        return groups
    }

    /// Locations, functions and mappings, each once.
    struct Builder {
        var symbolizer: Symbolizer?
        var locations: [Location] = []
        var functions: [Function] = []
        var locationIDs: [String: UInt64] = [:]
        var functionIDs: [String: UInt64] = [:]

        struct ModuleMapping {
            var mapping: Mapping
            /// Where the module's load address is: a frame's address is base + its offset.
            var base: UInt64
            /// The highest offset seen.
            var highest: UInt64 = 0
            var seen = false
            var allFunctions = true
            var allFiles = true
            var allLines = true
        }
        var modules: [ModuleMapping] = []
        var moduleIDs: [String: Int] = [:]
        var nextBase = PprofProfile.firstBase

        init(symbolizer: Symbolizer?) { self.symbolizer = symbolizer }

        mutating func location(_ group: ArraySlice<SymbolizedFrame>, dropped: Int) -> UInt64 {
            let raw = group.last!.raw
            let key = "\(raw)\u{0}\(dropped)"
            if let id = locationIDs[key] { return id }
            let id = UInt64(locations.count + 1)
            locationIDs[key] = id
            var location = Location(id: id, mappingID: 0, address: 0, lines: [])
            let parsed = RawFrame(raw)
            let elf = symbolizer?.file(of: raw)
            if let module = parsed.module {
                let m = mapping(module, elf: elf)
                location.mappingID = modules[m].mapping.id
                // The return address's offset from the module's load address.
                var offset: UInt64?
                if case .module(_, let o) = parsed {
                    offset = o
                } else if let elf, let address = group.last?.address, address >= elf.loadBase {
                    offset = address - elf.loadBase
                }
                if let offset {
                    location.address = modules[m].base &+ offset
                    modules[m].highest = max(modules[m].highest, offset)
                    modules[m].seen = true
                }
                let named = group.allSatisfy { $0.function != nil }
                modules[m].allFunctions = modules[m].allFunctions && named
                modules[m].allFiles = modules[m].allFiles && group.allSatisfy { $0.file != nil }
                modules[m].allLines = modules[m].allLines && group.allSatisfy { ($0.line ?? 0) > 0 }
            } else if case .address(let a) = parsed {
                location.address = a
            }
            location.lines = group.map { frame in
                Line(functionID: function(frame), line: Int64(frame.line ?? 0))
            }
            locations.append(location)
            return id
        }

        /// The function of a frame: its name (a frame nothing named: "module+0xN", as in collapsed
        /// stacks) and source file.
        mutating func function(_ frame: SymbolizedFrame) -> UInt64 {
            let name = frame.function ?? frame.shortName
            let file = frame.file ?? ""
            let key = "\(name)\u{0}\(file)"
            if let id = functionIDs[key] { return id }
            let id = UInt64(functions.count + 1)
            functionIDs[key] = id
            functions.append(Function(id: id, name: name, systemName: name, filename: file, startLine: 0))
            return id
        }

        mutating func mapping(_ module: String, elf: ELFFile?) -> Int {
            if let index = moduleIDs[module] { return index }
            // Where the module's load address (its first page) is put: a classic executable
            // (ET_EXEC) at its link address, anything else in a range of its own.
            let base: UInt64
            if let elf, elf.type == 2 {
                base = elf.loadBase
            } else {
                base = nextBase
                nextBase += PprofProfile.moduleSpan
            }
            // The mapping is the code segment, as /proc/PID/maps has it (start, file offset), so
            // that pprof's ELF reader finds the file addresses (x - start + offset - p_offset + p_vaddr).
            var start = base, offset: UInt64 = 0, size: UInt64 = 0
            if let elf, let text = elf.text, text.vaddr >= elf.loadBase {
                start = base + (text.vaddr - elf.loadBase)
                offset = text.offset
                size = text.size
            }
            let mapping = Mapping(id: UInt64(modules.count + 1), memoryStart: start, memoryLimit: start + size, fileOffset: offset,
                                  filename: elf?.path ?? module, buildID: elf?.buildID ?? "", hasFunctions: false,
                                  hasFilenames: false, hasLineNumbers: false, hasInlineFrames: false)
            modules.append(ModuleMapping(mapping: mapping, base: base))
            moduleIDs[module] = modules.count - 1
            return modules.count - 1
        }

        /// The mappings, their limits (past every address seen, page-aligned) and what their
        /// locations have.
        func finishedMappings() -> [Mapping] {
            modules.map { m in
                var mapping = m.mapping
                let end = max(mapping.memoryLimit, m.seen ? m.base + m.highest + 1 : mapping.memoryStart + 1)
                let page = PprofProfile.pageSize
                mapping.memoryLimit = (end + page - 1) / page * page
                mapping.hasFunctions = m.allFunctions
                mapping.hasFilenames = m.allFiles
                mapping.hasLineNumbers = m.allLines
                mapping.hasInlineFrames = m.allFiles && m.allLines
                return mapping
            }
        }
    }

    // MARK: - Encoding

    /// The profile as profile.proto's wire format (uncompressed).
    public func encoded() -> [UInt8] {
        var strings = StringTable()
        var w = ProtobufWriter()
        // Strings are interned as the messages are written, and the table goes last (fields may
        // come in any order).
        for t in sampleTypes {
            w.message(1) { v in
                v.int(1, strings[t.type])
                v.int(2, strings[t.unit])
            }
        }
        for s in samples {
            w.message(2) { m in
                m.packed(1, s.locationIDs)
                m.packed(2, s.values)
                for label in s.labels {
                    m.message(3) { l in
                        l.int(1, strings[label.key])
                        if let str = label.str { l.int(2, strings[str]) }
                        if let num = label.num { l.int(3, num) }
                        if let unit = label.numUnit { l.int(4, strings[unit]) }
                    }
                }
            }
        }
        for m in mappings {
            w.message(3) { v in
                v.uint(1, m.id)
                v.uint(2, m.memoryStart)
                v.uint(3, m.memoryLimit)
                v.uint(4, m.fileOffset)
                v.int(5, strings[m.filename])
                v.int(6, strings[m.buildID])
                v.bool(7, m.hasFunctions)
                v.bool(8, m.hasFilenames)
                v.bool(9, m.hasLineNumbers)
                v.bool(10, m.hasInlineFrames)
            }
        }
        for l in locations {
            w.message(4) { v in
                v.uint(1, l.id)
                v.uint(2, l.mappingID)
                v.uint(3, l.address)
                for line in l.lines {
                    v.message(4) { x in
                        x.uint(1, line.functionID)
                        x.int(2, line.line)
                    }
                }
            }
        }
        for f in functions {
            w.message(5) { v in
                v.uint(1, f.id)
                v.int(2, strings[f.name])
                v.int(3, strings[f.systemName])
                v.int(4, strings[f.filename])
                v.int(5, f.startLine)
            }
        }
        w.int(9, timeNanos)
        w.int(10, durationNanos)
        w.message(11) { v in
            v.int(1, strings[periodType.type])
            v.int(2, strings[periodType.unit])
        }
        w.int(12, period)
        let commentIndices = comments.map { Int64(strings[$0]) }
        w.packed(13, commentIndices)
        w.int(14, strings[defaultSampleType])
        for s in strings.strings { w.string(6, s) }
        return w.bytes
    }

    /// The profile gzip-compressed, as pprof files are (`method`: see Gzip).
    public func gzipped(method: Gzip.Method? = nil) -> [UInt8] {
        Gzip.compress(encoded(), method: method).bytes
    }

    /// profile.proto's string table: index 0 is "".
    struct StringTable {
        var strings: [String] = [""]
        var indices: [String: Int] = ["": 0]

        subscript(_ s: String) -> Int {
            mutating get {
                if let i = indices[s] { return i }
                strings.append(s)
                indices[s] = strings.count - 1
                return strings.count - 1
            }
        }
    }
}
