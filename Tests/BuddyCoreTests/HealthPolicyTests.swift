import Foundation
import Testing
@testable import BuddyEngine

// The one health policy (BuddyEngine/Health.swift): its table is the README's, and each row
// fires exactly at its threshold.

struct HealthPolicyTests {
    /// The README's cell for a rule: "90% or more", "more than 0", "below 10%", "1 or more".
    private func cell(_ rule: HealthRule?) -> String {
        guard let rule else { return "" }
        if case .structure = rule.check { return "broken" }
        if case .badPointers = rule.check { return "\(Int(rule.threshold)) or more" }
        let percent = "\(Int((rule.threshold * 100).rounded()))%"
        switch rule.comparison {
        case .atLeast: return "\(percent) or more"
        case .above: return "more than \(Int(rule.threshold))"
        case .below: return "below \(percent)"
        }
    }

    @Test func readmeTableIsThePolicy() throws {
        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("README.md"), encoding: .utf8)
        let rows: [(HealthCheck, String)] = [
            (.structure, "the pool's structure, when the invariant checker runs (`MemoryPool.healthReport` only)"),
            (.badPointers, "bad pointers (invalid pointers + double frees + uses after free + wrong sizes)"),
            (.failedCalls, "failed calls / allocating calls"),
            (.fragmentation, "external fragmentation, when free >= max(4 x max_block, reserved / 4)"),
            (.limit, "used / `BUDDY_MAX_POOL`, when a limit is set"),
            (.idle, "usage (used / reserved), when reserved >= 64 MiB"),
        ]
        var covered = 0
        for (check, name) in rows {
            let warning = HealthPolicy.rule(check, .warning), critical = HealthPolicy.rule(check, .critical)
            covered += (warning == nil ? 0 : 1) + (critical == nil ? 0 : 1)
            let row = "| \(name) | \(cell(warning)) | \(cell(critical)) |"
            #expect(readme.contains(row.replacingOccurrences(of: "|  |", with: "| |")), "README lacks the row\n\(row)")
        }
        #expect(covered == HealthPolicy.ruleCount, "a rule of HealthPolicy.rules is not in the README's table")
        // The conditions in the row names are the policy's constants.
        #expect(HealthPolicy.fragmentationFreeBlocks == 4 && HealthPolicy.fragmentationFreeShare == 4)
        #expect(HealthPolicy.idleReservedBytes == 64 << 20)
    }

    @Test func eachRuleFiresAtItsThreshold() {
        var f = HealthFigures()
        f.reserved = 1 << 20
        f.maxBlock = 64 << 10
        f.maxPoolSize = 1 << 20
        f.used = 943_718 // just under 90%
        #expect(HealthPolicy.evaluate(f).status == .healthy)
        f.used = 943_719 // 90%
        #expect(HealthPolicy.evaluate(f).limit == .warning && HealthPolicy.evaluate(f).status == .warning)
        f.used = 1_027_604 // just under 98%
        #expect(HealthPolicy.evaluate(f).limit == .warning)
        f.used = 1_027_605
        #expect(HealthPolicy.evaluate(f).limit == .critical)
        f.maxPoolSize = 0
        #expect(HealthPolicy.evaluate(f).status == .healthy)

        f.failedCalls = 1
        f.allocatingCalls = 101
        #expect(HealthPolicy.evaluate(f).failedCalls == .warning)
        f.allocatingCalls = 100
        #expect(HealthPolicy.evaluate(f).failedCalls == .critical)
        f.failedCalls = 0

        f.badPointers = 1
        #expect(HealthPolicy.evaluate(f).badPointers == .critical && HealthPolicy.evaluate(f).status == .critical)
        f.badPointers = 0

        f.free = 256 << 10 // = max(4 x maxBlock, reserved / 4): the check applies
        f.externalFragmentation = 0.49
        #expect(HealthPolicy.evaluate(f).fragmentation == .healthy)
        f.externalFragmentation = 0.5
        #expect(HealthPolicy.evaluate(f).fragmentation == .warning)
        f.externalFragmentation = 0.9
        #expect(HealthPolicy.evaluate(f).fragmentation == .critical)
        f.free = (256 << 10) - 1 // too little free memory to matter
        #expect(HealthPolicy.evaluate(f).fragmentation == .healthy)
        f.externalFragmentation = 0

        f.usage = 0.05
        #expect(HealthPolicy.evaluate(f).idle == .healthy) // 1 MiB reserved: too small to matter
        f.reserved = 64 << 20
        #expect(HealthPolicy.evaluate(f).idle == .warning)
        f.usage = 0.1
        #expect(HealthPolicy.evaluate(f).idle == .healthy)

        f.structureBroken = true
        #expect(HealthPolicy.evaluate(f).structure == .critical && HealthPolicy.evaluate(f).status == .critical)
    }

    @Test func figuresEquations() {
        #expect(Figures.usage(used: 1, reserved: 0) == 0)
        #expect(Figures.usage(used: 1 << 20, reserved: 4 << 20) == 0.25)
        #expect(Figures.externalFragmentation(largestFree: 0, free: 0, maxBlock: 1 << 20) == 0)
        // 1 - largest / min(free, maxBlock)
        #expect(Figures.externalFragmentation(largestFree: 256 << 10, free: 4 << 20, maxBlock: 1 << 20) == 0.75)
        #expect(Figures.externalFragmentation(largestFree: 16 << 10, free: 32 << 10, maxBlock: 1 << 20) == 0.5)
        #expect(Figures.externalFragmentation(largestFree: 1 << 20, free: 8 << 20, maxBlock: 1 << 20) == 0)
    }
}
