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

// MARK: - Programs with known allocation sites (Tests/Fixtures/programs)

extension Support {
    static let programs = packageRoot.appendingPathComponent("Tests/Fixtures/programs")

    /// The first of `names` on PATH.
    static func command(_ names: String...) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for name in names {
            for directory in path.split(separator: ":") {
                let candidate = "\(directory)/\(name)"
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
        }
        return nil
    }

    static let compiler: String? = command("cc", "gcc", "clang")

    /// Runs `argv` and waits; its status and output (TestSupport's runner).
    @discardableResult
    static func run(_ argv: [String], environment: [String: String] = [:], directory: URL? = nil) throws -> Result {
        try Harness.run(argv, environment: environment, directory: directory, timeout: 120)
    }

    /// Compiles Tests/Fixtures/programs/NAME.c with -g into `directory`; the executable's path.
    static func compile(_ name: String, in directory: URL, flags: [String] = ["-O1"], output: String? = nil) throws -> String {
        let output = output ?? directory.appendingPathComponent(name).path
        let result = try run([compiler!, "-g"] + flags + ["-o", output, programs.appendingPathComponent("\(name).c").path])
        guard result.status == 0 else { throw PlotError(description: "cc failed: \(result.stderr)") }
        return output
    }

    /// The line of the source's "SITE label" comment (NAME.c, or NAME as given when it has a suffix).
    static func siteLine(_ label: String, in name: String = "sites") throws -> Int {
        let file = name.contains(".") ? name : "\(name).c"
        let source = try String(contentsOf: programs.appendingPathComponent(file), encoding: .utf8)
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false)
        guard let index = lines.firstIndex(where: { $0.contains("/* SITE \(label) */") || $0.hasSuffix("// SITE \(label)") }) else {
            throw PlotError(description: "no SITE \(label) in \(name).c")
        }
        return index + 1
    }

    /// Runs `program` under the library with the profile on; its exit report.
    static func profile(_ program: String, sample: String = "16K", in directory: URL) throws -> ReportDocument {
        let report = directory.appendingPathComponent("report.\(UUID().uuidString.prefix(8)).json").path
        let result = try run([program], environment: [
            "LD_PRELOAD": library!, "BUDDY_REPORT": report, "BUDDY_REPORT_FORMAT": "json", "BUDDY_PROFILE_SAMPLE": sample,
        ], directory: directory)
        guard result.status == 0 else { throw PlotError(description: "\(program) failed: \(result.stderr)") }
        return try ReportLoader.load(path: report).documents.last!
    }

    /// Whether the tests can build and profile the programs.
    static var canProfile: Bool { compiler != nil && libraryWritesJSON }
}
