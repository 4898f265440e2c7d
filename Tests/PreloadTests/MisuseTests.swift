import Foundation
import Synchronization
import Testing

// The misuse programs (Tests/Programs/misuse, one mistake each: double and invalid frees,
// overflows, underflows, writes and reads after free) run under glibc (no preload), under
// BuddyMalloc with the default options, and under BUDDY_HARDEN=on. A program is caught when
// the allocator stopped it (SIGABRT, or SIGSEGV/SIGBUS from a guard page or unmapped memory) or
// reported it on stderr (a `buddy:` line, or glibc's own message), instead of exiting silently.
// The table is printed; the detection counts are what README's "Bad input" quotes.

/// Programs the default configuration caught before issue 13: they must stay caught.
private let caughtBeforeIssue13: Set<String> = [
    "double_free_100", "double_free_16", "double_free_16m", "double_free_1k", "double_free_1m",
    "double_free_5k", "double_free_64k", "double_free_after_flush", "double_free_delayed_large",
    "double_free_delayed_small", "double_free_memalign", "double_free_realloc_thread",
    "free_global", "free_interior_oversize", "free_interior_small", "free_stack", "free_unaligned_large",
    "free_unaligned_small", "free_wild", "overflow_small_into_free", "realloc_freed", "realloc_interior",
    "uaf_read_oversize", "uaf_write_large_start", "uaf_write_oversize", "uaf_write_slab",
    "uaf_write_small_reuse", "usable_size_freed", "usable_size_interior",
]

/// Reads of freed memory the allocator keeps mapped, and writes into a block's own slack, are
/// invisible to any allocator; an underflow into a free block is invisible to BuddyMalloc's.
private let beyondHardening: Set<String> = ["uaf_read_small", "overflow_string", "underflow_large"]

private func misusePrograms() throws -> [String] {
    let folder = Harness.packageRoot.appendingPathComponent("Tests/Programs/misuse")
    return try FileManager.default.contentsOfDirectory(atPath: folder.path)
        .filter { $0.hasSuffix(".c") }.map { String($0.dropLast(2)) }.sorted()
}

private func caught(_ result: Harness.Result) -> Bool {
    if [SIGABRT, SIGSEGV, SIGBUS].contains(result.signal) { return true }
    let messages = ["buddy:", "free(): ", "malloc(): ", "realloc(): ", "double free", "corrupted", "munmap_chunk"]
    return messages.contains { result.stderr.contains($0) }
}

@Suite("Misuse detection")
struct MisuseTests {
    @Test("BuddyMalloc catches more misuse programs than glibc; BUDDY_HARDEN nearly all")
    func detectionTable() throws {
        let library = try Harness.library
        // The library is really in use: 100 bytes get a 128-byte block (120 usable when hardened).
        let probe = try Harness.compileC("badpointer")
        let plain = try Harness.run(["env", "LD_PRELOAD=\(library)", probe, "usable", "100"])
        #expect(plain.stdout.contains("malloc(100) usable 128"), "\(plain.stdout)")
        let hard = try Harness.run(["env", "BUDDY_HARDEN=on", "LD_PRELOAD=\(library)", probe, "--any", "usable", "100"])
        #expect(hard.stdout.contains("malloc(100) usable 120"), "\(hard.stdout)")

        let names = try misusePrograms()
        #expect(names.count >= 40)
        let paths = Mutex<[String: String]>([:])
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: names.count) { i in
            do {
                let path = try Harness.compileC("misuse/\(names[i])")
                paths.withLock { $0[names[i]] = path }
            } catch {
                failures.withLock { $0.append("\(names[i]): \(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        let programs = paths.withLock { $0 }

        // Three runs per program: glibc, BuddyMalloc, BuddyMalloc hardened.
        let configurations: [[String]] = [[], ["LD_PRELOAD=\(library)"], ["BUDDY_HARDEN=on", "LD_PRELOAD=\(library)"]]
        let runs = names.flatMap { name in configurations.indices.map { (name, $0) } }
        let outcomes = Mutex<[String: [Bool]]>([:])
        DispatchQueue.concurrentPerform(iterations: runs.count) { i in
            let (name, configuration) = runs[i]
            guard let path = programs[name] else { return }
            let result = try? Harness.run(["env"] + configurations[configuration] + [path], timeout: 20)
            let hit = result.map(caught) ?? false
            outcomes.withLock { table in
                var row = table[name] ?? [false, false, false]
                row[configuration] = hit
                table[name] = row
            }
        }
        let table = outcomes.withLock { $0 }

        var lines = ["program                        glibc  buddy  harden"]
        var totals = [0, 0, 0]
        for name in names {
            let row = table[name] ?? [false, false, false]
            for c in 0..<3 where row[c] { totals[c] += 1 }
            let cells = row.map { $0 ? "yes" : "-" }.map { $0.padding(toLength: 7, withPad: " ", startingAt: 0) }
            lines.append(name.padding(toLength: 31, withPad: " ", startingAt: 0) + cells.joined())
        }
        lines.append("total (of \(names.count))".padding(toLength: 31, withPad: " ", startingAt: 0)
                     + totals.map { String($0).padding(toLength: 7, withPad: " ", startingAt: 0) }.joined())
        print(lines.joined(separator: "\n"))

        #expect(totals[1] > totals[0], "BuddyMalloc must catch more than glibc")
        for name in caughtBeforeIssue13 {
            #expect(table[name]?[1] == true, "\(name) is no longer caught by the default configuration")
        }
        for name in names where !beyondHardening.contains(name) {
            #expect(table[name]?[2] == true, "\(name) is not caught under BUDDY_HARDEN=on")
        }
    }
}
