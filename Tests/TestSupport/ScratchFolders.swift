import Foundation

// Every file a test run creates lives under one folder, $TMPDIR/buddy-tests-<pid> (the test
// process's pid), removed when the test process exits: the tests' scratch folders, the C
// drivers compiled for the run, and the temporary files of every program the tests start (their
// TMPDIR points inside it: compilers, the Swift driver, scripts). A run that is killed leaves
// only that one folder behind. KEEP_TEST_FILES=1 keeps it (to look at a failure's files); the
// exit handler then names it on stderr.

extension Harness {
    /// The run's root folder, created on first use; an exit handler removes it with everything
    /// in it.
    public static let runRoot: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("buddy-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        atexit { Harness.removeRunRoot() }
        return url
    }()

    /// The TMPDIR of the programs the tests run (`run` sets it unless the caller does).
    public static let childTemporaryDirectory: URL = {
        let url = runRoot.appendingPathComponent("tmp")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// Where `compileC` puts the drivers it builds (once per run).
    public static let programsDirectory: URL = {
        let url = runRoot.appendingPathComponent("bin")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// A scratch folder for one test, inside the run's root (so it goes away with the run).
    public static func temporaryDirectory(_ name: String = #function) throws -> URL {
        let url = runRoot
            .appendingPathComponent(name.filter { $0.isLetter || $0.isNumber } + "-" + UUID().uuidString.prefix(8))
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Removes the run's root (the exit handler). FileManager removes symbolic links, FIFOs and
    /// device nodes the tests made without following or opening them.
    static func removeRunRoot() {
        if ProcessInfo.processInfo.environment["KEEP_TEST_FILES"] == "1" {
            FileHandle.standardError.write(Data("KEEP_TEST_FILES=1: the test files are in \(runRoot.path)\n".utf8))
            return
        }
        try? FileManager.default.removeItem(at: runRoot)
    }
}
