import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An external symbolizer found at run time: it turns addresses in a module into functions and,
/// where the module (or its separate debug file) has DWARF, source lines, inlined calls included.
public struct SymbolizerTool: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case llvm = "llvm-symbolizer"
        case elfutils = "eu-addr2line"
        case binutils = "addr2line"
    }

    public var kind: Kind
    public var path: String

    public init(kind: Kind, path: String) {
        self.kind = kind
        self.path = path
    }

    /// The tool named `name` (a command on PATH, or a path), or the first of llvm-symbolizer
    /// (also llvm-symbolizer-NN), eu-addr2line and addr2line on PATH.
    public static func find(_ name: String? = nil, path searchPath: String?) throws(ToolError) -> SymbolizerTool? {
        let directories = (searchPath ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":").map(String.init)
        func lookup(_ command: String) -> String? {
            if command.contains("/") { return FileManager.default.isExecutableFile(atPath: command) ? command : nil }
            return directories.lazy.map { ($0 as NSString).appendingPathComponent(command) }
                .first { FileManager.default.isExecutableFile(atPath: $0) }
        }
        if let name {
            guard let found = lookup(name) else { throw ToolError("--symbolizer \(name): not found (on PATH: \(directories.joined(separator: ":")))") }
            let base = (name as NSString).lastPathComponent
            let kind: Kind = base.contains("llvm-symbolizer") ? .llvm : base.contains("eu-addr2line") ? .elfutils
                : base.contains("addr2line") ? .binutils : .llvm
            return SymbolizerTool(kind: kind, path: found)
        }
        if let found = lookup("llvm-symbolizer") { return SymbolizerTool(kind: .llvm, path: found) }
        // Debian's llvm-NN packages install llvm-symbolizer-NN (the unversioned name comes with "llvm").
        for directory in directories {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            if let versioned = names.filter({ $0.hasPrefix("llvm-symbolizer-") && Int($0.dropFirst(16)) != nil })
                .max(by: { Int($0.dropFirst(16))! < Int($1.dropFirst(16))! }) {
                return SymbolizerTool(kind: .llvm, path: (directory as NSString).appendingPathComponent(versioned))
            }
        }
        if let found = lookup("eu-addr2line") { return SymbolizerTool(kind: .elfutils, path: found) }
        if let found = lookup("addr2line") { return SymbolizerTool(kind: .binutils, path: found) }
        return nil
    }

    /// The command line that symbolizes the addresses given on standard input, one per line.
    public func arguments(module: String) -> [String] {
        switch kind {
        case .llvm: return ["--obj=\(module)", "--inlines", "--functions=linkage", "--demangle"]
        case .elfutils, .binutils: return ["-e", module, "-f", "-i", "-C", "-a"]
        }
    }

    /// One source location of an answer: innermost (inlined) first.
    public struct Location: Sendable, Equatable {
        public var function: String?
        public var file: String?
        public var line: Int?
    }

    /// The tool's answer for `count` addresses, in order, or nil when it does not parse.
    public func parse(_ output: String, count: Int) -> [[Location]]? {
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var answers: [[Location]] = []
        switch kind {
        case .llvm:
            // For each address: pairs of lines (function, file:line:column), then an empty line.
            var current: [String] = []
            for line in lines {
                if line.isEmpty {
                    if !current.isEmpty { answers.append(Self.pairs(current)); current = [] }
                } else {
                    current.append(line)
                }
            }
            if !current.isEmpty { answers.append(Self.pairs(current)) }
        case .elfutils, .binutils:
            // For each address: the address ("0x000000000000121e", -a), then pairs as above.
            var current: [String]?
            for line in lines where !line.isEmpty {
                if line.hasPrefix("0x"), line.dropFirst(2).allSatisfy(\.isHexDigit) {
                    if let current { answers.append(Self.pairs(current)) }
                    current = []
                } else {
                    current?.append(line)
                }
            }
            if let current { answers.append(Self.pairs(current)) }
        }
        return answers.count == count ? answers : nil
    }

    static func pairs(_ lines: [String]) -> [Location] {
        var locations: [Location] = []
        var i = 0
        while i < lines.count {
            var function: String? = lines[i]
            // eu-addr2line: "xmalloc inlined at /src/leaky.c:12:15 in main".
            if let r = function!.range(of: " inlined at ") { function = String(function![..<r.lowerBound]) }
            if function == "??" || function!.isEmpty { function = nil }
            let (file, line) = i + 1 < lines.count ? Self.fileLine(lines[i + 1]) : (nil, nil)
            locations.append(Location(function: function, file: file, line: line))
            i += 2
        }
        return locations
    }

    /// "/src/a.c:12:7", "/src/a.c:12 (discriminator 3)", "??:0", "??:?" -> (file, line).
    static func fileLine(_ text: String) -> (String?, Int?) {
        var t = text
        if let r = t.range(of: " (discriminator") { t = String(t[..<r.lowerBound]) }
        var parts = t.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var numbers: [Int?] = []
        while parts.count > 1, numbers.count < 2, let last = parts.last, last == "?" || Int(last) != nil {
            numbers.insert(Int(last), at: 0)
            parts.removeLast()
        }
        let file = parts.joined(separator: ":")
        if file.isEmpty || file == "??" { return (nil, nil) }
        let line = numbers.first.flatMap { $0 }.flatMap { $0 > 0 ? $0 : nil }
        return (file, line)
    }
}

