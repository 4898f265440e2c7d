/// One BuddyMalloc report: the JSON document the library writes with `BUDDY_REPORT_FORMAT=json`
/// (format "buddymalloc-report", version 1; the contract is the report schema).
///
/// Required: `format`, `version`, `pid`, `memory.reserved`, `memory.used`, `memory.free`, `calls`,
/// `orders` (each with `order`, `block_size`, `live`, `free`). Everything else may be absent and
/// reads as zero, empty or derived from the required figures; unknown fields are ignored. (Reports
/// written before the library had slabs have no `slab_classes` nor `memory.slab_spare`.)
public struct Report: Sendable, Equatable, Decodable {
    /// The newest format version this reader understands.
    public static let newestVersion = 1
    public static let formatName = "buddymalloc-report"

    public var format: String
    public var version: Int
    public var pid: Int
    /// The parent process's pid, when the library writes it (`ppid`: not in reports written so
    /// far; `buddy-report run` and process trees use it when present).
    public var ppid: Int?
    /// The process's name (/proc/self/comm); may be "".
    public var program: String
    /// Why the report was written: "exit", "signal", "interval" or "api".
    public var reason: String
    /// 0, 1, 2... for the reports written by one process.
    public var sequence: Int
    /// "process" (the process's malloc) or "private".
    public var pool: String
    public var time: Time?
    public var config: Config?
    public var memory: Memory
    /// Calls by entry point ("malloc", "free", ...), including entry points this reader does not know.
    public var calls: [String: Int]
    /// Failed calls (ENOMEM and the like) by entry point.
    public var failures: [String: Int]
    /// Bad pointers by kind ("invalid_pointer", "double_free", "use_after_free", "wrong_size").
    public var errors: [String: Int]
    public var system: System
    /// Live blocks above the maximum block (each mapped on its own); zero in older reports.
    public var oversize: Oversize
    /// Resident memory explained; nil in older reports.
    public var resident: Resident?
    public var segments: Segments?
    /// Lock acquisitions and waits; nil in reports written before the library counted them.
    public var locks: Locks?
    public var orders: [Order]
    /// One per slab class of the pool, smallest first; empty when the pool has no slabs.
    public var slabClasses: [SlabClass]
    public var sizes: [SizeBucket]
    public var alignments: [AlignmentCount]
    public var latency: Latency?
    public var health: Health?
    public var profile: Profile?
    public var badPointers: [BadPointer]
    /// The modules the frames name, with their build-ids, when the library writes them
    /// (`modules`, or `profile.modules`; not in reports written so far).
    public var modules: [Module]
    /// Set when the report was read from the library's text format: what it lacks.
    public var textOrigin: TextReportOrigin?

    public struct Time: Sendable, Equatable, Decodable {
        /// Seconds since the epoch: the pool's creation, and the report (a text report has neither).
        public var created: Double?
        public var now: Double?
        /// Seconds between the two.
        public var uptime: Double
        public var lastActivity: Double?

        enum CodingKeys: String, CodingKey {
            case created, now, uptime
            case lastActivity = "last_activity"
        }
    }

    public struct Config: Sendable, Equatable, Decodable {
        public var minBlock: Int
        public var maxBlock: Int
        public var initialSize: Int?
        public var growthFactor: Double?
        /// 0: no limit.
        public var maxPoolSize: Int?
        public var threadSafety: String?
        public var onError: String?

        enum CodingKeys: String, CodingKey {
            case minBlock = "min_block", maxBlock = "max_block", initialSize = "initial_size"
            case growthFactor = "growth_factor", maxPoolSize = "max_pool_size"
            case threadSafety = "thread_safety", onError = "on_error"
        }
    }

