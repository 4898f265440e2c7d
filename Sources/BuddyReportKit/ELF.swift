import Foundation

/// What buddy-report needs from an ELF file (little-endian, 32 or 64 bits): its GNU build-id, the
/// address its first loadable segment is linked at (to turn a frame's offset from the load
/// address into an address in the file), and its symbol tables (.symtab, else .dynsym) for
/// `name+0xN` frames and for function names when no symbolizer is installed.
public struct ELFFile: Sendable {
    public struct Symbol: Sendable, Equatable {
        public var name: String
        public var value: UInt64
        public var size: UInt64
        /// Defined in this file (not an undefined import).
        public var defined: Bool
        public var isFunction: Bool
    }

    public var path: String
    /// The GNU build-id in lowercase hex (`readelf -n`), or nil.
    public var buildID: String?
    /// The first PT_LOAD's virtual address rounded down to the page: where `dladdr`'s `dli_fbase`
    /// sits in the file's addresses (0 for shared objects and PIE programs; 0x400000 for a
    /// classic x86-64 executable).
    public var loadBase: UInt64
    /// ET_EXEC (2) or ET_DYN (3).
    public var type: Int
    /// The first executable PT_LOAD (the code): its address, file offset and size in memory, as a
    /// process maps it (/proc/PID/maps: start = load address + vaddr, offset = offset), page-aligned.
    public var text: (vaddr: UInt64, offset: UInt64, size: UInt64)?
    /// Every symbol of .symtab and .dynsym with a name and a value (functions and objects).
    public var symbols: [Symbol]
    /// Functions only, sorted by address, for lookups by address.
    var functions: [Symbol]

    /// Reads the file; nil when it cannot be read or is not a little-endian ELF file.
    public init?(path: String, pageSize: UInt64 = 4096) {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else { return nil }
        self.init(data: data, path: path, pageSize: pageSize)
    }

    public init?(data: Data, path: String, pageSize: UInt64 = 4096) {
        self.path = path
        let bytes = ByteReader(data: data)
        guard data.count >= 52, bytes.u32(0) == 0x464c_457f /* \x7fELF */, bytes.u8(5) == 1 /* little-endian */ else { return nil }
        let is64 = bytes.u8(4) == 2
        guard is64 || bytes.u8(4) == 1, !is64 || data.count >= 64 else { return nil }
        type = Int(bytes.u16(16))
        let phoff = is64 ? bytes.u64(32) : UInt64(bytes.u32(28))
        let shoff = is64 ? bytes.u64(40) : UInt64(bytes.u32(32))
        let phentsize = UInt64(bytes.u16(is64 ? 54 : 42))
        let phnum = UInt64(bytes.u16(is64 ? 56 : 44))
        let shentsize = UInt64(bytes.u16(is64 ? 58 : 46))
        let shnum = UInt64(bytes.u16(is64 ? 60 : 48))

        // Program headers: the first PT_LOAD, and the build-id note.
        var firstLoad: UInt64?
        var buildID: String?
        for i in 0..<phnum {
            let ph = phoff + i * phentsize
            guard bytes.has(ph, is64 ? 56 : 32) else { break }
            let pType = bytes.u32(ph)
            let offset = is64 ? bytes.u64(ph + 8) : UInt64(bytes.u32(ph + 4))
            let vaddr = is64 ? bytes.u64(ph + 16) : UInt64(bytes.u32(ph + 8))
            let filesz = is64 ? bytes.u64(ph + 32) : UInt64(bytes.u32(ph + 16))
            let align = is64 ? bytes.u64(ph + 48) : UInt64(bytes.u32(ph + 28))
            if pType == 1 /* PT_LOAD */, firstLoad == nil { firstLoad = vaddr }
            let flags = is64 ? bytes.u32(ph + 4) : bytes.u32(ph + 24)
            if pType == 1, flags & 1 /* PF_X */ != 0, text == nil {
                let memsz = is64 ? bytes.u64(ph + 40) : UInt64(bytes.u32(ph + 20))
                let mask = ~(pageSize - 1)
                // The mapping starts at the page holding the segment's start.
                text = (vaddr & mask, offset & mask, memsz + (vaddr - (vaddr & mask)))
            }
            if pType == 4 /* PT_NOTE */, buildID == nil {
                buildID = Self.buildID(bytes, notes: offset, size: filesz, align: align == 8 ? 8 : 4)
            }
        }
        loadBase = (firstLoad ?? 0) & ~(pageSize - 1)

        // Section headers: .symtab and .dynsym (each linked to its string table).
        var symbols: [Symbol] = []
        var tables: [(type: UInt32, offset: UInt64, size: UInt64, entsize: UInt64, link: UInt64)] = []
        var sections: [(offset: UInt64, size: UInt64, type: UInt32)] = []
        for i in 0..<shnum {
            let sh = shoff + i * shentsize
            guard bytes.has(sh, is64 ? 64 : 40) else { break }
            let shType = bytes.u32(sh + 4)
            let offset = is64 ? bytes.u64(sh + 24) : UInt64(bytes.u32(sh + 16))
            let size = is64 ? bytes.u64(sh + 32) : UInt64(bytes.u32(sh + 20))
            let link = UInt64(bytes.u32(sh + (is64 ? 40 : 24)))
            let entsize = is64 ? bytes.u64(sh + 56) : UInt64(bytes.u32(sh + 36))
            sections.append((offset, size, shType))
            if shType == 2 /* SHT_SYMTAB */ || shType == 11 /* SHT_DYNSYM */ {
                tables.append((shType, offset, size, entsize, link))
            }
        }
        for table in tables {
            guard table.link < UInt64(sections.count), table.entsize > 0 else { continue }
            let strings = sections[Int(table.link)]
            guard strings.type != 8 /* SHT_NOBITS */, table.type != 8 else { continue }
            let count = table.size / table.entsize
            for k in 0..<count {
                let s = table.offset + k * table.entsize
                guard bytes.has(s, is64 ? 24 : 16) else { break }
                let nameOffset = UInt64(bytes.u32(s))
                let info = is64 ? bytes.u8(s + 4) : bytes.u8(s + 12)
                let shndx = is64 ? bytes.u16(s + 6) : bytes.u16(s + 14)
                let value = is64 ? bytes.u64(s + 8) : UInt64(bytes.u32(s + 4))
                let size = is64 ? bytes.u64(s + 16) : UInt64(bytes.u32(s + 8))
                let symType = info & 0xf
                guard nameOffset != 0, nameOffset < strings.size, symType == 1 || symType == 2 || symType == 10 else { continue }
                guard let name = bytes.cString(strings.offset + nameOffset, limit: strings.offset + strings.size), !name.isEmpty else { continue }
                symbols.append(Symbol(name: name, value: value, size: size, defined: shndx != 0, isFunction: symType != 1))
            }
        }
        self.buildID = buildID
        self.symbols = symbols
        functions = symbols.filter { $0.defined && $0.isFunction && $0.value != 0 }.sorted { ($0.value, $1.size) < ($1.value, $0.size) }
    }

