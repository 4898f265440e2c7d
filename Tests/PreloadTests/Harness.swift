@_exported import TestSupport
import Foundation

// Harness (paths, scratch folders, processes, compiling the C drivers) lives in the TestSupport
// target, shared by every test target. What follows reads the library's exit reports.

extension Harness {
    /// Exit reports written to `directory` (BUDDY_REPORT=<directory>/report.%p).
    static func reports(in directory: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasPrefix("report.") }
            .map { try String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8) }
    }

    /// The allocation count of an exit report (proof the program's calls reached the pool).
    static func allocations(inReport report: String) -> Int {
        guard let range = report.range(of: "allocations ") else { return 0 }
        return Int(report[range.upperBound...].prefix { $0.isNumber }) ?? 0
    }
}