    /// The pool's bytes. Invariant: reserved = used + cached + free.
    public struct Memory: Sendable, Equatable {
        /// Bytes in segments (mapped).
        public var reserved: Int
        /// Of those, resident; 0 when unknown.
        public var resident: Int
        /// Bytes in blocks and slab objects handed to the program (excluding thread caches).
        public var used: Int
        /// Bytes in thread caches.
        public var cached: Int
        /// Bytes in free blocks, not yet carved, and `slabSpare`.
        public var free: Int
        /// Bytes in slabs outside live and cached objects (free objects, headers, slack); part of `free`.
        public var slabSpare: Int
        /// Bytes outside the segments (order maps, the pool's state); 0 when the report has none.
        public var metadata: Int
        /// used / reserved.
        public var usage: Double
        /// Bytes the program asked for, live.
        public var requested: Int
        /// 1 - requested / used.
        public var internalFragmentation: Double
        public var largestFreeBlock: Int
        /// 1 - largest_free_block / free (0 when free == 0).
        public var externalFragmentation: Double
        public var peakUsed: Int
        public var liveAllocations: Int
        public var peakLiveAllocations: Int
        /// Bytes the program holds, whoever serves them: used + the oversize blocks' bytes
        /// (older reports: used + oversize bytes, as far as they say).
        public var held: Int
    }

    /// Resident memory explained: the segments' resident bytes (`memory.resident`) by what holds
    /// them, used + cached + slabSpare + free == memory.resident; the resident bytes of the
    /// metadata, the oversize blocks and the retained mappings; the process's resident set and
    /// what of it lies outside the allocator.
    public struct Resident: Sendable, Equatable, Decodable {
        public var used: Int
        public var cached: Int
        public var slabSpare: Int
        public var free: Int
        public var metadata: Int
        public var oversize: Int
        public var retained: Int
        /// 0 when unknown (a private pool's report).
        public var process: Int
        public var outside: Int

        public init(used: Int = 0, cached: Int = 0, slabSpare: Int = 0, free: Int = 0, metadata: Int = 0, oversize: Int = 0,
                    retained: Int = 0, process: Int = 0, outside: Int = 0) {
            self.used = used; self.cached = cached; self.slabSpare = slabSpare; self.free = free; self.metadata = metadata
            self.oversize = oversize; self.retained = retained; self.process = process; self.outside = outside
        }

        enum CodingKeys: String, CodingKey {
            case used, cached, free, metadata, oversize, retained, process, outside
            case slabSpare = "slab_spare"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            func value(_ key: CodingKeys) throws -> Int { try c.decodeIfPresent(Int.self, forKey: key) ?? 0 }
            self.init(used: try value(.used), cached: try value(.cached), slabSpare: try value(.slabSpare), free: try value(.free),
                      metadata: try value(.metadata), oversize: try value(.oversize), retained: try value(.retained),
                      process: try value(.process), outside: try value(.outside))
        }

        /// The segments' resident bytes, part by part.
        public var segments: Int { used + cached + slabSpare + free }
    }

    /// Blocks above the maximum block: live now, and the most at once.
    public struct Oversize: Sendable, Equatable, Decodable {
        public var blocks: Int
        public var bytes: Int
        public var peakBlocks: Int
        public var peakBytes: Int

        public init(blocks: Int = 0, bytes: Int = 0, peakBlocks: Int = 0, peakBytes: Int = 0) {
            self.blocks = blocks; self.bytes = bytes; self.peakBlocks = peakBlocks; self.peakBytes = peakBytes
        }

        enum CodingKeys: String, CodingKey {
            case blocks, bytes
            case peakBlocks = "peak_blocks", peakBytes = "peak_bytes"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            blocks = try c.decodeIfPresent(Int.self, forKey: .blocks) ?? 0
            bytes = try c.decodeIfPresent(Int.self, forKey: .bytes) ?? 0
            peakBlocks = try c.decodeIfPresent(Int.self, forKey: .peakBlocks) ?? blocks
            peakBytes = try c.decodeIfPresent(Int.self, forKey: .peakBytes) ?? bytes
        }
    }