    static func buildID(_ bytes: ByteReader, notes: UInt64, size: UInt64, align: UInt64) -> String? {
        var at = notes
        let end = notes + size
        func aligned(_ n: UInt64) -> UInt64 { (n + align - 1) & ~(align - 1) }
        while at + 12 <= end, bytes.has(at, 12) {
            let namesz = UInt64(bytes.u32(at)), descsz = UInt64(bytes.u32(at + 4)), type = bytes.u32(at + 8)
            let name = at + 12
            let desc = name + aligned(namesz)
            guard desc + descsz <= end, bytes.has(desc, Int(descsz)) else { return nil }
            if type == 3 /* NT_GNU_BUILD_ID */, namesz == 4, bytes.cString(name, limit: name + 4) == "GNU" {
                return (0..<descsz).map { String(format: "%02x", bytes.u8(desc + $0)) }.joined()
            }
            at = desc + aligned(descsz)
        }
        return nil
    }

    /// The address in the file of the defined symbol `name` whose extent holds `offset` bytes past
    /// its start (a `name+0xN` frame), or of the first one with that name.
    public func address(of name: String, offset: UInt64) -> UInt64? {
        let candidates = symbols.filter { $0.name == name && $0.defined && $0.value != 0 }
        return (candidates.first { offset < $0.size } ?? candidates.first)?.value
    }

    /// The function whose extent holds `address` (a symbol of size 0 holds everything up to the
    /// next one), with the offset from its start.
    public func function(containing address: UInt64) -> (name: String, offset: UInt64)? {
        // The last function starting at or below the address.
        var low = 0, high = functions.count
        while low < high {
            let mid = (low + high) / 2
            if functions[mid].value <= address { low = mid + 1 } else { high = mid }
        }
        var i = low - 1
        while i >= 0, i >= low - 32 {
            let f = functions[i]
            if address < f.value + max(f.size, 1) || f.size == 0 { return (f.name, address - f.value) }
            // A larger function that started before this one may still hold the address.
            if address - f.value > 1 << 20 { break }
            i -= 1
        }
        return nil
    }
}

/// Bounds-checked little-endian reads from a file's bytes (0 outside them).
struct ByteReader {
    let data: Data

    func has(_ at: UInt64, _ count: Int) -> Bool { at <= UInt64(data.count) && UInt64(data.count) - at >= UInt64(count) }

    func u8(_ at: UInt64) -> UInt8 { has(at, 1) ? data[data.startIndex + Int(at)] : 0 }

    func load<T: FixedWidthInteger>(_ at: UInt64, _ type: T.Type) -> T {
        guard has(at, MemoryLayout<T>.size) else { return 0 }
        return data.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: Int(at), as: T.self)) }
    }

    func u16(_ at: UInt64) -> UInt16 { load(at, UInt16.self) }
    func u32(_ at: UInt64) -> UInt32 { load(at, UInt32.self) }
    func u64(_ at: UInt64) -> UInt64 { load(at, UInt64.self) }

    func cString(_ at: UInt64, limit: UInt64) -> String? {
        guard at < limit, has(at, 1) else { return nil }
        let end = min(limit, UInt64(data.count))
        return data.withUnsafeBytes { raw -> String? in
            let start = Int(at)
            var stop = start
            while stop < Int(end), raw[stop] != 0 { stop += 1 }
            return String(decoding: UnsafeRawBufferPointer(rebasing: raw[start..<stop]), as: UTF8.self)
        }
    }
}
