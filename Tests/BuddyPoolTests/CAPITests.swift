import Foundation
import Testing
@testable import BuddyEngine
@testable import BuddyMallocCore

// The C API (buddy.h, BuddyMallocCore/PoolAPI.swift): called in-process through its Swift names, its
// structs checked against the header by a compiled C program, and the library used by real C
// programs built with pkg-config.

private let header = Support.packageRoot.appendingPathComponent("Sources/BuddyMallocAPI/include").path

/// A buddy_pool_config as buddy_pool_config_default() makes it.
private func defaultConfig() -> CPoolConfig {
    CPoolConfig(version: 1, threadSafe: 1, initialSize: 1 << 20, minBlock: 16, maxBlock: 1 << 20, maxSize: 0,
                growthFactor: 2.0, releaseDelay: 1.0, onError: 0, reserved: 0)
}

private func create(_ config: CPoolConfig) -> UnsafeMutableRawPointer? {
    withUnsafeBytes(of: config) { buddy_pool_create($0.baseAddress) }
}

/// Fills a stats struct of the current layout (version first).
private func stats(_ pool: UnsafeMutableRawPointer?, version: UInt32 = 1) -> (code: Int32, head: CPoolStatsHead, freeBlocks: [UInt64]) {
    let bytes = MemoryLayout<CPoolStatsHead>.stride + 8 * CPoolStatsHead.orders
    let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 8)
    defer { raw.deallocate() }
    raw.initializeMemory(as: UInt8.self, repeating: 0xEE, count: bytes)
    raw.storeBytes(of: version, as: UInt32.self)
    let code = buddy_pool_stats(pool, raw)
    let counts = (0..<CPoolStatsHead.orders).map { raw.load(fromByteOffset: MemoryLayout<CPoolStatsHead>.stride + 8 * $0, as: UInt64.self) }
    return (code, raw.load(as: CPoolStatsHead.self), counts)
}

@Suite("C API")
struct CAPITests {
    @Test("create with the defaults, allocate, owns, block size, free, destroy")
    func basics() throws {
        let pool = try #require(buddy_pool_create(nil))
        defer { buddy_pool_destroy(pool) }
        let p = try #require(buddy_pool_alloc(pool, 100, 0))
        #expect(buddy_pool_block_size(pool, p) == 128)
        #expect(buddy_pool_owns(pool, p) == 1 && buddy_pool_owns(pool, p + 16) == 0 && buddy_pool_owns(pool, nil) == 0)
        let aligned = try #require(buddy_pool_alloc(pool, 10, 4096))
        #expect(UInt(bitPattern: aligned) % 4096 == 0 && buddy_pool_block_size(pool, aligned) == 4096)
        #expect(buddy_pool_free(pool, p) == PoolCode.ok)
        #expect(buddy_pool_free(pool, aligned) == PoolCode.ok)
        #expect(buddy_pool_free(pool, nil) == PoolCode.ok)
        let s = stats(pool)
        #expect(s.code == 0 && s.head.version == 1 && s.head.totalBytes == 1 << 20 && s.head.allocatedBytes == 0)
        #expect(s.head.allocations == 2 && s.head.frees == 2 && s.head.segmentCount == 1)
        #expect(s.head.minBlock == 16 && s.head.maxBlock == 1 << 20 && s.head.largestFreeBlock == 1 << 20)
        buddy_pool_destroy(nil)
    }

    @Test("error codes: alignment, too large, pool full, NULL arguments; errno from buddy_pool_alloc")
    func errorCodes() throws {
        var config = defaultConfig()
        config.initialSize = 64 << 10
        config.maxBlock = 64 << 10
        config.maxSize = 64 << 10
        let pool = try #require(create(config))
        defer { buddy_pool_destroy(pool) }
        var result: UnsafeMutableRawPointer? = nil
        #expect(buddy_pool_alloc_ex(pool, 16, 3, &result) == PoolCode.invalidAlignment && result == nil)
        #expect(buddy_pool_alloc_ex(pool, 16, 128 << 10, &result) == PoolCode.invalidAlignment)
        #expect(buddy_pool_alloc_ex(pool, (64 << 10) + 1, 0, &result) == PoolCode.outOfMemory && result == nil)
        #expect(buddy_pool_alloc_ex(pool, 64 << 10, 0, &result) == PoolCode.ok && result != nil)
        var more: UnsafeMutableRawPointer? = nil
        #expect(buddy_pool_alloc_ex(pool, 16, 0, &more) == PoolCode.poolFull && more == nil)
        #expect(buddy_pool_alloc_ex(pool, 16, 0, nil) == PoolCode.invalidArgument)
        #expect(buddy_pool_alloc_ex(nil, 16, 0, &more) == PoolCode.invalidArgument)
        errno = 0
        #expect(buddy_pool_alloc(pool, 16, 0) == nil && errno == ENOMEM)
        errno = 0
        #expect(buddy_pool_alloc(pool, 16, 24) == nil && errno == EINVAL)
        #expect(buddy_pool_alloc(nil, 16, 0) == nil && errno == EINVAL)
        #expect(buddy_pool_free(nil, result) == PoolCode.invalidArgument)
        #expect(buddy_pool_reset(nil) == PoolCode.invalidArgument)
        #expect(stats(nil).code == PoolCode.invalidArgument)
        #expect(buddy_pool_report(pool, 1, 7) == PoolCode.invalidArgument)
        let s = stats(pool)
        #expect(s.head.failedAllocations == 6 && s.head.allocations == 1) // the NULL-argument calls count nothing
        #expect(buddy_pool_free(pool, result) == PoolCode.ok)
    }

