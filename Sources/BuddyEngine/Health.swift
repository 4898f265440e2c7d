import CBuddySupport

// One health policy for every pool: the report's "health" (text and JSON, malloc's pool and
// private ones) and MemoryPool.healthReport both evaluate `HealthPolicy.rules`, so one pool
// state gets one verdict. The thresholds are the README's ("The report", Health). Nothing here
// allocates or calls the Swift runtime: the report evaluates it inside a signal handler. The
// table is a tuple of literals, which the compiler lays out as constant data (no swift_once).

/// How a pool is doing; the worse level is the larger raw value.
public enum HealthLevel: UInt8, Sendable {
    case healthy = 0
    case warning = 1
    case critical = 2

    /// The worse of two levels (a switch-free max: no generic Comparable call).
    @inline(__always)
    public static func worse(_ a: HealthLevel, _ b: HealthLevel) -> HealthLevel {
        a.rawValue >= b.rawValue ? a : b
    }
}

/// The figure a health rule looks at.
public enum HealthCheck: UInt8, Sendable {
    /// 1 when the invariant checker found the pool's structure broken (only when it ran: it
    /// walks the whole pool, so MemoryPool.healthReport runs it and the report does not).
    case structure
    /// Bad pointers: invalid pointers + double frees + uses after free + wrong sizes.
    case badPointers
    /// Failed allocating calls / allocating calls.
    case failedCalls
    /// External fragmentation, when free >= max(4 x maxBlock, reserved / 4).
    case fragmentation
    /// used / maxPoolSize, when a limit is set.
    case limit
    /// usage (used / reserved), when reserved >= 64 MiB.
    case idle
}

/// One row of the policy: `check`'s figure compared with `threshold` gives `level`.
public struct HealthRule: Sendable {
    public enum Comparison: UInt8, Sendable {
        /// figure >= threshold
        case atLeast
        /// figure > threshold
        case above
        /// figure < threshold
        case below
    }

    public let check: HealthCheck
    public let level: HealthLevel
    public let comparison: Comparison
    public let threshold: Double
    /// What the rule firing means, in a few words (the finding's name).
    public let meaning: StaticString

    @inline(__always)
    public func fires(on figure: Double) -> Bool {
        if case .below = comparison { return figure < threshold }
        if case .above = comparison { return figure > threshold }
        return figure >= threshold
    }
}

/// The figures the policy reads, from any pool's snapshot (`used` and `free` as the report
/// counts them).
public struct HealthFigures: Sendable {
    public var badPointers: UInt64 = 0
    public var failedCalls: UInt64 = 0
    public var allocatingCalls: UInt64 = 0
    public var used: UInt64 = 0
    public var free: UInt64 = 0
    public var reserved: UInt64 = 0
    public var maxBlock: UInt64 = 0
    /// 0: no limit.
    public var maxPoolSize: UInt64 = 0
    public var externalFragmentation = 0.0
    public var usage = 0.0
    /// Whether the invariant checker ran and found the structure broken.
    public var structureBroken = false

    public init() {}
}

/// The policy's verdict: each check's level (healthy when it does not apply), the worst of them,
/// and the ratios behind them.
public struct HealthVerdict: Sendable {
    public var status = HealthLevel.healthy
    public var structure = HealthLevel.healthy
    public var badPointers = HealthLevel.healthy
    public var failedCalls = HealthLevel.healthy
    public var fragmentation = HealthLevel.healthy
    public var limit = HealthLevel.healthy
    public var idle = HealthLevel.healthy
    /// Failed allocating calls / allocating calls (0 when none failed).
    public var failureRate = 0.0
    /// used / maxPoolSize (0 without a limit).
    public var limitUse = 0.0

    public init() {}
}

public enum HealthPolicy {
    /// The rules, README "Health":
    ///
    ///     check          level     fires when                 applies when
    ///     structure      CRITICAL  broken                     the invariant checker ran
    ///     badPointers    CRITICAL  >= 1
    ///     failedCalls    WARNING   > 0                        (failed / allocating calls)
    ///     failedCalls    CRITICAL  >= 1%
    ///     fragmentation  WARNING   >= 50%                     free >= max(4 x maxBlock, reserved / 4)
    ///     fragmentation  CRITICAL  >= 90%
    ///     limit          WARNING   >= 90%                     maxPoolSize > 0 (used / maxPoolSize)
    ///     limit          CRITICAL  >= 98%
    ///     idle           WARNING   usage < 10%                reserved >= 64 MiB
    public static let rules: (HealthRule, HealthRule, HealthRule, HealthRule, HealthRule,
                              HealthRule, HealthRule, HealthRule, HealthRule) = (
        HealthRule(check: .structure, level: .critical, comparison: .atLeast, threshold: 1,
                   meaning: "the pool's structure is broken"),
        HealthRule(check: .badPointers, level: .critical, comparison: .atLeast, threshold: 1,
                   meaning: "bad pointers were freed"),
        HealthRule(check: .failedCalls, level: .warning, comparison: .above, threshold: 0,
                   meaning: "allocations failed"),
        HealthRule(check: .failedCalls, level: .critical, comparison: .atLeast, threshold: 0.01,
                   meaning: "1% or more of the allocations failed"),
        HealthRule(check: .fragmentation, level: .warning, comparison: .atLeast, threshold: 0.5,
                   meaning: "the free memory is fragmented into small blocks"),
        HealthRule(check: .fragmentation, level: .critical, comparison: .atLeast, threshold: 0.9,
                   meaning: "the free memory is badly fragmented"),
        HealthRule(check: .limit, level: .warning, comparison: .atLeast, threshold: 0.9,
                   meaning: "the pool is close to its size limit"),
        HealthRule(check: .limit, level: .critical, comparison: .atLeast, threshold: 0.98,
                   meaning: "the pool is at its size limit"),
        HealthRule(check: .idle, level: .warning, comparison: .below, threshold: 0.1,
                   meaning: "most reserved memory is unused"))
    /// The rows of `rules`.
    public static let ruleCount = 9