/// Symbolizes the frames of reports offline, after the program ran: for each module, its file on
/// disk is found (the report's path; a relative or bare program name from the current folder or
/// PATH; `--module` overrides), checked against the report (build-id when the report has one, else
/// the file's modification time against the process's start), and all its addresses go to one
/// call of the symbolizer. Answers are kept for the rest of the run. Without a symbolizer, or
/// where it knows nothing, the module's symbol table names the function; else the frame stays as
/// the report has it.
public final class Symbolizer {
    public struct Options: Sendable {
        /// A symbolizer by name or path; "none": symbol tables only; nil: the first one found.
        public var tool: String?
        /// A module as the report names it (or its last component) -> the file to read.
        public var modules: [String: String]
        /// PATH, for bare program names and for finding the symbolizer.
        public var searchPath: String?
        /// For programs the report names relative to their working directory ("./prog").
        public var currentDirectory: String
        /// Seconds one call of the symbolizer may take before it is stopped.
        public var timeout: Double

        public init(tool: String? = nil, modules: [String: String] = [:],
                    searchPath: String? = ProcessInfo.processInfo.environment["PATH"],
                    currentDirectory: String = FileManager.default.currentDirectoryPath, timeout: Double = 120) {
            self.tool = tool
            self.modules = modules
            self.searchPath = searchPath
            self.currentDirectory = currentDirectory
            self.timeout = timeout
        }
    }

    /// What the reports say about a module (the library's `modules` table, when it writes one).
    public struct ModuleFacts: Sendable, Equatable {
        public var path: String?
        public var buildID: String?
    }

    struct Module {
        var path: String
        var elf: ELFFile
    }

    struct Key: Hashable {
        var module: String
        var address: UInt64
    }

    public let options: Options
    /// The external tool used, or nil (symbol tables only).
    public let tool: SymbolizerTool?
    /// Facts by module name as the report writes it.
    var facts: [String: ModuleFacts]
    /// The latest start of the processes whose reports are symbolized (seconds since the epoch).
    var processStart: Double?
    private var modules: [String: Module?] = [:]
    private var answers: [Key: [SymbolizerTool.Location]] = [:]
    private var failedTools: Set<String> = []
    /// Problems found along the way (each once): a module not found or changed, a tool that failed.
    public private(set) var warnings: [String] = []
    /// How many times the external tool ran (one per module with new addresses).
    public private(set) var toolCalls = 0

    public init(options: Options = Options(), reports: [Report] = []) throws(ToolError) {
        self.options = options
        if options.tool == "none" {
            tool = nil
        } else {
            tool = try SymbolizerTool.find(options.tool, path: options.searchPath)
        }
        facts = [:]
        for report in reports {
            for module in report.modules {
                facts[module.name] = ModuleFacts(path: module.path, buildID: module.buildID?.lowercased())
            }
        }
        processStart = reports.compactMap { $0.time?.created }.max()
        if tool == nil && options.tool != "none" {
            warn("no symbolizer found (llvm-symbolizer, eu-addr2line or addr2line on PATH): function names come from the modules' symbol tables, without source lines")
        }
    }

    func warn(_ message: String) {
        if !warnings.contains(message) { warnings.append(message) }
    }

    /// Symbolizes every frame given in one go (one process per module), for `resolve` to find.
    public func prepare(_ frames: some Sequence<String>) {
        var wanted: [String: Set<UInt64>] = [:]
        for text in frames {
            guard let (module, lookup) = address(of: RawFrame(text), cut: !text.hasSuffix(")")), answers[Key(module: module.path, address: lookup)] == nil else { continue }
            wanted[module.path, default: []].insert(lookup)
        }
        for (path, addresses) in wanted.sorted(by: { $0.key < $1.key }) {
            symbolize(path: path, addresses: addresses.sorted())
        }
    }

