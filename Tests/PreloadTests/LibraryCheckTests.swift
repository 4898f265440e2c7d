import Foundation
import Synchronization
import Testing

// The built library as a file: its dynamic symbols, its dependencies, the absence of Swift runtime
// calls on its malloc path (tools/check-malloc-path.py), and the absence of signal handlers in a
// host that preloads it (Tests/Programs/signals.c).

/// Every symbol libBuddyMalloc.so may define for the dynamic linker: the libc allocator names, C++'s
/// operator new and delete, and the project's own entry points (Sources/BuddyMallocExports/exports.map).
private let expectedExports: Set<String> = [
    "malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc", "memalign",
    "valloc", "pvalloc", "malloc_usable_size", "free_sized", "free_aligned_sized",
    "buddy_malloc", "buddy_free", "buddy_calloc", "buddy_realloc", "buddy_reallocarray", "buddy_posix_memalign",
    "buddy_aligned_alloc", "buddy_memalign", "buddy_valloc", "buddy_pvalloc", "buddy_malloc_usable_size",
    "buddy_free_sized", "buddy_free_aligned_sized", "buddy_exit_report",
    // C++'s operator new and delete in every form (cxx_operators.c).
    "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t", "_ZnamSt11align_val_t",
    "_ZnwmSt11align_val_tRKSt9nothrow_t", "_ZnamSt11align_val_tRKSt9nothrow_t",
    "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm", "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t",
    "_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t", "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t",
    "_ZdlPvSt11align_val_tRKSt9nothrow_t", "_ZdaPvSt11align_val_tRKSt9nothrow_t",
    // glibc's introspection and the statistics API (include/buddy_stats.h).
    "malloc_stats", "malloc_info", "mallinfo", "mallinfo2", "malloc_trim", "buddy_stats_get", "buddy_report_write",
    // Private pools (include/buddy.h).
    "buddy_pool_config_problem", "buddy_pool_create", "buddy_pool_destroy", "buddy_pool_alloc",
    "buddy_pool_alloc_ex", "buddy_pool_free", "buddy_pool_reset", "buddy_pool_owns",
    "buddy_pool_block_size", "buddy_pool_stats", "buddy_pool_report",
]

private enum Libraries {
    /// The debug library next to the tests.
    static var debug: String {
        (try? Harness.library) ?? Harness.binDirectory.appendingPathComponent("libBuddyMalloc.so").path
    }

    /// The release library of the same build folder, when it exists and is newer than every source
    /// (a stale one would test old code).
    static var release: String? {
        let path = Harness.binDirectory.deletingLastPathComponent()
            .appendingPathComponent("release/libBuddyMalloc.so").path
        guard let built = modificationDate(path) else { return nil }
        let sources = Harness.packageRoot.appendingPathComponent("Sources")
        let files = FileManager.default.enumerator(atPath: sources.path)?.compactMap { $0 as? String } ?? []
        let newest = ([Harness.packageRoot.appendingPathComponent("Package.swift").path]
            + files.map { sources.appendingPathComponent($0).path }).compactMap(modificationDate).max()
        return newest.map { built >= $0 } ?? true ? path : nil
    }

    static var all: [String] { [debug] + (release.map { [$0] } ?? []) }

    private static func modificationDate(_ path: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
    }
}

private let checker = Harness.packageRoot.appendingPathComponent("tools/check-malloc-path.py").path

private let signalsBuild = Mutex<String?>(nil)

private func signalsProgram() throws -> String {
    try signalsBuild.withLock { built in
        if let built { return built }
        let path = try Harness.compileC("signals")
        built = path
        return path
    }
}

/// Runs `program` under the preload through a nested `env LD_PRELOAD=...`, so that only the
/// program is preloaded (not the /usr/bin/env that Harness.run starts it with).
private func runPreloaded(_ argv: [String]) throws -> Harness.Result {
    try Harness.run(["env", "LD_PRELOAD=\(try Harness.library)"] + argv, timeout: 60)
}

