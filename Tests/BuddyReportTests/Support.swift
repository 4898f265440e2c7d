import Foundation
@testable import BuddyReportKit
@_exported import TestSupport

/// The fixtures and the built tool (paths, scratch folders and processes: TestSupport's Harness).
enum Support {
    static let packageRoot = Harness.packageRoot

    /// Tests/Fixtures/reports: reports written after the schema (its README says which is what).
    static let fixtures = packageRoot.appendingPathComponent("Tests/Fixtures/reports")

    static func fixture(_ name: String) -> String { fixtures.appendingPathComponent(name).path }

    static func load(_ name: String) throws(ReportError) -> ReportFile { try ReportLoader.load(path: fixture(name)) }

    static func report(_ name: String) throws -> ReportDocument { try load(name).documents.last! }

    /// The build's bin folder: where `swift test` put the test bundle, the tool and the library.
    static let binDirectory: URL? = Harness.binDirectory(containing: "buddy-report")

    /// The buddy-report executable of this build, if `swift test` built it.
    static var tool: String? { binDirectory.map { $0.appendingPathComponent("buddy-report").path } }

    /// The libBuddyMalloc.so of this build, else the package's release build.
    static var library: String? {
        let candidates: [String?] = [binDirectory?.appendingPathComponent("libBuddyMalloc.so").path,
                          packageRoot.appendingPathComponent(".build/release/libBuddyMalloc.so").path]
        return candidates.compactMap { $0 }.first { FileManager.default.fileExists(atPath: $0) }
    }

    /// Whether that library writes JSON reports (BUDDY_REPORT_FORMAT=json): it carries the format's name.
    static let libraryWritesJSON: Bool = {
        guard let library, let data = FileManager.default.contents(atPath: library) else { return false }
        return data.range(of: Data(Report.formatName.utf8)) != nil
    }()

    typealias Result = Harness.Result

    /// Runs the tool with `arguments` and waits for it.
    static func runTool(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        try Harness.run([tool!] + arguments, environment: environment, timeout: 300)
    }

    /// A scratch folder for one test.
    static func temporaryDirectory(_ name: String = #function) throws -> URL {
        try Harness.temporaryDirectory(name)
    }
}
