import Foundation

// What every test target needs to run real programs: the package's paths, the built products,
// scratch folders that go away with the test process, and a process runner with a time-out.
// Nothing here links an allocator module: the test runner keeps glibc's malloc, and the
// programs it starts get the library only through LD_PRELOAD or by linking it themselves.

/// Paths, scratch folders and processes for the tests (one copy for every test target).
public enum Harness {
    /// The package's root folder.
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The first folder above the test runner's executable that holds `file`: `swift test`
    /// builds the products (the .dynamic library, the executables) beside the test bundle.
    public static func binDirectory(containing file: String) -> URL? {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        // The test runner may be inside a .xctest bundle folder.
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent(file).path) { return url }
        }
        return nil
    }

    /// The build's bin folder (where libBuddyMalloc.so is), else the package's debug folder.
    public static let binDirectory: URL = binDirectory(containing: "libBuddyMalloc.so")
        ?? packageRoot.appendingPathComponent(".build/debug")

    /// The library under test. ld.so ignores a missing preload silently, so fail loudly here.
    public static var library: String {
        get throws {
            let path = binDirectory.appendingPathComponent("libBuddyMalloc.so").path
            guard FileManager.default.fileExists(atPath: path) else {
                throw HarnessError("libBuddyMalloc.so not found in \(binDirectory.path): run `swift build` first")
            }
            return path
        }
    }

    /// A built executable of this package (an example, a tool), or a clear failure.
    public static func product(_ name: String) throws -> String {
        let path = binDirectory.appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw HarnessError("\(name) not found in \(binDirectory.path): run `swift build` (swift test builds it)")
        }
        return path
    }

    /// Whether `tool` is on PATH.
    public static func has(_ tool: String) -> Bool {
        (try? run(["sh", "-c", "command -v \(tool)"]).status) == 0
    }
}

/// A test's failure to set up or run something, with the reason in its description.
public struct HarnessError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension Harness {
    /// The name BuddyPoolTests' helpers used for HarnessError.
    public typealias Failure = HarnessError
}
