// swift_host: a Swift program (libswiftCore linked dynamically) that churns arrays,
// dictionaries, sets, strings, classes and tasks, and prints a digest that does not depend on
// the allocator. Run under LD_PRELOAD by Tests/PreloadTests/RealProgramTests.swift, where the
// preloaded library carries its own static Swift runtime.
//
// Swift sizes an Array's capacity from malloc_usable_size: every array here is filled up to its
// full capacity and read back, so a usable size that is not really usable corrupts the digest
// (or the heap). Any broken invariant prints "swift_host: ..." on stderr and exits 1.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

var failures = 0
func expect(_ ok: Bool, _ what: @autoclosure () -> String) {
    if !ok {
        failures += 1
        fputs("swift_host: \(what())\n", stderr)
    }
}

/// FNV-1a, fed with bytes and integers.
struct Digest {
    var value: UInt64 = 0xcbf2_9ce4_8422_2325
    mutating func add(_ byte: UInt8) { value = (value ^ UInt64(byte)) &* 0x100_0000_01b3 }
    mutating func add(_ n: Int) { withUnsafeBytes(of: n.littleEndian) { for b in $0 { add(b) } } }
    mutating func add(_ s: String) { for b in s.utf8 { add(b) }; add(0xff as UInt8) }
}

/// A deterministic generator (SplitMix64).
struct Generator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

final class Node {
    var value: Int
    var name: String
    var children: [Node] = []
    weak var parent: Node?
    init(value: Int, name: String) { self.value = value; self.name = name }
    func sum() -> Int { children.reduce(value) { $0 + $1.sum() } }
}

var digest = Digest()
var rng = Generator(state: 2024)

// 1. Arrays grown element by element, then filled to their full capacity.
for round in 0..<200 {
    var a: [Int] = []
    let n = 1 + rng.below(3000)
    for i in 0..<n {
        a.append(i &* 31 &+ round)
        expect(a.capacity >= a.count, "capacity \(a.capacity) < count \(a.count)")
    }
    while a.count < a.capacity { a.append(a.count &* 31 &+ round) }
    for (i, x) in a.enumerated() where x != i &* 31 &+ round {
        expect(false, "array element \(i) is \(x) after filling to capacity \(a.capacity)")
        break
    }
    digest.add(a[..<n].reduce(0, &+))
    var bytes: [UInt8] = []
    bytes.reserveCapacity(1 + rng.below(5000))
    let fill = bytes.capacity
    for i in 0..<fill { bytes.append(UInt8(truncatingIfNeeded: i &* 7)) }
    expect(bytes.count == fill && bytes.capacity == fill, "byte array grew past its reserved capacity")
    for i in stride(from: 0, to: fill, by: 1) where bytes[i] != UInt8(truncatingIfNeeded: i &* 7) {
        expect(false, "byte \(i) of \(fill) changed")
        break
    }
}

// 2. Dictionaries and sets of strings, iterated in sorted order.
for round in 0..<40 {
    var d: [String: [Int]] = [:]
    var s = Set<String>()
    for _ in 0..<2000 {
        let key = "k\(rng.below(5000))-" + String(repeating: "z", count: rng.below(40))
        d[key, default: []].append(rng.below(1000))
        s.insert(String(key.reversed()))
    }
    for key in d.keys.sorted().prefix(200) { digest.add(key); digest.add(d[key]!.reduce(0, +)) }
    digest.add(s.count)
    d = d.filter { $0.value.count > 1 }
    digest.add(d.count + round)
}

// 3. Strings: concatenation, splitting, unicode.
var text = ""
for i in 0..<20000 { text += i % 3 == 0 ? "añb\(i) " : "word\(i % 97) " }
let parts = text.split(separator: " ")
digest.add(parts.count)
digest.add(parts.map { $0.uppercased() }.joined(separator: ",").utf8.count)
digest.add(String(text.reversed().prefix(1000)))

// 4. Classes: a tree with weak parent links, built and dropped repeatedly.
for round in 0..<20 {
    let root = Node(value: round, name: "root")
    var all = [root]
    for i in 0..<5000 {
        let parent = all[rng.below(all.count)]
        let child = Node(value: i, name: "n\(i)")
        child.parent = parent
        parent.children.append(child)
        all.append(child)
    }
    digest.add(root.sum())
    digest.add(all[all.count - 1].parent?.name ?? "none")
}

// 5. Large buffers (beyond the 1 MiB largest block) and unsafe allocations with alignment.
for size in [1 << 20, (1 << 20) + 1, 3 << 20] {
    var big = [UInt8](repeating: 1, count: size)
    big[size - 1] = 2
    digest.add(big.reduce(0) { $0 &+ Int($1) })
}
for alignment in [16, 64, 4096] {
    let p = UnsafeMutableRawPointer.allocate(byteCount: 1000, alignment: alignment)
    expect(Int(bitPattern: p) % alignment == 0, "allocate(alignment: \(alignment)) misaligned")
    p.initializeMemory(as: UInt8.self, repeating: 9, count: 1000)
    p.deallocate()
}

// 6. Tasks on the concurrency runtime's threads.
let results = await withTaskGroup(of: Int.self) { group in
    for t in 0..<16 {
        group.addTask {
            var local: [String: Int] = [:]
            for i in 0..<5000 { local["t\(t)-\(i % 700)", default: 0] += i }
            return local.values.reduce(0, +) &+ local.count
        }
    }
    var all: [Int] = []
    for await r in group { all.append(r) }
    return all.sorted()
}
for r in results { digest.add(r) }

print("swift_host digest \(String(digest.value, radix: 16)) parts \(parts.count) tasks \(results.count)")
exit(failures == 0 ? 0 : 1)
