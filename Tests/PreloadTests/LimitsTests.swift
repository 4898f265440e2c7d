import Foundation
import Synchronization
import Testing

// The pool at its limits, through Tests/Programs/limits.c: every BUDDY_MAX_BLOCK the README
// accepts, a bounded pool (BUDDY_MAX_POOL), a bounded address space (ulimit -v), and calloc's
// zeroing. Every driver mode first checks malloc_usable_size(malloc(1)) == 16 and exits 3 when
// the library is not in use.

private let limitsBuild = Mutex<String?>(nil)

private func limitsProgram() throws -> String {
    try limitsBuild.withLock { built in
        if let built { return built }
        let path = try Harness.compileC("limits")
        built = path
        return path
    }
}

/// Runs the driver under the preload (set by a nested `env`, so only the driver has it), or under
/// glibc; with `addressSpaceKiB`, under `ulimit -v` of that many KiB.
private func runLimits(_ arguments: [String], environment: [String: String] = [:], preload: Bool = true,
                       addressSpaceKiB: Int? = nil, strace: String? = nil) throws -> Harness.Result {
    let program = try limitsProgram()
    var argv = preload ? ["env", "LD_PRELOAD=\(try Harness.library)", program] : [program, "--any"]
    argv += arguments
    if let strace { argv = ["strace", "-f", "-c", "-o", strace] + argv }
    if let addressSpaceKiB {
        argv = ["sh", "-c", "ulimit -v \(addressSpaceKiB); exec \"$@\"", "sh"] + argv
    }
    return try Harness.run(argv, environment: environment, timeout: 30)
}

/// The number after `label` in the driver's output ("blocks 246 errno 12").
private func number(after label: String, in text: String) -> Int? {
    guard let range = text.range(of: label + " ") else { return nil }
    return Int(text[range.upperBound...].prefix { $0.isNumber || $0 == "-" })
}

@Suite("Limits")
struct LimitsTests {
    @Test("every documented BUDDY_MAX_BLOCK works with several threads (the thread caches are the pool's metadata)",
          arguments: ["16", "32", "64", "128", "256", "512", "1K", "2K", "4K"])
    func smallMaximumBlockWithThreads(_ maxBlock: String) throws {
        for threads in ["2", "4"] {
            let result = try runLimits(["threads", threads], environment: ["BUDDY_MAX_BLOCK": maxBlock])
            #expect(result.status == 0 && result.signal == 0 && result.stdout.contains("threads ok (\(threads))"),
                    "BUDDY_MAX_BLOCK=\(maxBlock), \(threads) threads: status \(result.status) signal \(result.signal)\n\(result.stdout)\n\(result.stderr)")
            #expect(!result.stderr.contains("buddy:"), "BUDDY_MAX_BLOCK=\(maxBlock): \(result.stderr)")
        }
    }

    @Test("BUDDY_MAX_POOL: a request at the limit gets the memory that cached blocks and kept empty slabs hold")
    func boundedPoolFlushesBeforeFailing() throws {
        let result = try runLimits(["pool-flush"], environment: ["BUDDY_MAX_POOL": "8M"])
        #expect(result.status == 0 && result.stdout.contains("big ok errno 0"),
                "a 4 MiB block in an 8 MiB pool holding ~135 KB: status \(result.status) signal \(result.signal)\n\(result.stdout)\n\(result.stderr)")
        #expect(!result.stderr.contains("buddy:"), "\(result.stderr)")
    }
}