    /// The fragmentation check applies when free >= max(fragmentationFreeBlocks x maxBlock,
    /// reserved / fragmentationFreeShare): a few free bytes are no sign of trouble.
    public static let fragmentationFreeBlocks: UInt64 = 4
    public static let fragmentationFreeShare: UInt64 = 4
    /// The idle check applies from this many reserved bytes.
    public static let idleReservedBytes: UInt64 = 64 << 20

    /// Calls `body` with the table as a buffer of rows.
    @inline(__always)
    public static func withRules<R>(_ body: (UnsafeBufferPointer<HealthRule>) -> R) -> R {
        withUnsafeBytes(of: rules) { raw in
            body(UnsafeBufferPointer(start: raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: HealthRule.self),
                                     count: ruleCount))
        }
    }

    /// The worst level among the rules of `check` that fire on `figure`.
    public static func level(_ check: HealthCheck, _ figure: Double) -> HealthLevel {
        withRules { rows in
            var worst = HealthLevel.healthy
            var i = 0
            while i < rows.count {
                let row = rows[i]
                if row.check.rawValue == check.rawValue && row.fires(on: figure) { worst = HealthLevel.worse(worst, row.level) }
                i &+= 1
            }
            return worst
        }
    }

    /// The rule of `check` at `level` (its meaning, its threshold).
    public static func rule(_ check: HealthCheck, _ level: HealthLevel) -> HealthRule? {
        withRules { rows in
            var i = 0
            while i < rows.count {
                if rows[i].check.rawValue == check.rawValue && rows[i].level.rawValue == level.rawValue { return rows[i] }
                i &+= 1
            }
            return nil
        }
    }

    /// The verdict on a pool with these figures.
    public static func evaluate(_ f: HealthFigures) -> HealthVerdict {
        var v = HealthVerdict()
        v.structure = level(.structure, f.structureBroken ? 1 : 0)
        v.badPointers = level(.badPointers, Double(f.badPointers))
        if f.failedCalls > 0 {
            v.failureRate = Double(f.failedCalls) / Double(max(f.allocatingCalls, f.failedCalls))
            v.failedCalls = level(.failedCalls, v.failureRate)
        }
        if f.free >= max(fragmentationFreeBlocks &* f.maxBlock, f.reserved / fragmentationFreeShare) {
            v.fragmentation = level(.fragmentation, f.externalFragmentation)
        }
        if f.maxPoolSize > 0 {
            v.limitUse = Double(f.used) / Double(f.maxPoolSize)
            v.limit = level(.limit, v.limitUse)
        }
        if f.reserved >= idleReservedBytes { v.idle = level(.idle, f.usage) }
        v.status = HealthLevel.worse(HealthLevel.worse(HealthLevel.worse(v.structure, v.badPointers),
                                                       HealthLevel.worse(v.failedCalls, v.fragmentation)),
                                     HealthLevel.worse(v.limit, v.idle))
        return v
    }
}

extension BuddyEngine {
    /// The health figures of a pool without thread caches (a private pool), as the report's
    /// snapshot counts them for it: its calls are the engine's. The caller holds the lock.
    public func healthFigures(structureBroken: Bool = false) -> HealthFigures {
        let s = state
        var f = HealthFigures()
        f.badPointers = buddy_atomic_load_u64_relaxed(&s.pointee.counters.invalidPointers)
            &+ buddy_atomic_load_u64_relaxed(&s.pointee.counters.doubleFrees)
            &+ buddy_atomic_load_u64_relaxed(&s.pointee.stats.useAfterFrees)
            &+ buddy_atomic_load_u64_relaxed(&s.pointee.stats.wrongSizes)
        f.failedCalls = s.pointee.counters.failedAllocations
        f.allocatingCalls = s.pointee.counters.allocations
        let spare = UInt64(s.pointee.slabSpareBytes)
        f.used = UInt64(s.pointee.allocatedBytes) &- spare
        f.free = UInt64(s.pointee.freeBytes) &+ spare
        f.reserved = UInt64(s.pointee.segmentBytes)
        f.maxBlock = UInt64(geometry.maxBlock)
        f.maxPoolSize = UInt64(s.pointee.config.maxPoolSize)
        f.externalFragmentation = Figures.externalFragmentation(largestFree: UInt64(largestFreeBlock), free: f.free, maxBlock: f.maxBlock)
        f.usage = Figures.usage(used: f.used, reserved: f.reserved)
        f.structureBroken = structureBroken
        return f
    }
}