    /// Calls handed to glibc: larger than the maximum block, or re-entrant.
    public struct System: Sendable, Equatable, Decodable {
        public var calls: Int
        public var bytes: Int
        public init(calls: Int = 0, bytes: Int = 0) { self.calls = calls; self.bytes = bytes }
    }

    public struct Segments: Sendable, Equatable, Decodable {
        public var count: Int
        public var added: Int
        public var released: Int
    }

    /// The pool's locks: the pool lock, which every thread shares, and the depot's shelf locks
    /// (one per size), each taken once per batch of blocks moved between thread caches. A wait is
    /// an acquisition that found the lock held. Every figure is 0 where the report lacks it.
    public struct Locks: Sendable, Equatable, Decodable {
        public var poolAcquisitions = 0
        public var poolContended = 0
        /// Batches put on the depot's shelves, taken from them, and given to the pool because
        /// their shelf was full.
        public var depotPuts = 0
        public var depotTakes = 0
        public var depotFull = 0
        public var depotContended = 0
        /// Bytes in the shelves' batches.
        public var depotBytes = 0

        public init() {}

        enum CodingKeys: String, CodingKey {
            case poolAcquisitions = "pool_acquisitions", poolContended = "pool_contended"
            case depotPuts = "depot_puts", depotTakes = "depot_takes", depotFull = "depot_full"
            case depotContended = "depot_contended", depotBytes = "depot_bytes"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            func value(_ key: CodingKeys) throws -> Int { try c.decodeIfPresent(Int.self, forKey: key) ?? 0 }
            poolAcquisitions = try value(.poolAcquisitions)
            poolContended = try value(.poolContended)
            depotPuts = try value(.depotPuts)
            depotTakes = try value(.depotTakes)
            depotFull = try value(.depotFull)
            depotContended = try value(.depotContended)
            depotBytes = try value(.depotBytes)
        }
    }

    /// One order's blocks: `block_size = min_block << order`.
    public struct Order: Sendable, Equatable {
        public var order: Int
        public var blockSize: Int
        public var live: Int
        public var free: Int
        public var cached: Int
        public var allocations: Int
        public var splits: Int
        public var coalesces: Int

        public var liveBytes: Int { live * blockSize }
        public var freeBytes: Int { free * blockSize }
        public var cachedBytes: Int { cached * blockSize }
    }

    /// One slab class: objects of `object_size` bytes carved from `slabs` buddy blocks of `slab_size`.
    /// Its objects are `live` (held by the program), `cached` (in thread caches) or `free` (in the
    /// slabs, not handed out).
    public struct SlabClass: Sendable, Equatable {
        /// The class's number, 0 for the smallest (`class` in the JSON, a Swift keyword).
        public var index: Int
        public var objectSize: Int
        public var slabSize: Int
        public var slabs: Int
        public var live: Int
        public var free: Int
        public var cached: Int
        public var allocations: Int
        public var frees: Int

        public var slabBytes: Int { slabs * slabSize }
        public var liveBytes: Int { live * objectSize }
        public var cachedBytes: Int { cached * objectSize }
        /// The slabs' bytes outside live and cached objects: free objects, headers and slack (this
        /// class's share of `memory.slab_spare`).
        public var spareBytes: Int { slabBytes - liveBytes - cachedBytes }
    }

    /// Requested sizes in power-of-two buckets: `count` requests of at most `upto` bytes
    /// (and more than the bucket below).
    public struct SizeBucket: Sendable, Equatable, Decodable {
        public var upto: Int
        public var count: Int
    }

    public struct AlignmentCount: Sendable, Equatable, Decodable {
        public var alignment: Int
        public var count: Int
    }

    public struct Latency: Sendable, Equatable, Decodable {
        /// "off", "sampled" or "exact".
        public var mode: String
        public var samplePeriod: Int?
        public var allocAvgNs: Double?
        public var allocMaxNs: Double?
        public var freeAvgNs: Double?
        public var freeMaxNs: Double?
        public var samples: Int?