/// GLOBAL and WEAK symbols the library defines in its dynamic symbol table (readelf --dyn-syms).
private func definedDynamicSymbols(_ library: String) throws -> [(name: String, type: String)] {
    let result = try Harness.run(["readelf", "--dyn-syms", "-W", library])
    guard result.status == 0 else { throw HarnessError("readelf failed: \(result.stderr)") }
    var symbols: [(String, String)] = []
    for line in result.stdout.split(separator: "\n") {
        // Num: Value Size Type Bind Vis Ndx Name
        let f = line.split(separator: " ", omittingEmptySubsequences: true)
        guard f.count >= 8, f[0].hasSuffix(":"), f[4] == "GLOBAL" || f[4] == "WEAK", f[6] != "UND" else { continue }
        symbols.append((String(f[7].split(separator: "@").first ?? f[7]), String(f[3])))
    }
    return symbols
}

@Suite("The library file")
struct LibraryCheckTests {
    @Test("the dynamic symbol table defines exactly the allocator names", arguments: Libraries.all)
    func exportsExactly(_ library: String) throws {
        let symbols = try definedDynamicSymbols(library)
        let names = Set(symbols.map(\.name))
        #expect(names.subtracting(expectedExports).isEmpty, "\(library) also exports: \(names.subtracting(expectedExports).sorted())")
        #expect(expectedExports.subtracting(names).isEmpty, "\(library) does not export: \(expectedExports.subtracting(names).sorted())")
        #expect(symbols.count == expectedExports.count, "duplicate entries: \(symbols.map(\.name).sorted())")
        #expect(symbols.allSatisfy { $0.type == "FUNC" }, "non-function exports: \(symbols.filter { $0.type != "FUNC" })")
        // nm agrees (defined, external: upper-case type letters).
        let nm = try Harness.run(["nm", "-D", "--defined-only", library])
        let nmNames = Set(nm.stdout.split(separator: "\n").compactMap { line -> String? in
            let f = line.split(separator: " ")
            guard f.count == 3, let kind = f[1].first, kind.isUppercase else { return nil }
            return String(f[2].split(separator: "@").first ?? f[2])
        })
        #expect(nmNames == expectedExports, "nm -D --defined-only (global): \(nmNames.symmetricDifference(expectedExports).sorted())")
    }

