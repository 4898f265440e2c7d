// The design document's example 9.3 in Swift: containers whose memory comes from a pool.
// C++ plugs a PoolAllocator<T> into std::vector, std::list and std::map; Swift's own
// collections take no allocator, so the pool offers PoolArray (a growable array in one pool
// block), typed allocations for node-based structures, and scoped buffers.
//
//     swift run PoolExampleContainers
import BuddyPool

// MemoryPool pool(10 * 1024 * 1024);
let pool = try MemoryPool(.init(initialSize: 10 * 1024 * 1024))

// std::vector<int, PoolAllocator<int>>: 100 squares.
var vector = try PoolArray<Int>(pool: pool)
for i in 0..<100 { try vector.append(i * i) }
print("vector size: \(vector.count)")
print("vector capacity: \(vector.capacity)")
print("vector[99]: \(vector[99])")

// std::list<int, PoolAllocator<int>>: a linked list of 50 nodes, each a typed pool allocation.
struct Node {
    var value: Int
    var next: UnsafeMutablePointer<Node>?
}
var head: UnsafeMutablePointer<Node>? = nil
for i in (0..<50).reversed() {
    let node = try pool.allocate(Node.self)
    node.initialize(to: Node(value: i, next: head))
    head = node
}
var length = 0, sum = 0
var cursor = head
while let node = cursor {
    length += 1
    sum += node.pointee.value
    cursor = node.pointee.next
}
print("list size: \(length), sum \(sum)")

// std::map<int, double, ..., PoolAllocator<...>>: 30 keys, kept sorted in a PoolArray.
struct Entry {
    var key: Int
    var value: Double
}
var map = try PoolArray<Entry>(pool: pool)
func insert(_ key: Int, _ value: Double, into map: inout PoolArray<Entry>) throws(PoolError) {
    // Binary search for the key's place, then shift the tail up by one.
    var low = 0, high = map.count
    while low < high {
        let mid = (low + high) / 2
        if map[mid].key < key { low = mid + 1 } else { high = mid }
    }
    if low < map.count && map[low].key == key {
        map[low].value = value
        return
    }
    try map.append(Entry(key: key, value: value))
    var i = map.count - 1
    while i > low {
        map[i] = map[i - 1]
        i -= 1
    }
    map[low] = Entry(key: key, value: value)
}
for i in (0..<30).reversed() { try insert(i, Double(i) * 3.14, into: &map) }
print("map size: \(map.count), map[10] = \(map[10].value)")

// Elements may be noncopyable: the array destroys them when it goes away.
struct Resource: ~Copyable {
    let id: Int
    deinit { print("resource \(id) released") }
}
do {
    var resources = try PoolArray<Resource>(pool: pool)
    for id in 1...3 { try resources.append(Resource(id: id)) }
    resources.forEach { print("holding resource \($0.id)") }
}

// A scoped buffer: freed when the closure returns.
let total = try pool.withTemporaryBuffer(of: Int.self, capacity: 256) { buffer in
    for i in buffer.indices { buffer.initializeElement(at: i, to: i) }
    return buffer.reduce(0, +)
}
print("temporary buffer sum: \(total)")

// Free the list's nodes.
cursor = head
while let node = cursor {
    cursor = node.pointee.next
    node.deinitialize(count: 1)
    try pool.deallocate(node)
}

let stats = pool.stats
print("memory pool statistics:")
print("  total memory: \(stats.totalBytes) bytes")
print("  used memory: \(stats.usedBytes) bytes")
print("  free memory: \(stats.freeBytes) bytes")
print("  memory usage: \(stats.usagePercent)%")
print("  fragmentation: \(stats.fragmentationPercent)%")