        enum CodingKeys: String, CodingKey {
            case mode, samples
            case samplePeriod = "sample_period"
            case allocAvgNs = "alloc_avg_ns", allocMaxNs = "alloc_max_ns"
            case freeAvgNs = "free_avg_ns", freeMaxNs = "free_max_ns"
        }
    }

    public struct Health: Sendable, Equatable, Decodable {
        /// "HEALTHY", "WARNING" or "CRITICAL".
        public var status: String
        public var message: String?
    }

    public struct Profile: Sendable, Equatable, Decodable {
        public var sampleBytes: Int?
        /// Sorted by live bytes, largest first.
        public var sites: [Site]?
        /// Samples not recorded (the library's tables were full).
        public var droppedSamples: Int?
        public var modules: [Module]?

        enum CodingKeys: String, CodingKey {
            case sites, modules
            case sampleBytes = "sample_bytes", droppedSamples = "dropped_samples"
        }
    }

    /// Where live memory was allocated: a call stack, innermost frame first.
    ///
    /// A sampled allocation of s bytes stands for max(s, P) bytes (P = `sample_bytes`): the site's
    /// `live_bytes` is an estimate, `live_count` counts the live *samples*, not blocks.
    public struct Site: Sendable, Equatable, Decodable {
        /// Estimated live bytes: the weights of the live samples.
        public var liveBytes: Int
        /// Live samples (each one block of the site).
        public var liveCount: Int
        public var frames: [String]
        /// Samples taken at the site so far, freed ones included (reports since `samples` was added).
        public var samples: Int?
        /// Estimated live blocks, sum over the live samples of max(s, P) / s, when the library writes it.
        public var liveBlocks: Int?
        /// Estimated bytes allocated at the site so far (the weights of every sample), when written.
        public var allocatedBytes: Int?
        /// Estimated blocks allocated at the site so far (sum of max(s, P) / s over every sample), when written.
        public var allocatedBlocks: Int?

        public init(liveBytes: Int, liveCount: Int, frames: [String], samples: Int? = nil, liveBlocks: Int? = nil,
                    allocatedBytes: Int? = nil, allocatedBlocks: Int? = nil) {
            self.liveBytes = liveBytes
            self.liveCount = liveCount
            self.frames = frames
            self.samples = samples
            self.liveBlocks = liveBlocks
            self.allocatedBytes = allocatedBytes
            self.allocatedBlocks = allocatedBlocks
        }

        enum CodingKeys: String, CodingKey {
            case frames, samples
            case liveBytes = "live_bytes", liveCount = "live_count"
            case liveBlocks = "live_blocks", allocatedBytes = "allocated_bytes", allocatedBlocks = "allocated_blocks"
        }
    }

    /// A module (the program or a shared library) the frames name.
    public struct Module: Sendable, Equatable, Decodable {
        /// The module as the frames write it ("./prog", "/usr/lib/x86_64-linux-gnu/libc.so.6").
        public var name: String
        /// Its file, as an absolute path, when it differs from the name.
        public var path: String?
        /// Its GNU build-id in hex.
        public var buildID: String?

        enum CodingKeys: String, CodingKey {
            case name, path
            case buildID = "build_id"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            path = try c.decodeIfPresent(String.self, forKey: .path)
            guard let name = try c.decodeIfPresent(String.self, forKey: .name) ?? path else {
                throw DecodingError.keyNotFound(CodingKeys.name, .init(codingPath: c.codingPath, debugDescription: "a module needs a name or a path"))
            }
            self.name = name
            buildID = try c.decodeIfPresent(String.self, forKey: .buildID)
        }
    }

    public struct BadPointer: Sendable, Equatable, Decodable {
        /// "double_free", "invalid_pointer", ...
        public var kind: String
        /// The entry point that received it ("free", "realloc", ...).
        public var function: String?
        /// The pointer as the library printed it ("0x7f3a1c2000a0").
        public var pointer: String?
        public var frames: [String]?
    }
}