    @Test("bad frees are refused and counted; the pools stay intact")
    func badFrees() throws {
        let a = try #require(buddy_pool_create(nil)), b = try #require(buddy_pool_create(nil))
        defer { buddy_pool_destroy(a); buddy_pool_destroy(b) }
        let p = try #require(buddy_pool_alloc(a, 64, 0))
        #expect(buddy_pool_free(b, p) == PoolCode.invalidPointer)     // another pool's
        #expect(buddy_pool_free(a, p + 16) == PoolCode.invalidPointer) // interior
        let foreign = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16)
        defer { foreign.deallocate() }
        #expect(buddy_pool_free(a, foreign) == PoolCode.invalidPointer) // malloc's
        #expect(buddy_pool_free(a, p) == PoolCode.ok)
        #expect(buddy_pool_free(a, p) == PoolCode.invalidPointer)      // double
        let sa = stats(a).head, sb = stats(b).head
        #expect(sa.invalidPointers == 2 && sa.doubleFrees == 1 && sb.invalidPointers == 1)
        for pool in [a, b] {
            let engine = pool.assumingMemoryBound(to: CPoolHandle.self).pointee.engine
            #expect(engine.checkInvariants() == nil)
        }
    }

    @Test("reset, growth, and the free-block counts add up")
    func resetAndGrowth() throws {
        var config = defaultConfig()
        config.initialSize = 64 << 10
        config.maxBlock = 64 << 10
        let pool = try #require(create(config))
        defer { buddy_pool_destroy(pool) }
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<6 { blocks.append(try #require(buddy_pool_alloc(pool, 40 << 10, 0))) }
        let grown = stats(pool)
        #expect(grown.head.segmentCount > 1 && grown.head.allocatedBytes == 6 * (64 << 10))
        let free = zip(grown.freeBlocks, 0...).reduce(UInt64(0)) { $0 + $1.0 * (16 << UInt64($1.1)) }
        #expect(free == grown.head.freeBytes, "free_blocks (with untouched tails as top blocks) add up to free_bytes")
        #expect(grown.freeBlocks[13...].allSatisfy { $0 == 0 }, "no counts above max_order")
        #expect(buddy_pool_reset(pool) == PoolCode.ok)
        let reset = stats(pool).head
        #expect(reset.segmentCount == 1 && reset.allocatedBytes == 0 && reset.totalBytes == 64 << 10)
        #expect(blocks.allSatisfy { buddy_pool_owns(pool, $0) == 0 })
    }

    @Test("stats versions: 0 and newer callers get version 1's layout, marked as such")
    func statsVersions() throws {
        let pool = try #require(buddy_pool_create(nil))
        defer { buddy_pool_destroy(pool) }
        for version: UInt32 in [0, 1, 2, 99] {
            let s = stats(pool, version: version)
            #expect(s.code == PoolCode.ok && s.head.version == 1 && s.head.totalBytes == 1 << 20)
        }
    }

    @Test("the configuration is checked: NULL with EINVAL, and the reason")
    func invalidConfig() throws {
        var config = defaultConfig()
        config.minBlock = 24
        errno = 0
        #expect(create(config) == nil && errno == EINVAL)
        let problem = withUnsafeBytes(of: config) { buddy_pool_config_problem($0.baseAddress) }
        #expect(problem.map { String(cString: $0) } == "minimum block must be a power of two >= 16")
        config = defaultConfig()
        config.version = 2
        #expect(create(config) == nil)
        config = defaultConfig()
        config.onError = 3
        #expect(create(config) == nil)
        config = defaultConfig()
        config.maxSize = 4096
        #expect(withUnsafeBytes(of: config) { buddy_pool_config_problem($0.baseAddress) }.map { String(cString: $0) }?.contains("maximum pool size") == true)
        #expect(withUnsafeBytes(of: defaultConfig()) { buddy_pool_config_problem($0.baseAddress) } == nil)
    }

    @Test("the report is the library's text report")
    func report() throws {
        let pool = try #require(buddy_pool_create(nil))
        defer { buddy_pool_destroy(pool) }
        _ = buddy_pool_alloc(pool, 100, 0)
        let file = try #require(tmpfile())
        defer { fclose(file) }
        #expect(buddy_pool_report(pool, fileno(file), 0) == PoolCode.ok)
        lseek(fileno(file), 0, SEEK_SET)
        var bytes = [UInt8](repeating: 0, count: 8192)
        let n = read(fileno(file), &bytes, bytes.count)
        let text = String(decoding: bytes[0..<max(n, 0)], as: UTF8.self)
        #expect(text.hasPrefix("BuddyMalloc report") && text.contains("1.0M in 1 segments"), "\(text)")
        #expect(text.contains("errors      invalid pointers 0, double frees 0"), "\(text)")
    }

    @Test("on_error = BUDDY_ON_ERROR_LOG writes one line per error on stderr")
    func onErrorLog() async throws {
        let result = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
            var config = CPoolConfig(version: 1, threadSafe: 1, initialSize: 1 << 20, minBlock: 16, maxBlock: 1 << 20,
                                     maxSize: 0, growthFactor: 2.0, releaseDelay: 1.0, onError: 1, reserved: 0)
            let pool = withUnsafeBytes(of: &config) { buddy_pool_create($0.baseAddress) }!
            _ = buddy_pool_alloc(pool, 16, 12)
            _ = buddy_pool_alloc(pool, 2 << 20, 0)
            let p = buddy_pool_alloc(pool, 16, 0)!
            _ = buddy_pool_free(pool, p)
            _ = buddy_pool_free(pool, p)
            config.minBlock = 8
            _ = withUnsafeBytes(of: &config) { buddy_pool_create($0.baseAddress) }
        }
        let text = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.count == 4, "\(text)")
        #expect(lines.first?.hasPrefix("buddy: buddy_pool_alloc(): invalid alignment 12: use 0 or a power of two") == true, "\(text)")
        #expect(text.contains("buddy: buddy_pool_alloc(): out of memory: 2097152 bytes is more than the pool's largest block (1.0M); raise max_block"), "\(text)")
        #expect(text.contains("buddy: buddy_pool_free(): double free of 0x"), "\(text)")
        #expect(text.contains("buddy: buddy_pool_create(): minimum block must be a power of two >= 16"), "\(text)")
    }

    @Test("on_error = BUDDY_ON_ERROR_ABORT aborts on the first error")
    func onErrorAbort() async throws {
        let result = await #expect(processExitsWith: .signal(SIGABRT), observing: [\.standardErrorContent]) {
            var config = CPoolConfig(version: 1, threadSafe: 1, initialSize: 1 << 20, minBlock: 16, maxBlock: 1 << 20,
                                     maxSize: 0, growthFactor: 2.0, releaseDelay: 1.0, onError: 2, reserved: 0)
            let pool = withUnsafeBytes(of: &config) { buddy_pool_create($0.baseAddress) }!
            let p = buddy_pool_alloc(pool, 16, 0)!
            _ = buddy_pool_free(pool, p + 8) // inside the block
        }
        let text = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(text.contains("buddy: buddy_pool_free(): invalid pointer 0x") && text.contains("; aborting (on_error = BUDDY_ON_ERROR_ABORT)"), "\(text)")
    }

    @Test("threads on one C pool")
    func threads() throws {
        let pool = try #require(buddy_pool_create(nil))
        defer { buddy_pool_destroy(pool) }
        let address = UInt(bitPattern: pool)
        onThreads(4) { thread in
            let pool = UnsafeMutableRawPointer(bitPattern: address)
            var random = SplitMix64(state: UInt64(thread))
            var live: [UnsafeMutableRawPointer] = []
            for _ in 0..<3000 {
                if let p = buddy_pool_alloc(pool, Int.random(in: 1...2000, using: &random), 0) { live.append(p) }
                if live.count > 50 { _ = buddy_pool_free(pool, live.removeFirst()) }
            }
            for p in live { _ = buddy_pool_free(pool, p) }
        }
        let s = stats(pool).head
        #expect(s.allocatedBytes == 0 && s.allocations == 12000 && s.frees == 12000 && s.invalidPointers == 0)
        #expect(pool.assumingMemoryBound(to: CPoolHandle.self).pointee.engine.checkInvariants() == nil)
    }

    @Test("buddy.h's structs, constants and defaults match the Swift side")
    func headerMatches() throws {
        let folder = try Support.temporaryDirectory()
        let source = folder.appendingPathComponent("layout.c")
        try """
        #include <buddy.h>
        #include <stddef.h>
        #include <stdio.h>
        #define CFIELD(field) printf("config." #field " %zu\\n", offsetof(buddy_pool_config, field))
        #define SFIELD(field) printf("stats." #field " %zu\\n", offsetof(struct buddy_pool_stats, field))
        int main(void) {
            printf("config_size %zu\\n", sizeof(buddy_pool_config));
            CFIELD(version); CFIELD(thread_safe); CFIELD(initial_size); CFIELD(min_block); CFIELD(max_block);
            CFIELD(max_size); CFIELD(growth_factor); CFIELD(release_delay); CFIELD(on_error);
            printf("stats_size %zu\\n", sizeof(struct buddy_pool_stats));
            SFIELD(segment_count); SFIELD(total_bytes); SFIELD(double_frees); SFIELD(max_block); SFIELD(free_blocks);
            printf("orders %d\\n", BUDDY_POOL_ORDERS);
            printf("codes %d %d %d %d %d %d\\n", BUDDY_OK, BUDDY_OUT_OF_MEMORY, BUDDY_INVALID_POINTER, BUDDY_POOL_FULL,
                   BUDDY_INVALID_ALIGNMENT, BUDDY_INVALID_ARGUMENT);
            buddy_pool_config c = buddy_pool_config_default();
            printf("defaults %u %d %zu %zu %zu %zu %g %g %d\\n", c.version, c.thread_safe, c.initial_size, c.min_block,
                   c.max_block, c.max_size, c.growth_factor, c.release_delay, c.on_error);
            printf("strerror %s\\n", buddy_pool_strerror(BUDDY_POOL_FULL));
            return 0;
        }
        """.write(to: source, atomically: true, encoding: .utf8)
        let binary = folder.appendingPathComponent("layout").path
        for compiler in [["gcc", "-std=c11", "-x", "c"], ["g++", "-std=c++17", "-x", "c++"]] {
            let build = try Support.run(compiler + ["-Wall", "-Wextra", "-Werror", "-I", header, "-o", binary, source.path])
            try #require(build.status == 0, "\(compiler[0]): \(build.output)")
            let output = try Support.run([binary]).stdout
            func value(_ key: String) -> String? {
                output.split(separator: "\n").first { $0.hasPrefix(key + " ") }.map { String($0.dropFirst(key.count + 1)) }
            }
            typealias C = CPoolConfig
            typealias S = CPoolStatsHead
            #expect(value("config_size") == "\(MemoryLayout<C>.size)")
            #expect(value("config.version") == "\(MemoryLayout<C>.offset(of: \.version)!)")
            #expect(value("config.thread_safe") == "\(MemoryLayout<C>.offset(of: \.threadSafe)!)")
            #expect(value("config.initial_size") == "\(MemoryLayout<C>.offset(of: \.initialSize)!)")
            #expect(value("config.min_block") == "\(MemoryLayout<C>.offset(of: \.minBlock)!)")
            #expect(value("config.max_block") == "\(MemoryLayout<C>.offset(of: \.maxBlock)!)")
            #expect(value("config.max_size") == "\(MemoryLayout<C>.offset(of: \.maxSize)!)")
            #expect(value("config.growth_factor") == "\(MemoryLayout<C>.offset(of: \.growthFactor)!)")
            #expect(value("config.release_delay") == "\(MemoryLayout<C>.offset(of: \.releaseDelay)!)")
            #expect(value("config.on_error") == "\(MemoryLayout<C>.offset(of: \.onError)!)")
            #expect(value("stats.segment_count") == "\(MemoryLayout<S>.offset(of: \.segmentCount)!)")
            #expect(value("stats.total_bytes") == "\(MemoryLayout<S>.offset(of: \.totalBytes)!)")
            #expect(value("stats.double_frees") == "\(MemoryLayout<S>.offset(of: \.doubleFrees)!)")
            #expect(value("stats.max_block") == "\(MemoryLayout<S>.offset(of: \.maxBlock)!)")
            #expect(value("stats.free_blocks") == "\(MemoryLayout<S>.stride)")
            #expect(value("stats_size") == "\(MemoryLayout<S>.stride + 8 * S.orders)")
            #expect(value("orders") == "\(S.orders)" && S.orders == Geometry.orderLimit + 1)
            #expect(value("codes") == "0 1 2 3 4 5")
            #expect(PoolCode.outOfMemory == 1 && PoolCode.invalidPointer == 2 && PoolCode.poolFull == 3 && PoolCode.invalidAlignment == 4)
            // buddy_pool_config_default() is the engine's default configuration.
            let e = PoolConfig()
            #expect(value("defaults") == "1 1 \(e.initialSize) \(e.minBlock) \(e.maxBlock) \(e.maxPoolSize) \(e.growthFactor == 2 ? "2" : "?") \(e.releaseDelay == 1 ? "1" : "?") 0")
            #expect(value("strerror")?.contains("raise max_size") == true)
        }
    }
}
