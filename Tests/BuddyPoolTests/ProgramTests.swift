import Foundation
import Testing

// Programs: the design document's examples ported to Swift (built by `swift test` beside the
// tests), the C and C++ examples built with pkg-config against the library of this build, the
// installer, what free() does with a pool's block, and the README's snippets.

private let examplesC = Support.packageRoot.appendingPathComponent("Examples/c")

@Suite("Programs")
struct ProgramTests {
    @Test("example 9.1 (basic): allocate, free, a detected double free")
    func basicExample() throws {
        let result = try Support.run([try Support.product("PoolExampleBasic")])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stdout.contains("allocated 100 bytes at 0x") && result.stdout.contains(": a block of 128 bytes\n"), "\(result.stdout)")
        #expect(result.stdout.contains("allocated 1 KiB at 0x") && result.stdout.contains(": a block of 1024 bytes\n"))
        #expect(result.stdout.contains("freed ptr1\nfreed ptr2\nfreeing ptr1 twice: INVALID_POINTER (code 2)\n"))
        #expect(result.stdout.contains("pool: 1048576 bytes, 0 used, 2 allocations, 2 frees\n"), "\(result.stdout)")
    }

    @Test("example 9.2 (four threads): 4000 allocations, all freed")
    func threadsExample() throws {
        let result = try Support.run([try Support.product("PoolExampleThreads")])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stdout.contains("all threads done, total allocations: 4000\n"), "\(result.stdout)")
        // 10 MiB rounds up to a 16 MiB segment (segments are powers of two).
        #expect(result.stdout.contains("  total memory: 16777216 bytes\n  used memory: 0 bytes\n"), "\(result.stdout)")
        #expect(result.stdout.contains("  allocations: 4000\n  deallocations: 4000\n"), "\(result.stdout)")
        #expect(!result.output.contains("error"), "\(result.output)")
    }

    @Test("example 9.3 (containers): PoolArray, a list of typed nodes, a sorted map, scoped buffers")
    func containersExample() throws {
        let result = try Support.run([try Support.product("PoolExampleContainers")])
        #expect(result.status == 0, "\(result.output)")
        for line in ["vector size: 100", "vector capacity: 128", "vector[99]: 9801", "list size: 50, sum 1225",
                     "map size: 30, map[10] = 31.4", "holding resource 3", "resource 3 released",
                     "temporary buffer sum: 32640", "  used memory: 1536 bytes"] {
            #expect(result.stdout.contains(line), "missing \(line):\n\(result.stdout)")
        }
        // The noncopyable resources are released exactly once, after use.
        #expect(result.stdout.components(separatedBy: "released").count == 4)
    }

    @Test("the C example builds with pkg-config and runs without LD_LIBRARY_PATH")
    func cExample() throws {
        let folder = try Support.temporaryDirectory()
        let program = try Support.compile(examplesC.appendingPathComponent("pools.c").path, into: folder)
        let result = try Support.run([program])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stdout.contains("small: 128-byte block, aligned: 4096-byte block at a multiple of 4096: yes"), "\(result.stdout)")
        #expect(result.stdout.contains("a full pool: pool full: raise max_size"), "\(result.stdout)")
        #expect(result.stdout.contains("BuddyMalloc report") && result.stdout.contains("1.0M in 1 segments"), "\(result.stdout)")
        #expect(result.stdout.contains("malloc_usable_size(malloc(100)) = 128\npools: ok\n"), "\(result.stdout)")
        // The rpath, not the environment, finds the library: it is this build's.
        let ldd = try Support.run(["ldd", program])
        #expect(ldd.stdout.contains(Support.binDirectory.appendingPathComponent("libBuddyMalloc.so").path), "\(ldd.stdout)")
    }

    @Test("the C++ example: std::vector and std::map on a PoolAllocator<T>")
    func cppExample() throws {
        let folder = try Support.temporaryDirectory()
        let program = try Support.compile(examplesC.appendingPathComponent("containers.cpp").path, into: folder)
        let result = try Support.run([program])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stdout.contains("vector size: 100, capacity: 128, vec[99] = 9801"), "\(result.stdout)")
        #expect(result.stdout.contains("map size: 30, map[10] = 31.40"), "\(result.stdout)")
        #expect(result.stdout.contains("after they are gone: 16777216 bytes in the pool, 0 allocated"), "\(result.stdout)")
        #expect(result.stdout.contains("malloc_usable_size(malloc(100)) = 128\ncontainers: ok\n"), "\(result.stdout)")
    }

    @Test("tools/install.sh installs the library, buddy.h, a working buddymalloc.pc and buddy-run")
    func install() throws {
        let prefix = try Support.temporaryDirectory().appendingPathComponent("prefix")
        let script = Support.packageRoot.appendingPathComponent("tools/install.sh").path
        let result = try Support.run(["bash", script, prefix.path, Support.binDirectory.path])
        #expect(result.status == 0, "\(result.output)")
        for file in ["lib/libBuddyMalloc.so", "include/buddy.h", "lib/pkgconfig/buddymalloc.pc"] {
            #expect(FileManager.default.fileExists(atPath: prefix.appendingPathComponent(file).path), "missing \(file)")
        }
        #expect(!FileManager.default.fileExists(atPath: prefix.appendingPathComponent("include/buddy_exports.h").path))
        let pc = try String(contentsOf: prefix.appendingPathComponent("lib/pkgconfig/buddymalloc.pc"), encoding: .utf8)
        #expect(pc.contains("prefix=\(prefix.path)\n") && pc.contains("libdir=${prefix}/lib\n"), "\(pc)")
        let program = try Support.compile(examplesC.appendingPathComponent("readme.c").path, into: prefix,
                                          pkgConfigPath: prefix.appendingPathComponent("lib/pkgconfig").path)
        let run = try Support.run([program])
        #expect(run.status == 0 && run.stdout.hasPrefix("128\n"), "\(run.output)")
        let ldd = try Support.run(["ldd", program])
        #expect(ldd.stdout.contains(prefix.appendingPathComponent("lib/libBuddyMalloc.so").path), "\(ldd.stdout)")
        // buddy-run, installed beside the library, preloads the installed one (no package there).
        let report = prefix.appendingPathComponent("report.txt").path
        let runner = try Support.run([prefix.appendingPathComponent("bin/buddy-run").path, "--report=\(report)", "--", "/bin/true"])
        #expect(runner.status == 0, "\(runner.output)")
        #expect((try? String(contentsOfFile: report, encoding: .utf8))?.hasPrefix("BuddyMalloc report, pid ") == true)
        // Usage errors.
        #expect(try Support.run(["bash", script]).status != 0)
        #expect(try Support.run(["bash", script, "relative/prefix", Support.binDirectory.path]).status == 2)
    }

    /// A C program that frees a private pool's block with free(): linked with -lBuddyMalloc, or
    /// (PRELOADED) run under LD_PRELOAD and finding the pool functions with dlsym.
    private static let wrongFree = """
        #define _GNU_SOURCE
        #include <buddy.h>
        #include <dlfcn.h>
        #include <stdio.h>
        #include <stdlib.h>
        #ifdef PRELOADED
        #define FN(name) ((__typeof__(&name))dlsym(RTLD_DEFAULT, #name))
        #else
        #define FN(name) name
        #endif
        int main(void) {
        #ifdef PRELOADED
            if (FN(buddy_pool_create) == NULL) { puts("the library is not loaded"); return 3; }
        #endif
            buddy_pool *pool = FN(buddy_pool_create)(NULL);
            void *p = FN(buddy_pool_alloc)(pool, 64, 0);
            printf("pool block %p\\n", p);
            fflush(stdout);
            free(p);
            printf("after free(): still the pool's: %d\\n", FN(buddy_pool_owns)(pool, p));
            printf("buddy_pool_free: %d\\n", FN(buddy_pool_free)(pool, p));
            FN(buddy_pool_destroy)(pool);
            return 0;
        }
        """

    @Test("free() of a private pool's block: reported and aborted, or ignored with BUDDY_ON_ERROR=log (linked and preloaded)")
    func freeOfAPoolBlock() throws {
        let folder = try Support.temporaryDirectory()
        let source = folder.appendingPathComponent("wrong_free.c")
        try Self.wrongFree.write(to: source, atomically: true, encoding: .utf8)
        let linked = try Support.compile(source.path, into: folder)
        let preloadedBinary = folder.appendingPathComponent("wrong_free_preloaded").path
        let include = Support.packageRoot.appendingPathComponent("Sources/BuddyMallocAPI/include").path
        let build = try Support.run(["gcc", "-O2", "-fno-builtin", "-DPRELOADED", "-I", include, "-o", preloadedBinary, source.path, "-ldl"])
        try #require(build.status == 0, "\(build.output)")
        let library = Support.binDirectory.appendingPathComponent("libBuddyMalloc.so").path
        let variants: [(String, [String], [String: String])] = [
            ("linked", [linked], [:]),
            ("preloaded", ["env", "LD_PRELOAD=\(library)", preloadedBinary], [:]),
        ]
        for (name, argv, environment) in variants {
            let aborted = try Support.run(argv, environment: environment)
            #expect(aborted.signal == SIGABRT, "\(name): \(aborted.status)/\(aborted.signal)\n\(aborted.output)")
            #expect(aborted.stderr.contains("buddy: free(): pointer 0x") && aborted.stderr.contains(" belongs to a private pool (release it with buddy_pool_free); aborting"),
                    "\(name): \(aborted.stderr)")
            #expect(aborted.stdout.contains("pool block 0x") && !aborted.stdout.contains("after free()"), "\(name): \(aborted.stdout)")

            var logged = environment
            logged["BUDDY_ON_ERROR"] = "log"
            let ignored = try Support.run(argv, environment: logged)
            #expect(ignored.status == 0, "\(name): \(ignored.output)")
            #expect(ignored.stderr.contains("belongs to a private pool (release it with buddy_pool_free); ignored, the pool is unchanged"), "\(name): \(ignored.stderr)")
            #expect(ignored.stdout.contains("after free(): still the pool's: 1\nbuddy_pool_free: 0\n"), "\(name): \(ignored.stdout)")
        }
        // Without the library, the preloaded variant proves it needs it (so the runs above used it).
        #expect(try Support.run([preloadedBinary]).status == 3)
    }

    @Test("the README's snippets under 'Using the pool directly' are the compiled examples")
    func readmeSnippets() throws {
        let readme = try String(contentsOf: Support.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let start = try #require(readme.range(of: "\n## Using the pool directly\n"), "the README has no section 'Using the pool directly'")
        let end = readme.range(of: "\n## ", range: start.upperBound..<readme.endIndex)?.lowerBound ?? readme.endIndex
        let section = readme[start.upperBound..<end]
        func firstBlock(_ language: String) -> String? {
            guard let open = section.range(of: "```\(language)\n"),
                  let close = section.range(of: "\n```\n", range: open.upperBound..<section.endIndex) else { return nil }
            return String(section[open.upperBound..<close.lowerBound]) + "\n"
        }
        let swiftFile = Support.packageRoot.appendingPathComponent("Examples/Readme/main.swift")
        let cFile = examplesC.appendingPathComponent("readme.c")
        #expect(firstBlock("swift") == (try String(contentsOf: swiftFile, encoding: .utf8)),
                "the README's Swift snippet differs from Examples/Readme/main.swift")
        #expect(firstBlock("c") == (try String(contentsOf: cFile, encoding: .utf8)),
                "the README's C snippet differs from Examples/c/readme.c")
        // Both run, and print what their comments say.
        let swift = try Support.run([try Support.product("PoolExampleReadme")])
        #expect(swift.status == 0 && swift.stdout == "128\nINVALID_POINTER\n9801 1024\n", "\(swift.output)")
        let folder = try Support.temporaryDirectory()
        let c = try Support.run([try Support.compile(cFile.path, into: folder)])
        #expect(c.status == 0 && c.stdout == "128\ninvalid pointer: pass only pointers this pool returned, once each\n1 allocations, 1 double frees\n",
                "\(c.output)")
    }
}