extension Report {
    /// The entry points in the schema's order; reports may add others.
    public static let entryPoints = [
        "malloc", "calloc", "realloc", "reallocarray", "free", "posix_memalign", "aligned_alloc",
        "memalign", "valloc", "pvalloc", "malloc_usable_size", "free_sized", "free_aligned_sized",
    ]

    /// Entry points in a stable order: the schema's first, then unknown ones by name.
    public static func ordered(_ names: some Sequence<String>) -> [String] {
        let known = Set(entryPoints)
        let set = Set(names)
        return entryPoints.filter(set.contains) + set.subtracting(known).sorted()
    }

    /// The sites of the profile, or none when profiling is off.
    public var sites: [Site] { profile?.sites ?? [] }

    /// The number of bad pointers seen (all kinds).
    public var errorCount: Int { errors.values.reduce(0, +) }

    /// The program's name, or "pid N" when the report has none.
    public var displayName: String { program.isEmpty ? "pid \(pid)" : program }

    /// Seconds since the pool was created, when the report says.
    public var uptime: Double? { time?.uptime }
}

// MARK: - Decoding

extension Report {
    enum CodingKeys: String, CodingKey {
        case format, version, pid, ppid, program, reason, sequence, pool, time, config, memory, calls, failures
        case errors, system, oversize, resident, segments, locks, orders, sizes, alignments, latency, health, profile
        case badPointers = "bad_pointers", slabClasses = "slab_classes", modules
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        format = try c.decode(String.self, forKey: .format)
        version = try c.decode(Int.self, forKey: .version)
        pid = try c.decode(Int.self, forKey: .pid)
        ppid = try c.decodeIfPresent(Int.self, forKey: .ppid)
        program = try c.decodeIfPresent(String.self, forKey: .program) ?? ""
        reason = try c.decodeIfPresent(String.self, forKey: .reason) ?? "exit"
        sequence = try c.decodeIfPresent(Int.self, forKey: .sequence) ?? 0
        pool = try c.decodeIfPresent(String.self, forKey: .pool) ?? "process"
        time = try c.decodeIfPresent(Time.self, forKey: .time)
        config = try c.decodeIfPresent(Config.self, forKey: .config)
        memory = try c.decode(Memory.self, forKey: .memory)
        calls = try c.decode([String: Int].self, forKey: .calls)
        failures = try c.decodeIfPresent([String: Int].self, forKey: .failures) ?? [:]
        errors = try c.decodeIfPresent([String: Int].self, forKey: .errors) ?? [:]
        system = try c.decodeIfPresent(System.self, forKey: .system) ?? System()
        oversize = try c.decodeIfPresent(Oversize.self, forKey: .oversize) ?? Oversize()
        if memory.held < memory.used + oversize.bytes { memory.held = memory.used + oversize.bytes }
        resident = try c.decodeIfPresent(Resident.self, forKey: .resident)
        segments = try c.decodeIfPresent(Segments.self, forKey: .segments)
        locks = try c.decodeIfPresent(Locks.self, forKey: .locks)
        orders = try c.decode([Order].self, forKey: .orders)
        slabClasses = try c.decodeIfPresent([SlabClass].self, forKey: .slabClasses) ?? []
        sizes = try c.decodeIfPresent([SizeBucket].self, forKey: .sizes) ?? []
        alignments = try c.decodeIfPresent([AlignmentCount].self, forKey: .alignments) ?? []
        latency = try c.decodeIfPresent(Latency.self, forKey: .latency)
        health = try c.decodeIfPresent(Health.self, forKey: .health)
        profile = try c.decodeIfPresent(Profile.self, forKey: .profile)
        badPointers = try c.decodeIfPresent([BadPointer].self, forKey: .badPointers) ?? []
        modules = (try c.decodeIfPresent([Module].self, forKey: .modules) ?? []) + (profile?.modules ?? [])
        textOrigin = nil
    }
}

