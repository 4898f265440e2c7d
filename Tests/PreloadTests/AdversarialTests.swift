import Foundation
import Testing

// The quick subset of tools/adversarial.sh (issue 15): the model check over every entry point under
// six option configurations and a bounded pool, glibc's rules with a small max block, thread churn,
// report storms (files and stderr), fork in a signal handler, and a late dlopen. The full run (50
// configurations, the long runs, real programs) and the soak are the documented longer runs; the
// quick subset holds only checks that pass on main (README, "Adversarial checks", lists the others).

@Suite("Adversarial checks (tools/adversarial.sh --quick)")
struct AdversarialTests {
    @Test("tools/adversarial.sh --quick: every check passes", .enabled(if: Harness.has("gcc"), "gcc is not installed"))
    func quickSubset() throws {
        let script = Harness.packageRoot.appendingPathComponent("tools/adversarial.sh").path
        let result = try Harness.run(["bash", script, "--quick"], environment: ["BUDDY": try Harness.library],
                                     directory: Harness.packageRoot, timeout: 150)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let summary = lines.last ?? ""
        #expect(result.status == 0 && result.signal == 0,
                "exit status \(result.status), signal \(result.signal)\nstdout:\n\(result.stdout.suffix(3000))\nstderr:\n\(result.stderr.suffix(6000))")
        #expect(summary.hasSuffix(" passed, 0 failed"), "summary: \(summary)\n\(result.stdout.suffix(3000))")
        let passed = Int(summary.prefix { $0.isNumber }) ?? 0
        #expect(passed >= 13, "expected the 13 quick checks to run and pass, got: \(summary)")
        // Every check prints a PASS line: none was silently left out.
        let passLines = result.stderr.split(separator: "\n").filter { $0.contains("] PASS ") }
        #expect(passLines.count == passed, "\(passLines.count) PASS lines for \(passed) passed checks:\n\(result.stderr.suffix(4000))")
    }
}