    /// The frame symbolized: inlined functions first, then the function the address is in; the
    /// frame as the report has it when nothing is known.
    public func resolve(_ text: String) -> [SymbolizedFrame] {
        let raw = RawFrame(text)
        guard let (module, lookup) = address(of: raw, cut: !text.hasSuffix(")")) else { return [.unresolved(text)] }
        let key = Key(module: module.path, address: lookup)
        if answers[key] == nil { symbolize(path: module.path, addresses: [lookup]) }
        let reportModule = raw.module
        var frames: [SymbolizedFrame] = []
        let locations = answers[key] ?? []
        for (i, location) in locations.enumerated() where location.function != nil || location.file != nil {
            frames.append(SymbolizedFrame(function: location.function, file: location.file, line: location.line,
                                          module: reportModule, address: lookup + 1, raw: text, inlined: i < locations.count - 1))
        }
        if frames.isEmpty || frames.last?.function == nil {
            // The symbol table, when the tool knew nothing (or there is none).
            if let (name, offset) = module.elf.function(containing: lookup) {
                let frame = SymbolizedFrame(function: name, module: reportModule, address: lookup + 1, offsetInFunction: offset + 1, raw: text)
                if frames.isEmpty { frames = [frame] } else { frames[frames.count - 1].function = name }
            }
        }
        // A name+0xN frame whose name the tool did not improve on keeps the report's name.
        if case .symbol(let name, let offset, _) = raw, frames.isEmpty {
            return [SymbolizedFrame(function: name, module: reportModule, offsetInFunction: offset, raw: text)]
        }
        return frames.isEmpty ? [.unresolved(text)] : frames
    }

    /// Every frame of a stack, resolved.
    public func resolve(stack: [String]) -> [SymbolizedFrame] {
        prepare(stack)
        return stack.flatMap { resolve($0) }
    }

    // MARK: - Modules

    /// The file read for the module a frame names (the report's text of the frame), or nil when
    /// none was found or it is not ELF: for exports that describe the modules (pprof's mappings).
    public func file(of frameText: String) -> ELFFile? {
        switch RawFrame(frameText) {
        case .module(let path, _): return module(path)?.elf
        case .symbol(let name, _, let path):
            return (frameText.hasSuffix(")") ? module(path) : module(completing: path, symbol: name))?.elf
        default: return nil
        }
    }

    /// The module file and the address to look up (the byte before the return address, so that a
    /// call that ends a function is not taken for the next one).
    /// `cut`: a `name+0xN (MODULE` frame whose module path the library cut short.
    func address(of frame: RawFrame, cut: Bool = false) -> (Module, UInt64)? {
        switch frame {
        case .module(let path, let offset):
            guard let module = module(path) else { return nil }
            let address = module.elf.loadBase &+ offset
            return address > 0 ? (module, address - 1) : nil
        case .symbol(let name, let offset, let path):
            guard let module = cut ? module(completing: path, symbol: name) : module(path), let start = module.elf.address(of: name, offset: offset) else { return nil }
            let address = start &+ offset
            return address > 0 ? (module, address - 1) : nil
        default:
            return nil
        }
    }

    /// The module whose path begins with `prefix` and defines `symbol` (a frame cut short).
    func module(completing prefix: String, symbol: String) -> Module? {
        let key = prefix + "\u{0}" + symbol
        if let known = modules[key] { return known }
        var found: Module?
        if let given = options.modules[prefix] ?? options.modules[(prefix as NSString).lastPathComponent] {
            found = module(given)
        } else {
            let directory = (prefix as NSString).deletingLastPathComponent, start = (prefix as NSString).lastPathComponent
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
                .filter { $0.hasPrefix(start) }.sorted { ($0.count, $0) < ($1.count, $1) }
            for name in names {
                let path = (directory as NSString).appendingPathComponent(name)
                if let candidate = module(path), candidate.elf.address(of: symbol, offset: 0) != nil {
                    found = candidate
                    break
                }
            }
            if found == nil {
                warn("\(prefix)...: the report cut this module's path and no file in \(directory) that begins so defines \(symbol); its frames stay as recorded")
            }
        }
        modules[key] = .some(found)
        return found
    }

