import Foundation

extension Harness {
    /// A finished program: its exit status (or -1 when a signal ended it), the signal, its output.
    public struct Result: Sendable {
        public var status: Int32
        /// The signal that ended the process, or 0.
        public var signal: Int32
        public var stdout: String
        public var stderr: String
        /// stdout, then stderr.
        public var output: String { stdout + stderr }

        public init(status: Int32, signal: Int32, stdout: String, stderr: String) {
            (self.status, self.signal, self.stdout, self.stderr) = (status, signal, stdout, stderr)
        }
    }

    /// Runs `argv` (PATH is searched) with `environment` added, and waits at most `timeout`
    /// seconds (then kills it and throws). With `preload`, LD_PRELOAD names the library for this
    /// program only. The program inherits neither the test runner's LD_PRELOAD nor its
    /// LD_LIBRARY_PATH, and its TMPDIR is inside the run's root (`childTemporaryDirectory`)
    /// unless `environment` sets one. stdin is `stdin`, or empty.
    public static func run(_ argv: [String], environment: [String: String] = [:], preload: Bool = false,
                           stdin: String? = nil, directory: URL? = nil, timeout: TimeInterval = 120) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = argv
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "LD_PRELOAD")
        env.removeValue(forKey: "LD_LIBRARY_PATH")
        env["TMPDIR"] = childTemporaryDirectory.path
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
}

/// One pipe's bytes, written by its reader thread before the DispatchGroup is left.
private final class DataBox: @unchecked Sendable {
    var data = Data()
}
