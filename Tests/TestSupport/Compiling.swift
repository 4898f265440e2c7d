import Foundation
import Synchronization

extension Harness {
    /// Compiles `Tests/Programs/<name>.c` (gcc -O2 -fno-builtin: gcc would otherwise remove
    /// malloc/free pairs) once per test run, into `programsDirectory`, and returns the
    /// executable's path.
    public static func compileC(_ name: String, extraFlags: [String] = []) throws -> String {
        try compile(name + ".c", compiler: "gcc", flags: ["-O2", "-g", "-fno-builtin", "-pthread"], extraFlags: extraFlags)
    }

    /// compileC for `Tests/Programs/<name>.cpp`, with g++ (-fno-allocation-dce too: g++ would
    /// otherwise remove new/delete pairs).
    public static func compileCxx(_ name: String) throws -> String {
        try compile(name + ".cpp", compiler: "g++", flags: ["-O2", "-g", "-fno-builtin", "-fno-allocation-dce", "-pthread"])
    }

    private static func compile(_ file: String, compiler: String, flags: [String], extraFlags: [String] = []) throws -> String {
        let source = packageRoot.appendingPathComponent("Tests/Programs/\(file)").path
        let out = programsDirectory.appendingPathComponent((file as NSString).deletingPathExtension)
        try FileManager.default.createDirectory(at: out.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: out.path) {
            // Compile to a private name and rename: tests running in parallel may compile the same
            // driver at once, and rename(2) makes the finished file appear whole.
            let partial = out.path + ".\(UUID().uuidString)"
            let result = try run([compiler] + flags + ["-o", partial, source] + extraFlags + ["-ldl"])
            guard result.status == 0 else { throw HarnessError("\(compiler) failed for \(file):\n\(result.stderr)") }
            guard rename(partial, out.path) == 0 else { throw HarnessError("cannot rename \(partial)") }
        }
        return out.path
    }

    // MARK: pkg-config

    private static let pkgConfigFolder = Mutex<String?>(nil)

    /// Generates buddymalloc.pc for the build folder (tools/pkgconfig.sh), once per run; returns
    /// the folder to put on PKG_CONFIG_PATH.
    public static func pkgConfigPath() throws -> String {
        try pkgConfigFolder.withLock { folder in
            if let folder { return folder }
            let script = packageRoot.appendingPathComponent("tools/pkgconfig.sh").path
            let result = try run(["bash", script, binDirectory.path])
            guard result.status == 0 else { throw HarnessError("tools/pkgconfig.sh failed:\n\(result.output)") }
            let path = binDirectory.appendingPathComponent("pkgconfig").path
            folder = path
            return path
        }
    }

    /// `pkg-config --cflags --libs buddymalloc` against PKG_CONFIG_PATH `path`.
    public static func pkgConfigFlags(_ path: String) throws -> [String] {
        guard has("pkg-config") else {
            throw HarnessError("pkg-config is not installed (Debian: apt-get install pkgconf): the C examples build with it")
        }
        let result = try run(["pkg-config", "--cflags", "--libs", "buddymalloc"], environment: ["PKG_CONFIG_PATH": path])
        guard result.status == 0 else { throw HarnessError("pkg-config failed:\n\(result.output)") }
        return result.stdout.split(whereSeparator: \.isWhitespace).map(String.init)
    }

    /// Compiles a C (gcc) or C++ (g++, by the .cpp extension) source with pkg-config's flags for
    /// buddymalloc, into `folder`. -fno-builtin: gcc would otherwise remove malloc/free pairs.
    public static func compile(_ source: String, into folder: URL, pkgConfigPath: String? = nil) throws -> String {
        let path = try pkgConfigPath ?? Harness.pkgConfigPath()
        let flags = try pkgConfigFlags(path)
        let isCpp = source.hasSuffix(".cpp")
        let output = folder.appendingPathComponent(URL(fileURLWithPath: source).deletingPathExtension().lastPathComponent).path
        let compiler = isCpp ? ["g++", "-std=c++17"] : ["gcc", "-std=c11"]
        let result = try run(compiler + ["-O2", "-g", "-fno-builtin", "-Wall", "-Wextra", "-Werror", "-o", output, source] + flags)
        guard result.status == 0 else { throw HarnessError("compiling \(source) failed:\n\(result.output)") }
        return output
    }
}