    func module(_ name: String) -> Module? {
        if let known = modules[name] { return known }
        let found = locate(name)
        modules[name] = .some(found)
        return found
    }

    /// Finds and checks the file of the module the report names `name`.
    func locate(_ name: String) -> Module? {
        let last = (name as NSString).lastPathComponent
        let fm = FileManager.default
        var candidates: [(String, String)] = []  // (path, how it was found)
        if let given = options.modules[name] ?? options.modules[last] {
            candidates.append((Self.absolute(given, options.currentDirectory), "--module"))
        } else {
            if let path = facts[name]?.path { candidates.append((path, "the report")) }
            if name.hasPrefix("/") {
                candidates.append((name, "the report"))
            } else if name.contains("/") {
                candidates.append((Self.absolute(name, options.currentDirectory), "the current folder"))
            } else {
                for directory in (options.searchPath ?? "").split(separator: ":") {
                    candidates.append(((String(directory) as NSString).appendingPathComponent(name), "PATH"))
                }
            }
        }
        guard let (path, how) = candidates.first(where: { fm.fileExists(atPath: $0.0) }) else {
            let hint = name.hasPrefix("/") ? "" : name.contains("/") ? " (a path relative to the program's working directory)" : " (not on PATH)"
            warn("\(name): not found\(hint); its frames stay as recorded; --module \(last)=PATH names its file")
            return nil
        }
        guard let elf = ELFFile(path: path) else {
            warn("\(path): not an ELF file this tool reads; its frames stay as recorded")
            return nil
        }
        if how != "--module", !name.hasPrefix("/"), how != "the report" {
            warn("\(name): taken to be \(path) (from \(how)); --module \(last)=PATH names another file")
        }
        if let expected = facts[name]?.buildID, !expected.isEmpty {
            if elf.buildID != expected {
                warn("\(path): not the file the program ran (build-id \(expected) in the report, \(elf.buildID ?? "none") on disk); its frames stay as recorded; --module \(last)=PATH names the right file")
                return nil
            }
        } else if let start = processStart,
                  let modified = (try? fm.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
                  modified.timeIntervalSince1970 > start + 1 {
            warn("\(path): changed since the program ran (modified \(Self.date(modified.timeIntervalSince1970)), the process started \(Self.date(start))): its frames may be named wrongly; the report has no build-id to check it")
        }
        return Module(path: path, elf: elf)
    }

    static func absolute(_ path: String, _ directory: String) -> String {
        let joined = path.hasPrefix("/") ? path : (directory as NSString).appendingPathComponent(path)
        return (joined as NSString).standardizingPath
    }

    static func date(_ seconds: Double) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss 'UTC'"
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }

    // MARK: - The external tool

    func symbolize(path: String, addresses: [UInt64]) {
        defer {
            // Whatever the tool did not answer is asked no more (the symbol table serves it).
            for a in addresses where answers[Key(module: path, address: a)] == nil { answers[Key(module: path, address: a)] = [] }
        }
        guard let tool, !addresses.isEmpty, !failedTools.contains(path) else { return }
        let input = addresses.map { "0x" + String($0, radix: 16) }.joined(separator: "\n") + "\n"
        toolCalls += 1
        guard let output = Self.execute([tool.path] + tool.arguments(module: path), input: input, timeout: options.timeout) else {
            failedTools.insert(path)
            warn("\(tool.path) failed on \(path); its frames are named from its symbol table")
            return
        }
        guard let parsed = tool.parse(output, count: addresses.count) else {
            failedTools.insert(path)
            warn("\(tool.path): an answer for \(path) this tool does not understand; its frames are named from its symbol table")
            return
        }
        for (address, locations) in zip(addresses, parsed) {
            answers[Key(module: path, address: address)] = locations
        }
    }

    /// Runs `argv` with `input` on its standard input; its standard output, or nil when it could
    /// not run, failed or took longer than `timeout` seconds. debuginfod is kept off (offline).
    static func execute(_ argv: [String], input: String, timeout: Double) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "DEBUGINFOD_URLS")
        environment.removeValue(forKey: "LD_PRELOAD")
        process.environment = environment
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        nonisolated(unsafe) let running = process
        // A tool that exits before reading everything must not kill this process with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        let writer = Thread {
            try? stdin.fileHandleForWriting.write(contentsOf: Data(input.utf8))
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        let timer = DispatchWorkItem { if running.isRunning { running.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        timer.cancel()
        while !writer.isFinished { usleep(1000) }
        guard process.terminationReason == .exit, process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
