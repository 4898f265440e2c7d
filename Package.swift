// swift-tools-version:6.0
import PackageDescription

// The allocator's Swift code is always optimized, in debug builds too: at -Onone, runtime type
// metadata is instantiated inside malloc, which calls operator new -> malloc with the pool lock
// held and deadlocks the host. Exclusivity checks call swift_beginAccess on every global access
// (21.9 vs 6.9 ns per malloc+free pair). See ../shared/FIELD-NOTES.md.
let allocatorSwiftSettings: [SwiftSetting] = [
    .unsafeFlags(["-O", "-enforce-exclusivity=unchecked"]),
]

let package = Package(
    name: "BuddyMalloc",
    products: [
        // libBuddyMalloc.so: LD_PRELOAD it, or link it, and the buddy pool is the process's malloc.
        .library(name: "BuddyMalloc", type: .dynamic, targets: ["BuddyMallocExports"]),
    ],
    targets: [
        // Layer 1: what Swift cannot say (initial-exec TLS, glibc's __libc_* names, OS calls).
        .target(name: "CBuddySupport"),
        // Layer 2 and 3: the engine and the C-semantics layer (one module, so the hot path inlines).
        .target(name: "BuddyCore", dependencies: ["CBuddySupport"], swiftSettings: allocatorSwiftSettings),
        // Layer 4: the libc names. Only the shared library links it, so tests keep glibc's malloc.
        // -static-stdlib: the library carries the Swift runtime it needs, so it preloads into any
        // program with no toolchain on the library path and installs no Swift crash handlers;
        // --exclude-libs and the version script keep the runtime's and the engine's symbols out of
        // the dynamic symbol table.
        .target(
            name: "BuddyMallocExports",
            dependencies: ["BuddyCore"],
            linkerSettings: [.unsafeFlags([
                "-static-stdlib", "-Xlinker", "--exclude-libs", "-Xlinker", "ALL",
                // Exactly the libc names and the project's own: see exports.map.
                "-Xlinker", "--version-script=\(Context.packageDirectory)/Sources/BuddyMallocExports/exports.map",
            ])]
        ),
        // Engine tests: private pools over private arenas, exact addresses, seeded random runs.
        .testTarget(name: "BuddyCoreTests", dependencies: ["BuddyCore"]),
        // The built library in real programs under LD_PRELOAD (C drivers live in Tests/Programs).
        .testTarget(name: "PreloadTests"),
    ]
)
