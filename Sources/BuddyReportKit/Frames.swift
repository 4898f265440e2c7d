import Foundation

/// One frame of a site or a bad pointer, as the library records it: a return address, written
/// with `dladdr` at the time of the call without allocating, so without debug information.
///
///     name+0xN (MODULE)   the nearest dynamic symbol and the offset from it (exported functions)
///     MODULE+0xN          the offset from the module's load address (static functions, stripped
///                         programs, programs not linked with -rdynamic)
///     0xADDRESS           no module mapped there
///
/// MODULE is the path the dynamic loader has (for the program itself: its argv[0], which may be
/// relative, "./prog", or a bare name found on PATH, "git").
public enum RawFrame: Hashable, Sendable {
    case symbol(name: String, offset: UInt64, module: String)
    case module(path: String, offset: UInt64)
    case address(UInt64)
    /// Text this reader does not understand (a frame cut by the library's 112-byte limit).
    case unparsed(String)

    public init(_ text: String) {
        let t = text.trimmingCharacters(in: .whitespaces)
        // "name+0xN (module)"
        if t.hasSuffix(")"), let open = t.range(of: " (", options: .backwards) {
            let head = t[..<open.lowerBound]
            let module = String(t[open.upperBound..<t.index(before: t.endIndex)])
            if let plus = head.range(of: "+0x", options: .backwards), let offset = UInt64(head[plus.upperBound...], radix: 16),
               !module.isEmpty {
                self = .symbol(name: String(head[..<plus.lowerBound]), offset: offset, module: module)
                return
            }
        }
        // "name+0xN (/usr/lib/x86_64-linux-gn": a long C++ name cut by the library's frame limit,
        // with part of the module's path (the symbolizer looks for the file it begins).
        if let open = t.range(of: " (/", options: .backwards), !t.hasSuffix(")") {
            let head = t[..<open.lowerBound]
            if let plus = head.range(of: "+0x", options: .backwards), let offset = UInt64(head[plus.upperBound...], radix: 16) {
                self = .symbol(name: String(head[..<plus.lowerBound]), offset: offset, module: String(t[t.index(after: open.lowerBound)...].dropFirst()))
                return
            }
        }
        // "module+0xN"
        if let plus = t.range(of: "+0x", options: .backwards), let offset = UInt64(t[plus.upperBound...], radix: 16),
           plus.lowerBound > t.startIndex {
            self = .module(path: String(t[..<plus.lowerBound]), offset: offset)
            return
        }
        if t.hasPrefix("0x"), let address = UInt64(t.dropFirst(2), radix: 16) {
            self = .address(address)
            return
        }
        self = .unparsed(t)
    }

    /// The module's path as the report has it, if the frame names one.
    public var module: String? {
        switch self {
        case .symbol(_, _, let module): return module
        case .module(let path, _): return path
        default: return nil
        }
    }
}

/// A frame after symbolization: the function, and the source line where debug information says.
/// One recorded frame may give several of these: functions inlined at the return address come
/// first (innermost), then the function the address is in.
public struct SymbolizedFrame: Hashable, Sendable, Codable {
    /// The function's name, demangled; nil when nothing knows it.
    public var function: String?
    /// The source file and line of the call, where DWARF says.
    public var file: String?
    public var line: Int?
    /// The module's path as the report names it.
    public var module: String?
    /// The offset of the return address in the module (what the symbolizer was asked about, plus one).
    public var address: UInt64?
    /// The return address's offset from the function's start, when only a symbol table named it.
    public var offsetInFunction: UInt64?
    /// The frame as the report has it.
    public var raw: String
    /// This function was inlined into the next frame (the same recorded address).
    public var inlined: Bool

    public init(function: String? = nil, file: String? = nil, line: Int? = nil, module: String? = nil,
                address: UInt64? = nil, offsetInFunction: UInt64? = nil, raw: String, inlined: Bool = false) {
        self.function = function
        self.file = file
        self.line = line
        self.module = module
        self.address = address
        self.offsetInFunction = offsetInFunction
        self.raw = raw
        self.inlined = inlined
    }

    /// The frame as the report had it, nothing added.
    public static func unresolved(_ raw: String) -> SymbolizedFrame {
        let parsed = RawFrame(raw)
        switch parsed {
        case .symbol(let name, let offset, let module):
            return SymbolizedFrame(function: name, module: module, offsetInFunction: offset, raw: raw)
        default: return SymbolizedFrame(module: parsed.module, raw: raw)
        }
    }

    /// Whether a symbolizer added anything (a function the report did not name, or a source line).
    public var isSymbolized: Bool {
        if file != nil { return true }
        guard let function else { return false }
        if case .symbol(let name, _, _) = RawFrame(raw) { return name != function }
        return true
    }

    /// "file.c:12" (the file's last component), or nil.
    public var location: String? {
        guard let file else { return nil }
        let name = (file as NSString).lastPathComponent
        return line.map { "\(name):\($0)" } ?? name
    }

    /// For people: "make_name (leaky.c:12)"; without a line "helper+0x1c (libfoo.so)" (a symbol
    /// table's name and the offset from it) or "helper (libfoo.so)"; a frame nothing added to:
    /// the report's text as it is.
    public var display: String {
        guard let function, isSymbolized else { return raw }
        if let location { return "\(function) (\(location))\(inlined ? " [inlined]" : "")" }
        if let offsetInFunction { return "\(function)+0x\(String(offsetInFunction, radix: 16)) (\(Self.shortModule(module)))" }
        return "\(function) (\(Self.shortModule(module)))\(inlined ? " [inlined]" : "")"
    }

    /// A short name for one frame of a flame graph or a collapsed stack: the function, or
    /// "module+0xN" (the module's last component).
    public var shortName: String {
        if let function { return function }
        return Self.shorten(raw)
    }

    static func shortModule(_ module: String?) -> String {
        guard let module else { return "?" }
        return (module as NSString).lastPathComponent
    }

    /// The report's text with the module's folders left out: "/usr/lib/x/libc.so.6+0x2724a" ->
    /// "libc.so.6+0x2724a", "PyList_New+0x39 (/usr/lib/libpython3.11.so)" -> "PyList_New+0x39 (libpython3.11.so)".
    static func shorten(_ raw: String) -> String {
        switch RawFrame(raw) {
        case .symbol(let name, let offset, let module):
            return "\(name)+0x\(String(offset, radix: 16)) (\(shortModule(module)))"
        case .module(let path, let offset):
            return "\(shortModule(path))+0x\(String(offset, radix: 16))"
        default:
            return raw
        }
    }
}
