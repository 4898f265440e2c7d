import CBuddySupport
import Foundation
import Testing
@testable import BuddyEngine
@testable import BuddyMallocCore

/// Resident memory explained (Engine+Residency.swift):
///
///     used + cached + slabSpare + free == resident bytes of the segments (mincore)
///
/// and each part holds exactly the bytes of the blocks whose tags name it.
@Suite struct ResidencyTests {
    let page = Int(buddy_os_page_size())

    /// Resident bytes of the arena, from mincore directly (not through the walk's window).
    func mincoreBytes(_ arena: Arena) -> UInt64 {
        var vector = [UInt8](repeating: 0, count: arena.size / page)
        _ = mincore(arena.base, arena.size, &vector)
        return UInt64(vector.reduce(0) { $0 + Int($1 & 1) } * page)
    }

    func check(_ pool: BuddyEngine, _ arena: Arena, _ what: String) -> Residency {
        let r = pool.residency()
        #expect(r.used + r.cached + r.slabSpare + r.free == mincoreBytes(arena), "\(what): \(r)")
        #expect(r.metadata >= UInt64(page), "\(what): the pool's state is resident")
        return r
    }

    @Test func thePartsSumToTheResidentBytesAndNameWhoHoldsThem() throws {
        let arena = Arena(size: 1 << 23)
        var config = PoolConfig()
        config.maxBlock = 1 << 20
        config.maxPoolSize = arena.size
        config.slabs = true   // (the default release delay: freed pages stay resident)
        let pool = try #require(BuddyEngine.create(config, arena: arena.base, size: arena.size))
        defer { pool.destroy() }
        let before = check(pool, arena, "a new pool")
        #expect(before.used == 0 && before.cached == 0 && before.slabSpare == 0)

        // A 1 MiB block with its first four pages written: exactly those are the program's.
        let block = try #require(pool.allocate(order: pool.geometry.order(forSize: 1 << 20)))
        block.initializeMemory(as: UInt8.self, repeating: 1, count: 4 * page)
        var r = check(pool, arena, "one block")
        #expect(r.used == UInt64(4 * page))

        // Ten slab objects of 1.5 KiB, written whole (they straddle pages: counted byte for
        // byte, each page once); the slab's header and untouched objects are its spare.
        let code = pool.code(forSize: 1500, alignment: 16)
        #expect(code > pool.geometry.maxOrder, "1500 B is a slab class's")
        var objects: [UnsafeMutableRawPointer] = []
        for _ in 0..<10 {
            let p = try #require(pool.allocate(code: code, mayGrow: true))
            p.initializeMemory(as: UInt8.self, repeating: 2, count: pool.size(ofCode: code))
            objects.append(p)
        }
        r = check(pool, arena, "block and objects")
        let objectBytes = UInt64(10 * pool.size(ofCode: code))
        #expect(r.used == UInt64(4 * page) + objectBytes)
        #expect(r.slabSpare > 0, "the slab's header page is resident: \(r)")

        // The block freed: its written pages are free now, still resident (not given back yet).
        #expect(pool.release(block) == .released)
        r = check(pool, arena, "block freed")
        #expect(r.used == objectBytes)
        #expect(r.free >= UInt64(4 * page), "\(r)")

        // The objects freed: the slab's resident bytes are all spare (or free, if it went back).
        for p in objects { #expect(pool.release(p) == .released) }
        r = check(pool, arena, "all freed")
        #expect(r.used == 0 && r.cached == 0)
        expectInvariants(pool)
    }
}