    @Test("no Swift runtime entry is reachable from the exports (tools/check-malloc-path.py)", arguments: Libraries.all)
    func mallocPathIsClean(_ library: String) throws {
        let result = try Harness.run(["python3", checker, library], timeout: 120)
        #expect(result.status == 0,
                "check-malloc-path.py \(library) exited \(result.status):\n\(result.stdout.prefix(6000))\n\(result.stderr.prefix(2000))")
        #expect(result.stdout.contains("reachable"), "no summary:\n\(result.stdout.prefix(2000))")
        // The summary names what the allocator really calls outside the library.
        for function in ["mmap", "munmap", "__libc_malloc"] {
            #expect(result.stdout.contains(function), "\(function) not among the external functions reached:\n\(result.stdout.prefix(3000))")
        }
    }

    @Test("the checker fails on a library whose export reaches swift_retain, and passes a clean one")
    func checkerCanFail() throws {
        let folder = try Harness.temporaryDirectory()
        let source = folder.appendingPathComponent("probe.c")
        try """
        #define LOCAL __attribute__((visibility("hidden"), noinline))
        volatile int sink;
        LOCAL void *swift_retain(void *object) { sink++; return object; }
        LOCAL void *helper(void *p) { sink += 2; return BAD ? swift_retain(p) : p; }
        void *probe_entry(void *p) { sink += 3; return helper(p); }
        """.write(to: source, atomically: true, encoding: .utf8)
        for (bad, expected) in [(1, Int32(1)), (0, Int32(0))] {
            let library = folder.appendingPathComponent("libprobe\(bad).so").path
            let build = try Harness.run(["gcc", "-O2", "-shared", "-fPIC", "-DBAD=\(bad)", "-o", library, source.path])
            try #require(build.status == 0, "gcc: \(build.stderr)")
            let result = try Harness.run(["python3", checker, library])
            #expect(result.status == expected, "BAD=\(bad): exit \(result.status), expected \(expected)\n\(result.stdout)\n\(result.stderr)")
            if bad == 1 {
                #expect(result.stdout.contains("swift_retain") && result.stdout.contains("probe_entry")
                        && result.stdout.contains("helper"),
                        "the failure does not show the path probe_entry -> helper -> swift_retain:\n\(result.stdout)")
            }
        }
        // The stripped library cannot be checked: exit 2, never a pass.
        let stripped = folder.appendingPathComponent("libprobe1.so").path
        _ = try Harness.run(["strip", stripped])
        let result = try Harness.run(["python3", checker, stripped])
        #expect(result.status == 2, "stripped library: exit \(result.status)\n\(result.stdout)\(result.stderr)")
    }

    @Test("the report signal handler reaches only async-signal-safe functions (check-malloc-path.py --signal-safe)",
          arguments: Libraries.all)
    func signalHandlerIsAsyncSignalSafe(_ library: String) throws {
        let handler = try Harness.run(["python3", checker, "--signal-safe", "--roots", "buddy_report_signal_handler", library],
                                      timeout: 120)
        #expect(handler.status == 0, "the handler's path is not async-signal-safe:\n\(handler.stdout.prefix(6000))\n\(handler.stderr)")
        let reached = handler.stdout.split(separator: "\n").first { $0.contains("external reached") }.map(String.init) ?? ""
        #expect(reached.contains("write") && !reached.contains("pthread_mutex") && !reached.contains("nanosleep")
                && !reached.contains("mincore"), "\(reached)")
        // The pool lock, the naps and the residency are the library's own system calls.
        let own = handler.stdout.split(separator: "\n").first { $0.contains("own system calls") }.map(String.init) ?? ""
        for function in ["buddy_lock_wake", "buddy_os_nap", "buddy_os_resident_bytes"] {
            #expect(own.contains(function), "\(function) does not issue its own system call: \(own)")
        }
        // The mode can fail: malloc's path takes glibc's allocator, mmap, pthread keys...
        let malloc = try Harness.run(["python3", checker, "--signal-safe", "--roots", "buddy_malloc", library], timeout: 120)
        #expect(malloc.status == 1, "buddy_malloc passed --signal-safe:\n\(malloc.stdout.prefix(3000))")
        for function in ["__libc_malloc", "mmap"] {
            #expect(malloc.stdout.contains("  \(function): not async-signal-safe"), "\(function) not flagged:\n\(malloc.stdout.prefix(3000))")
        }
        // ... and a handler that tried a pthread mutex or called malloc would fail it too.
        let folder = try Harness.temporaryDirectory()
        let source = folder.appendingPathComponent("handler.c")
        try """
        #include <pthread.h>
        #include <stdlib.h>
        #include <unistd.h>
        static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
        void probe_handler(int sig) {
        #if BAD
            if (pthread_mutex_trylock(&lock) == 0) { free(malloc(16)); pthread_mutex_unlock(&lock); }
        #endif
            write(2, "signal\\n", 7);
        }
        """.write(to: source, atomically: true, encoding: .utf8)
        for bad in [1, 0] {
            let probe = folder.appendingPathComponent("libhandler\(bad).so").path
            // -fno-builtin: gcc would otherwise drop the malloc/free pair.
            let build = try Harness.run(["gcc", "-O2", "-fno-builtin", "-shared", "-fPIC", "-DBAD=\(bad)", "-o", probe, source.path])
            try #require(build.status == 0, "gcc: \(build.stderr)")
            let result = try Harness.run(["python3", checker, "--signal-safe", "--roots", "probe_handler", probe])
            #expect(result.status == (bad == 1 ? 1 : 0), "BAD=\(bad): exit \(result.status)\n\(result.stdout)\(result.stderr)")
            if bad == 1 {
                for function in ["pthread_mutex_trylock", "malloc", "free"] {
                    #expect(result.stdout.contains("  \(function): not async-signal-safe"), "\(function) not flagged:\n\(result.stdout)")
                }
            }
        }
    }

    @Test("the checker's self-test and --help")
    func checkerSelfTest() throws {
        let result = try Harness.run(["python3", checker, "--self-test"], timeout: 120)
        #expect(result.status == 0 && result.stdout.contains("self-test passed"), "\(result.stdout)\n\(result.stderr)")
        let help = try Harness.run(["python3", checker, "--help"])
        #expect(help.status == 0 && help.stdout.contains("--verbose") && help.stdout.contains("--self-test")
                && help.stdout.contains("--signal-safe"), "\(help.stdout)")
    }

    /// The runtime, libstdc++ and the unwinder are linked in (Package.swift): a program that
    /// preloads the library loads no other library for it but libc's and libm.
    @Test("the library needs no Swift runtime, libstdc++ or libgcc_s", arguments: Libraries.all)
    func noSwiftDependency(_ library: String) throws {
        let ldd = try Harness.run(["ldd", library])
        #expect(ldd.status == 0, "ldd failed: \(ldd.stderr)")
        #expect(!ldd.stdout.contains("libswift"), "ldd \(library):\n\(ldd.stdout)")
        #expect(!ldd.stdout.contains("not found"), "ldd \(library):\n\(ldd.stdout)")
        let dynamic = try Harness.run(["readelf", "-d", library])
        let needed = dynamic.stdout.split(separator: "\n").filter { $0.contains("(NEEDED)") }
        #expect(!needed.isEmpty, "no NEEDED entries read from \(library)")
        #expect(needed.allSatisfy { !$0.contains("libswift") }, "NEEDED: \(needed)")
        #expect(needed.allSatisfy { !$0.contains("libstdc++") && !$0.contains("libgcc_s") }, "NEEDED: \(needed)")
    }

    /// The library is Embedded Swift: no Swift runtime, no libstdc++, no libm, nothing but libc,
    /// and no constructor of theirs allocating in every process (libstdc++'s emergency exception
    /// pool malloc'd 73 KB, a block of the large class, which opened a second segment). A program
    /// that allocates nothing under the library has one segment, and the loader's and libc's
    /// own calls ask for a few hundred bytes.
    @Test("the library needs libc alone, and a program that allocates nothing gets one segment", arguments: Libraries.all)
    func libcAlone(_ library: String) throws {
        let dynamic = try Harness.run(["readelf", "-d", library])
        let needed = dynamic.stdout.split(separator: "\n").filter { $0.contains("(NEEDED)") }
        #expect(needed.count == 1 && needed[0].contains("[libc.so.6]"), "NEEDED: \(needed)")
        let symbols = try Harness.run(["readelf", "-sW", library])
        #expect(symbols.stdout.contains("buddy_malloc"), "no symbols read from \(library)")
        for (symbol, what) in ["_GLOBAL__sub_I_eh_alloc": "libstdc++'s emergency pool",
                               "_GLOBAL__sub_I_CommandLine": "the Swift runtime's CommandLine constructor"] {
            #expect(!symbols.stdout.contains(symbol), "\(what) is linked in (\(symbol))")
        }
        let result = try Harness.run(["env", "LD_PRELOAD=\(library)", "BUDDY_REPORT=stderr", "BUDDY_REPORT_FORMAT=json", "true"], timeout: 60)
        #expect(result.status == 0, "status \(result.status):\n\(result.stderr)")
        let start = try #require(result.stderr.firstIndex(of: "{"), "no report:\n\(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stderr[start...].utf8)) as? [String: Any])
        let segments = try #require(json["segments"] as? [String: Any])
        let memory = try #require(json["memory"] as? [String: Any])
        #expect((segments["count"] as? NSNumber)?.intValue == 1, "true under the library: \(segments), \(memory)")
        #expect(((memory["requested"] as? NSNumber)?.intValue ?? .max) < 16_384, "true under the library: \(memory)")
    }

    @Test("a preloading program keeps the default handlers for fatal signals")
    func noSignalHandlers() throws {
        let program = try signalsProgram()
        let result = try runPreloaded([program])
        #expect(result.status == 0, "status \(result.status):\n\(result.stdout)\n\(result.stderr)")
        for signal in ["SIGSEGV", "SIGBUS", "SIGILL", "SIGABRT", "SIGFPE", "SIGTRAP"] {
            #expect(result.stdout.contains("\(signal) default\n"), "\(signal) is not at its default under the preload:\n\(result.stdout)")
        }
        #expect(result.stdout.contains("sigaltstack none"), "\(result.stdout)")
        // Controls: the check sees a handler, and refuses to pass without the preload.
        let control = try runPreloaded([program, "--install-control"])
        #expect(control.status == 1 && control.stdout.contains("SIGSEGV HANDLED"), "control: \(control.stdout)")
        let unloaded = try Harness.run([program])
        #expect(unloaded.status == 3, "without the preload the driver must exit 3, got \(unloaded.status): \(unloaded.stdout)")
    }
}
