import Foundation
import Testing

/// Runs real programs with and without libBuddyMalloc.so preloaded.
enum Harness {
    /// The package's root folder.
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The build's bin folder: `swift test` builds the .dynamic product next to the test bundle.
    static let binDirectory: URL = {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        // The test runner may be inside a .xctest bundle folder.
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("libBuddyMalloc.so").path) { return url }
        }
        return packageRoot.appendingPathComponent(".build/debug")
    }()

    /// The library under test. ld.so ignores a missing preload silently, so fail loudly here.
    static var library: String {
        get throws {
            let path = binDirectory.appendingPathComponent("libBuddyMalloc.so").path
            guard FileManager.default.fileExists(atPath: path) else {
                throw HarnessError("libBuddyMalloc.so not found in \(binDirectory.path): run `swift build` first")
            }
            return path
        }
    }

    /// A scratch folder for one test.
    static func temporaryDirectory(_ name: String = #function) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("buddy-tests-\(getpid())")
            .appendingPathComponent(name.filter { $0.isLetter || $0.isNumber } + "-" + UUID().uuidString.prefix(8))
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Compiles `Tests/Programs/<name>.c` (gcc -O2 -fno-builtin: gcc would otherwise remove
    /// malloc/free pairs) once per test run, and returns the executable's path.
    static func compileC(_ name: String, extraFlags: [String] = []) throws -> String {
        let source = packageRoot.appendingPathComponent("Tests/Programs/\(name).c").path
        let out = FileManager.default.temporaryDirectory
            .appendingPathComponent("buddy-tests-\(getpid())-bin").appendingPathComponent(name)
        try FileManager.default.createDirectory(at: out.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: out.path) {
            // Compile to a private name and rename: tests running in parallel may compile the same
            // driver at once, and rename(2) makes the finished file appear whole.
            let partial = out.path + ".\(UUID().uuidString)"
            let result = try run(["gcc", "-O2", "-g", "-fno-builtin", "-pthread", "-o", partial, source] + extraFlags + ["-ldl"])
            guard result.status == 0 else { throw HarnessError("gcc failed for \(name).c:\n\(result.stderr)") }
            guard rename(partial, out.path) == 0 else { throw HarnessError("cannot rename \(partial)") }
        }
        return out.path
    }

    struct Result {
        var status: Int32
        /// The signal that ended the process, or 0.
        var signal: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `argv` (PATH is searched) and waits at most `timeout` seconds.
    /// With `preload`, LD_PRELOAD names the library for this program only.
    static func run(_ argv: [String], environment: [String: String] = [:], preload: Bool = false,
                    stdin: String? = nil, directory: URL? = nil, timeout: TimeInterval = 120) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = argv
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "LD_PRELOAD")
        for (key, value) in environment { env[key] = value }
        process.environment = env
        // `env LD_PRELOAD=lib PROGRAM`: the preload reaches PROGRAM only, not env itself.
        if preload { process.arguments = ["LD_PRELOAD=\(try library)"] + argv }
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try? input.fileHandleForWriting.close()
        // Read both pipes while the program runs, so a chatty program cannot block on a full pipe.
        let outData = DataBox(), errData = DataBox()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { outData.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { errData.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            process.terminate()
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            group.wait()
            throw HarnessError("timed out after \(Int(timeout)) s: \(argv.joined(separator: " "))")
        }
        process.waitUntilExit()
        group.wait()
        let signalled = process.terminationReason == .uncaughtSignal
        return Result(status: signalled ? -1 : process.terminationStatus,
                      signal: signalled ? process.terminationStatus : 0,
                      stdout: String(decoding: outData.data, as: UTF8.self),
                      stderr: String(decoding: errData.data, as: UTF8.self))
    }

    /// Whether `tool` is on PATH.
    static func has(_ tool: String) -> Bool {
        (try? run(["sh", "-c", "command -v \(tool)"]).status) == 0
    }

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

/// One pipe's bytes, written by its reader thread before the DispatchGroup is left.
private final class DataBox: @unchecked Sendable {
    var data = Data()
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
