import Foundation
import Testing
@testable import BuddyReportKit

/// The profile's per-site live bytes against the truth: Tests/Programs/profile_truth.c allocates
/// known sizes at known sites (small blocks, slab objects, calloc, blocks above the 8 MiB maximum
/// block, blocks of other threads, blocks freed by other threads) and prints what each site still
/// holds at exit; `buddy-report leaks` must find each site's bytes within its stated sampling error.
///
/// The check is 4 standard errors: a site fails by sampling alone about once in 16,000 runs (the
/// error assumes Poisson sampling; the library's sample points, spaced by random intervals of P/2
/// to 3P/2, scatter less, so the stated error is if anything high).
@Suite struct ProfileTruthTests {
    static let source = Support.packageRoot.appendingPathComponent("Tests/Programs/profile_truth.c").path

    struct Truth {
        var bytes: [String: Int] = [:]
        var total = 0
    }

    /// "site NAME live_bytes N live_blocks M" lines, then "total live_bytes N".
    static func truth(_ stdout: String) -> Truth {
        var t = Truth()
        for line in stdout.split(separator: "\n") {
            let words = line.split(separator: " ")
            if words.count >= 4, words[0] == "site", words[2] == "live_bytes", let n = Int(words[3]) { t.bytes[String(words[1])] = n }
            if words.count == 3, words[0] == "total", let n = Int(words[2]) { t.total = n }
        }
        return t
    }

    @Test(.enabled(if: Support.canProfile && Support.tool != nil, "needs cc, the built library and buddy-report"))
    func perSiteLiveBytesMatchTheProgramsOwnCounts() throws {
        let directory = try Support.temporaryDirectory()
        let program = directory.appendingPathComponent("profile_truth").path
        let cc = try Support.run([Support.compiler!, "-g", "-O1", "-pthread", "-o", program, Self.source, "-ldl"])
        #expect(cc.status == 0, "\(cc.stderr)")
        let report = directory.appendingPathComponent("report.json").path
        let run = try Support.run([program], environment: [
            "LD_PRELOAD": Support.library!, "BUDDY_REPORT": report, "BUDDY_REPORT_FORMAT": "json", "BUDDY_PROFILE_SAMPLE": "16K",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let truth = Self.truth(run.stdout)
        #expect(truth.bytes.count == 6 && truth.total > 20_000_000)

        let leaks = try Support.runTool(["leaks", "--format", "json", "--symbolizer", "none", report])
        #expect(leaks.status == 0, "\(leaks.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(leaks.stdout.utf8)) as? [String: Any])
        let process = try #require((object["processes"] as? [[String: Any]])?.first)
        #expect(process["sample_bytes"] as? Int == 16384)
        // The sites by their top frame's function (a site may have several stacks: one per thread's).
        var estimate: [String: (bytes: Int, variance: Double)] = [:]
        for site in process["sites"] as? [[String: Any]] ?? [] {
            guard let frames = site["frames"] as? [[String: Any]], let top = frames.first?["function"] as? String,
                  let bytes = site["live_bytes"] as? Int, let error = site["live_bytes_error"] as? Int else { continue }
            let name = String(top.prefix { $0 != "+" })
            let old = estimate[name] ?? (0, 0)
            estimate[name] = (old.bytes + bytes, old.variance + Double(error) * Double(error))
        }
        var totalEstimate = 0, totalVariance = 0.0
        for (name, bytes) in truth.bytes.sorted(by: { $0.key < $1.key }) {
            let e = estimate[name] ?? (0, 0)
            let error = e.variance.squareRoot()
            totalEstimate += e.bytes
            totalVariance += e.variance
            if error == 0 {
                // Blocks of the period or more are always sampled: exact (the one 12 MiB block left),
                // and a site with nothing live has no live sample.
                #expect(e.bytes == bytes, "\(name): estimated \(e.bytes) exactly, the program holds \(bytes)")
            } else {
                #expect(abs(Double(e.bytes - bytes)) <= 4 * error,
                        "\(name): estimated \(e.bytes) ± \(Int(error)), the program holds \(bytes) (\(String(format: "%.1f", Double(e.bytes - bytes) / error)) standard errors)")
                // The error is small enough to tell the sites apart.
                #expect(error / Double(bytes) < 0.2, "\(name): ± \(Int(error)) of \(bytes)")
            }
        }
        #expect(estimate["site_churn"] == nil, "every churned block was freed by another thread")
        #expect(truth.bytes["site_big"] == 12 * 1024 * 1024 + 123)
        let totalError = totalVariance.squareRoot()
        #expect(abs(Double(totalEstimate - truth.total)) <= 4 * totalError,
                "all sites: estimated \(totalEstimate) ± \(Int(totalError)), the program holds \(truth.total)")
    }
}
