// swift-tools-version:6.2
import PackageDescription

// The allocator's Swift code is always optimized, in debug builds too: at -Onone, runtime type
// metadata is instantiated inside malloc, which calls operator new -> malloc with the pool lock
// held and deadlocks the host. Exclusivity checks call swift_beginAccess on every global access
// (21.9 vs 6.9 ns per malloc+free pair). See docs/swift-inside-malloc.md.
let allocatorSwiftSettings: [SwiftSetting] = [
    .unsafeFlags(["-O", "-enforce-exclusivity=unchecked"]),
]

let package = Package(
    name: "BuddyMalloc",
    products: [
        // libBuddyMalloc.so: LD_PRELOAD it, or link it, and the buddy pool is the process's malloc.
        .library(name: "BuddyMalloc", type: .dynamic, targets: ["BuddyMallocExports"]),
        // buddy-report: shows, compares and plots the library's JSON reports, and runs a program
        // under the library. It reads only the report format, never links the allocator.
        .executable(name: "buddy-report", targets: ["BuddyReport"]),
        // Private pools for Swift code (MemoryPool, PoolArray). It links the engine, never the
        // libc names: a program using it keeps its own malloc.
        .library(name: "BuddyPool", targets: ["BuddyPool"]),
    ],
    dependencies: [
        // For buddy-report's command line only; the allocator targets depend on nothing.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // The layers, each depending only on those listed before it (README, "How it works"):
        // Layer 0: the public C API's types (buddy.h, buddy_stats.h), used by every layer above.
        .target(name: "BuddyMallocAPI"),
        // Layer 1: what Swift cannot say (initial-exec TLS, glibc's __libc_* names, OS calls,
        // the futex lock, atomics). Includes nothing above it.
        .target(name: "CBuddySupport", dependencies: ["BuddyMallocAPI"]),
        // Layer 2: an instantiable buddy pool (orders, blocks, free areas, split and coalesce,
        // segments, slabs, release to the OS, figures, invariants). Knows nothing of thread
        // caches, reports or malloc.
        .target(name: "BuddyEngine", dependencies: ["CBuddySupport"], swiftSettings: allocatorSwiftSettings),
        // Layer 3: malloc's process instance over the engine: options, thread caches and the
        // fast paths, re-entry, the C rules, statistics and reports, the private-pool C API.
        .target(name: "BuddyMallocCore", dependencies: ["BuddyEngine", "CBuddySupport"], swiftSettings: allocatorSwiftSettings),
        // Layers 2 and 3 again, as one module in Embedded Swift, for the shared library: the
        // same files (its directory holds links to theirs: one copy of each), compiled without
        // the Swift runtime, so the library needs libc alone (README, "Limits": 10.6 MB with the
        // static runtime, libstdc++ and the unwinder linked in; /bin/true's page faults 243 ->
        // 147). One module, as Embedded Swift compiles a whole module at once (-wmo); Swift 5
        // mode, where the report table's key paths fold into constant offsets (Swift 6 rejects
        // key paths in Embedded Swift).
        .target(name: "BuddyMallocEmbedded", dependencies: ["CBuddySupport"],
                swiftSettings: allocatorSwiftSettings + [
                    .enableExperimentalFeature("Embedded"), .define("BUDDY_ONE_MODULE"), .unsafeFlags(["-wmo"]),
                    .swiftLanguageMode(.v5),
                ]),
        // Layer 4: the libc names. Only the shared library links it, so tests keep glibc's malloc.
        // Linked as Embedded Swift (no runtime libraries); --exclude-libs and the version script
        // keep every symbol but the exports out of the dynamic symbol table; -z nodelete keeps it
        // mapped after a dlclose.
        .target(
            name: "BuddyMallocExports",
            dependencies: ["BuddyMallocEmbedded"],
            linkerSettings: [.unsafeFlags([
                "-enable-experimental-feature", "Embedded", "-Xlinker", "--exclude-libs", "-Xlinker", "ALL",
                // Exactly the libc names and the project's own: see exports.map.
                "-Xlinker", "--version-script=\(Context.packageDirectory)/Sources/BuddyMallocExports/exports.map",
                // dlclose never unmaps the library: blocks it served stay live in the process,
                // and its thread-exit destructor and report thread run its code later.
                "-Xlinker", "-z", "-Xlinker", "nodelete",
            ])]
        ),
        // What the test targets share (paths, scratch folders under one per-run root removed at
        // exit, running programs, compiling C): a plain target, so it links no allocator module.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        // Engine tests: private pools over private arenas, exact addresses, seeded random runs.
        .testTarget(name: "BuddyCoreTests", dependencies: ["BuddyEngine", "BuddyMallocCore"]),
        // The built library in real programs under LD_PRELOAD (C drivers live in Tests/Programs).
        .testTarget(name: "PreloadTests", dependencies: ["TestSupport"]),
        // buddy-report: the report model, text, diff and SVG in a library (tested on the
        // fixtures in Tests/Fixtures/reports), and the command line over it.
        .target(name: "BuddyReportKit"),
        .executableTarget(
            name: "BuddyReport",
            dependencies: ["BuddyReportKit", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(name: "BuddyReportTests", dependencies: ["BuddyReportKit", "TestSupport"]),
        // Private pools: the Swift API over the engine (the C API is BuddyMallocCore/PoolAPI.swift),
        // its tests, and the design document's examples (section 9) ported to Swift; the C and
        // C++ examples in Examples/c build with pkg-config (tools/pkgconfig.sh) in the tests.
        .target(name: "BuddyPool", dependencies: ["BuddyEngine", "BuddyMallocCore"]),
        .testTarget(name: "BuddyPoolTests", dependencies: ["BuddyPool", "BuddyEngine", "BuddyMallocCore", "TestSupport"]),
        .executableTarget(name: "PoolExampleBasic", dependencies: ["BuddyPool"], path: "Examples/Basic"),
        .executableTarget(name: "PoolExampleThreads", dependencies: ["BuddyPool"], path: "Examples/Threads"),
        .executableTarget(name: "PoolExampleContainers", dependencies: ["BuddyPool"], path: "Examples/Containers"),
        .executableTarget(name: "PoolExampleReadme", dependencies: ["BuddyPool"], path: "Examples/Readme"),
    ]
)
