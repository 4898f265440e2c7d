import Foundation
import Synchronization
import Testing

/// Paths, programs and compilers for the pool tests (the examples, the C API through pkg-config).
enum Support {
    /// The package's root folder.
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The build's bin folder: `swift test` builds the examples and libBuddyMalloc.so there,
    /// next to the test bundle.
    static let binDirectory: URL = {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("libBuddyMalloc.so").path) { return url }
        }
        return packageRoot.appendingPathComponent(".build/debug")
    }()

    /// A built executable of this package (an example), or a clear failure.
    static func product(_ name: String) throws -> String {
        let path = binDirectory.appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw Failure("\(name) not found in \(binDirectory.path): run `swift build` (swift test builds it)")
        }
        return path
    }

    /// A scratch folder for one test.
    static func temporaryDirectory(_ name: String = #function) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("buddy-pool-tests-\(getpid())")
            .appendingPathComponent(name.filter { $0.isLetter || $0.isNumber } + "-" + UUID().uuidString.prefix(8))
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    struct Result {
        var status: Int32
        /// The signal that ended the process, or 0.
        var signal: Int32
        var stdout: String
        var stderr: String
        var output: String { stdout + stderr }
    }

    /// Runs `argv` (PATH searched) with `environment` added, and waits at most `timeout` seconds.
    static func run(_ argv: [String], environment: [String: String] = [:], timeout: TimeInterval = 120) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = argv
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "LD_PRELOAD")
        env.removeValue(forKey: "LD_LIBRARY_PATH")
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let outData = Box(), errData = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { outData.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { errData.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            group.wait()
            throw Failure("timed out after \(Int(timeout)) s: \(argv.joined(separator: " "))")
        }
        process.waitUntilExit()
        group.wait()
        let signalled = process.terminationReason == .uncaughtSignal
        return Result(status: signalled ? -1 : process.terminationStatus, signal: signalled ? process.terminationStatus : 0,
                      stdout: String(decoding: outData.data, as: UTF8.self),
                      stderr: String(decoding: errData.data, as: UTF8.self))
    }

    static func has(_ tool: String) -> Bool {
        (try? run(["sh", "-c", "command -v \(tool)"]).status) == 0
    }

    // MARK: pkg-config

    private static let pkgConfigFolder = Mutex<String?>(nil)

    /// Generates buddymalloc.pc for the build folder (tools/pkgconfig.sh), once per run; returns
    /// the folder to put on PKG_CONFIG_PATH.
    static func pkgConfigPath() throws -> String {
        try pkgConfigFolder.withLock { folder in
            if let folder { return folder }
            let script = packageRoot.appendingPathComponent("tools/pkgconfig.sh").path
            let result = try run(["bash", script, binDirectory.path])
            guard result.status == 0 else { throw Failure("tools/pkgconfig.sh failed:\n\(result.output)") }
            let path = binDirectory.appendingPathComponent("pkgconfig").path
            folder = path
            return path
        }
    }

    /// `pkg-config --cflags --libs buddymalloc` against PKG_CONFIG_PATH `path`.
    static func pkgConfigFlags(_ path: String) throws -> [String] {
        guard has("pkg-config") else {
            throw Failure("pkg-config is not installed (Debian: apt-get install pkgconf): the C examples build with it")
        }
        let result = try run(["pkg-config", "--cflags", "--libs", "buddymalloc"], environment: ["PKG_CONFIG_PATH": path])
        guard result.status == 0 else { throw Failure("pkg-config failed:\n\(result.output)") }
        return result.stdout.split(whereSeparator: \.isWhitespace).map(String.init)
    }

    /// Compiles a C (gcc) or C++ (g++, by the .cpp extension) source with pkg-config's flags for
    /// buddymalloc. -fno-builtin: gcc would otherwise remove malloc/free pairs.
    static func compile(_ source: String, into folder: URL, pkgConfigPath: String? = nil) throws -> String {
        let path = try pkgConfigPath ?? Support.pkgConfigPath()
        let flags = try pkgConfigFlags(path)
        let isCpp = source.hasSuffix(".cpp")
        let output = folder.appendingPathComponent(URL(fileURLWithPath: source).deletingPathExtension().lastPathComponent).path
        let compiler = isCpp ? ["g++", "-std=c++17"] : ["gcc", "-std=c11"]
        let result = try run(compiler + ["-O2", "-g", "-fno-builtin", "-Wall", "-Wextra", "-Werror", "-o", output, source] + flags)
        guard result.status == 0 else { throw Failure("compiling \(source) failed:\n\(result.output)") }
        return output
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}

private final class Box: @unchecked Sendable {
    var data = Data()
}