extension Report.Memory: Decodable {
    enum CodingKeys: String, CodingKey {
        case reserved, resident, used, cached, free, usage, requested
        case slabSpare = "slab_spare", metadata
        case internalFragmentation = "internal_fragmentation"
        case largestFreeBlock = "largest_free_block"
        case externalFragmentation = "external_fragmentation"
        case peakUsed = "peak_used"
        case liveAllocations = "live_allocations"
        case peakLiveAllocations = "peak_live_allocations"
        case held
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        reserved = try c.decode(Int.self, forKey: .reserved)
        used = try c.decode(Int.self, forKey: .used)
        free = try c.decode(Int.self, forKey: .free)
        resident = try c.decodeIfPresent(Int.self, forKey: .resident) ?? 0
        cached = try c.decodeIfPresent(Int.self, forKey: .cached) ?? 0
        slabSpare = try c.decodeIfPresent(Int.self, forKey: .slabSpare) ?? 0
        metadata = try c.decodeIfPresent(Int.self, forKey: .metadata) ?? 0
        requested = try c.decodeIfPresent(Int.self, forKey: .requested) ?? 0
        largestFreeBlock = try c.decodeIfPresent(Int.self, forKey: .largestFreeBlock) ?? 0
        peakUsed = try c.decodeIfPresent(Int.self, forKey: .peakUsed) ?? used
        liveAllocations = try c.decodeIfPresent(Int.self, forKey: .liveAllocations) ?? 0
        peakLiveAllocations = try c.decodeIfPresent(Int.self, forKey: .peakLiveAllocations) ?? liveAllocations
        held = try c.decodeIfPresent(Int.self, forKey: .held) ?? used
        // The ratios as the schema defines them, when the report leaves them out.
        usage = try c.decodeIfPresent(Double.self, forKey: .usage)
            ?? (reserved > 0 ? Double(used) / Double(reserved) : 0)
        internalFragmentation = try c.decodeIfPresent(Double.self, forKey: .internalFragmentation)
            ?? (used > 0 && requested > 0 ? 1 - Double(requested) / Double(used) : 0)
        externalFragmentation = try c.decodeIfPresent(Double.self, forKey: .externalFragmentation)
            ?? (free > 0 ? 1 - Double(largestFreeBlock) / Double(free) : 0)
    }
}

extension Report.Order: Decodable {
    enum CodingKeys: String, CodingKey {
        case order, live, free, cached, allocations, splits, coalesces
        case blockSize = "block_size"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        order = try c.decode(Int.self, forKey: .order)
        blockSize = try c.decode(Int.self, forKey: .blockSize)
        live = try c.decode(Int.self, forKey: .live)
        free = try c.decode(Int.self, forKey: .free)
        cached = try c.decodeIfPresent(Int.self, forKey: .cached) ?? 0
        allocations = try c.decodeIfPresent(Int.self, forKey: .allocations) ?? 0
        splits = try c.decodeIfPresent(Int.self, forKey: .splits) ?? 0
        coalesces = try c.decodeIfPresent(Int.self, forKey: .coalesces) ?? 0
    }
}

extension Report.SlabClass: Decodable {
    enum CodingKeys: String, CodingKey {
        case index = "class"
        case slabs, live, free, cached, allocations, frees
        case objectSize = "object_size", slabSize = "slab_size"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        index = try c.decode(Int.self, forKey: .index)
        objectSize = try c.decode(Int.self, forKey: .objectSize)
        slabSize = try c.decode(Int.self, forKey: .slabSize)
        slabs = try c.decode(Int.self, forKey: .slabs)
        live = try c.decode(Int.self, forKey: .live)
        free = try c.decode(Int.self, forKey: .free)
        cached = try c.decodeIfPresent(Int.self, forKey: .cached) ?? 0
        allocations = try c.decodeIfPresent(Int.self, forKey: .allocations) ?? 0
        frees = try c.decodeIfPresent(Int.self, forKey: .frees) ?? 0
    }
}
