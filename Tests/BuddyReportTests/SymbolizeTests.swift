import Foundation
import Testing
@testable import BuddyReportKit

/// Offline symbolization: frames as the library writes them, the symbolizers' answers, ELF files,
/// and real programs of Tests/Fixtures/programs (compiled with -g at test time).
@Suite struct SymbolizeTests {
    static var tools: [SymbolizerTool] {
        SymbolizerTool.Kind.allCases.compactMap { kind in
            Support.command(kind.rawValue).map { SymbolizerTool(kind: kind, path: $0) }
        }
    }

    @Test func framesAsTheLibraryWritesThem() {
        #expect(RawFrame("PyList_New+0x39 (/usr/lib/libpython3.11.so.1.0)") == .symbol(name: "PyList_New", offset: 0x39, module: "/usr/lib/libpython3.11.so.1.0"))
        #expect(RawFrame("/lib/x86_64-linux-gnu/libc.so.6+0x2724a") == .module(path: "/lib/x86_64-linux-gnu/libc.so.6", offset: 0x2724a))
        #expect(RawFrame("./leaky+0x11be") == .module(path: "./leaky", offset: 0x11be))
        #expect(RawFrame("git+0x28961c") == .module(path: "git", offset: 0x28961c))
        // A module path with "+" in it, and a C++ name.
        #expect(RawFrame("/usr/lib/libstdc++.so.6+0x10") == .module(path: "/usr/lib/libstdc++.so.6", offset: 0x10))
        #expect(RawFrame("_Znwm+0x1c (/usr/lib/x86_64-linux-gnu/libstdc++.so.6)") == .symbol(name: "_Znwm", offset: 0x1c, module: "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"))
        #expect(RawFrame("0x7f3a1c2000a0") == .address(0x7f3a_1c20_00a0))
        // Cut by the library's frame limit: the name and the beginning of the module's path, or
        // (the name itself cut) kept as text.
        #expect(RawFrame("_ZNSt6vectorIiSaIiEE17_M_realloc_insert+0x1c (/usr/lib/x86_64-linux-gn") == .symbol(name: "_ZNSt6vectorIiSaIiEE17_M_realloc_insert", offset: 0x1c, module: "/usr/lib/x86_64-linux-gn"))
        #expect(RawFrame("_ZNSt6vectorIiSaIiEE17_M_realloc_insertIJRKiEEEvN9__gnu_cxx17__normal_iteratorIPiS1_EEDp") == .unparsed("_ZNSt6vectorIiSaIiEE17_M_realloc_insertIJRKiEEEvN9__gnu_cxx17__normal_iteratorIPiS1_EEDp"))
        // Unresolved frames print as the report has them.
        #expect(SymbolizedFrame.unresolved("./leaky+0x11be").display == "./leaky+0x11be")
        #expect(SymbolizedFrame.unresolved("load_table+0x5c (/usr/local/bin/kvstore)").display == "load_table+0x5c (/usr/local/bin/kvstore)")
        #expect(SymbolizedFrame.unresolved("load_table+0x5c (/usr/local/bin/kvstore)").shortName == "load_table")
        #expect(SymbolizedFrame.unresolved("/usr/lib/libfoo.so.1+0x2a").shortName == "libfoo.so.1+0x2a")
    }

    /// The three tools' answers for the same addresses (recorded from real runs), inlined calls included.
    @Test func theToolsAnswers() throws {
        let llvm = """
        main
        /tmp/c/leaky.c:30:17

        xmalloc
        /tmp/c/leaky.c:6:15
        make_name
        /tmp/c/leaky.c:12:15
        main
        /tmp/c/leaky.c:28:20

        _start
        ??:0:0

        ??
        ??:0:0


        """
        let gnu = """
        0x000000000000121e
        main
        /tmp/c/leaky.c:30
        0x00000000000011bd
        xmalloc
        /tmp/c/leaky.c:6 (discriminator 2)
        make_name
        /tmp/c/leaky.c:12
        main
        /tmp/c/leaky.c:28
        0x00000000000010c0
        _start
        ??:?
        0x0000000000000005
        ??
        ??:0

        """
        let elfutils = """
        0x000000000000121e
        main
        /tmp/c/leaky.c:30:17
        0x00000000000011bd
        xmalloc inlined at /tmp/c/leaky.c:12:15 in main
        /tmp/c/leaky.c:6:15
        make_name
        /tmp/c/leaky.c:12:15
        main
        /tmp/c/leaky.c:28:20
        0x00000000000010c0
        _start
        ??:0
        0x0000000000000005
        ??
        ??:0

        """
        for (kind, output) in [(SymbolizerTool.Kind.llvm, llvm), (.binutils, gnu), (.elfutils, elfutils)] {
            let tool = SymbolizerTool(kind: kind, path: "/usr/bin/\(kind.rawValue)")
            let answers = try #require(tool.parse(output, count: 4), "\(kind)")
            #expect(answers[0] == [.init(function: "main", file: "/tmp/c/leaky.c", line: 30)])
            #expect(answers[1].map(\.function) == ["xmalloc", "make_name", "main"], "\(kind)")
            #expect(answers[1].map(\.line) == [6, 12, 28])
            #expect(answers[2] == [.init(function: "_start", file: nil, line: nil)])
            #expect(answers[3] == [.init(function: nil, file: nil, line: nil)])
            // A count that does not match is not taken for an answer.
            #expect(tool.parse(output, count: 5) == nil)
        }
    }

    /// Build-id, load base and symbols, checked against readelf and nm.
    @Test(.enabled(if: Support.compiler != nil && Support.command("readelf") != nil && Support.command("nm") != nil))
    func anELFFile() throws {
        let directory = try Support.temporaryDirectory()
        let pie = try Support.compile("sites", in: directory)
        let classic = try Support.compile("sites", in: directory, flags: ["-O1", "-no-pie"], output: directory.appendingPathComponent("sites-nopie").path)
        for (path, base) in [(pie, UInt64(0)), (classic, UInt64(0x400000))] {
            let elf = try #require(ELFFile(path: path))
            let notes = try Support.run([Support.command("readelf")!, "-n", path]).stdout
            let id = notes.split(separator: "\n").first { $0.contains("Build ID:") }.map { String($0.split(separator: " ").last!) }
            #expect(elf.buildID != nil && elf.buildID == id)
            #expect(elf.loadBase == base)
            let nm = try Support.run([Support.command("nm")!, path]).stdout
            let line = try #require(nm.split(separator: "\n").first { $0.hasSuffix(" make_name") })
            let value = try #require(UInt64(line.split(separator: " ")[0], radix: 16))
            #expect(elf.address(of: "make_name", offset: 4) == value)
            #expect(elf.function(containing: value + 4)?.name == "make_name")
            #expect(elf.function(containing: value + 4)?.offset == 4)
        }
        #expect(ELFFile(path: Support.fixture("python-exit.json")) == nil)
    }

    /// One frame of each form, through each symbolizer installed and through the symbol table alone.
    @Test(.enabled(if: Support.compiler != nil && Support.command("objdump") != nil))
    func framesOfAProgramGetNamesAndLines() throws {
        let directory = try Support.temporaryDirectory()
        let program = try Support.compile("sites", in: directory)
        let elf = try #require(ELFFile(path: program))
        let start = try #require(elf.symbols.first { $0.name == "make_name" && $0.defined }).value
        // The call of xmalloc in make_name: the return address is after it.
        let line = try Support.siteLine("make_name")
        let returnAddress = try #require(try Self.returnAddress(after: "xmalloc", in: "make_name", program: program))
        let frame = "\(program)+0x\(String(returnAddress - elf.loadBase, radix: 16))"
        let named = "make_name+0x\(String(returnAddress - start, radix: 16)) (\(program))"
        for tool in Self.tools {
            let symbolizer = try Symbolizer(options: .init(tool: tool.path))
            for text in [frame, named] {
                let frames = symbolizer.resolve(text)
                #expect(frames.last?.function == "make_name", "\(tool.kind) \(text)")
                #expect(frames.last?.file?.hasSuffix("sites.c") == true, "\(tool.kind)")
                #expect(frames.last?.line == line, "\(tool.kind)")
                #expect(frames.last?.display == "make_name (sites.c:\(line))")
            }
            #expect(symbolizer.warnings.isEmpty, "\(symbolizer.warnings)")
            // One call for both frames (same module), none for the second look.
            #expect(symbolizer.toolCalls == 1)
        }
        // No symbolizer: the symbol table names the function, with the offset from it.
        let tableOnly = try Symbolizer(options: .init(tool: "none"))
        #expect(tableOnly.resolve(frame).map(\.display) == ["make_name+0x\(String(returnAddress - start, radix: 16)) (sites)"])
        #expect(tableOnly.toolCalls == 0)
    }

    /// The return address of the call to `callee` in `caller`, from the disassembly (objdump), or nil.
    static func returnAddress(after callee: String, in caller: String, program: String) throws -> UInt64? {
        guard let objdump = Support.command("objdump") else { return nil }
        let text = try Support.run([objdump, "-d", "--no-show-raw-insn", program]).stdout
        var inCaller = false
        var sawCall = false
        for line in text.split(separator: "\n") {
            if line.hasSuffix(">:") { inCaller = line.hasSuffix("<\(caller)>:"); continue }
            guard inCaller else { continue }
            let address = UInt64(line.split(separator: ":")[0].trimmingCharacters(in: .whitespaces), radix: 16)
            if sawCall { return address }
            if line.contains("call") && line.contains("<\(callee)") { sawCall = true }
        }
        return nil
    }

    /// The program's file is found from the report's name: relative to the current folder, on
    /// PATH, or as --module says; one that is missing leaves its frames as they are, with a warning.
    @Test(.enabled(if: Support.compiler != nil))
    func findingTheModule() throws {
        let directory = try Support.temporaryDirectory()
        let program = try Support.compile("sites", in: directory)
        let elf = try #require(ELFFile(path: program))
        let start = try #require(elf.symbols.first { $0.name == "main" && $0.defined }).value
        let offset = "+0x\(String(start + 8 - elf.loadBase, radix: 16))"
        func resolved(_ frame: String, _ options: Symbolizer.Options) throws -> (String?, [String]) {
            let s = try Symbolizer(options: options)
            return (s.resolve(frame).last?.function, s.warnings)
        }
        var options = Symbolizer.Options(tool: "none", currentDirectory: directory.path)
        let (relative, notes) = try resolved("./sites" + offset, options)
        #expect(relative == "main")
        #expect(notes == ["./sites: taken to be \(program) (from the current folder); --module sites=PATH names another file"])
        options.searchPath = "/nonexistent:" + directory.path
        #expect(try resolved("sites" + offset, options).0 == "main")
        options.currentDirectory = "/"
        let (missing, warnings) = try resolved("./sites" + offset, options)
        #expect(missing == nil)
        #expect(warnings == ["./sites: not found (a path relative to the program's working directory); its frames stay as recorded; --module sites=PATH names its file"])
        options.modules = ["sites": program]
        let (given, none) = try resolved("./sites" + offset, options)
        #expect(given == "main" && none.isEmpty)
        // A name+0xN frame whose module path the library cut: the file that begins so and defines the name.
        let cut = "main+0x8 (\(directory.path)/si"
        #expect(try resolved(cut, Symbolizer.Options(tool: "none")).0 == "main")
        let (wrong, cutWarnings) = try resolved("no_such_function+0x8 (\(directory.path)/si", Symbolizer.Options(tool: "none"))
        #expect(wrong == "no_such_function")  // the report's name, nothing more
        #expect(cutWarnings.first?.contains("the report cut this module's path") == true)
    }

    /// A module whose build-id differs from the report's is not used; without a build-id in the
    /// report, a file changed after the process started is named in a warning.
    @Test(.enabled(if: Support.compiler != nil))
    func aChangedModule() throws {
        let directory = try Support.temporaryDirectory()
        let program = try Support.compile("sites", in: directory)
        let elf = try #require(ELFFile(path: program))
        let id = try #require(elf.buildID)
        let start = try #require(elf.symbols.first { $0.name == "main" && $0.defined }).value
        let frame = "\(program)+0x\(String(start + 8 - elf.loadBase, radix: 16))"
        func report(created: Double, buildID: String?) throws -> Report {
            let modules = buildID.map { #", "modules": [{ "name": "\#(program)", "build_id": "\#($0)" }]"# } ?? ""
            let json = #"{"format":"buddymalloc-report","version":1,"pid":1,"time":{"created":\#(created),"now":\#(created + 1),"uptime":1},"memory":{"reserved":0,"used":0,"free":0},"calls":{},"orders":[],"profile":{"sample_bytes":4096,"sites":[{"live_bytes":4096,"live_count":1,"frames":["\#(frame)"]}]}\#(modules)}"#
            return try ReportLoader.parse(Data(json.utf8), file: "test").documents[0].report
        }
        let now = Date().timeIntervalSince1970
        // The same build-id: named, no warning.
        var s = try Symbolizer(options: .init(tool: "none"), reports: [report(created: 1000, buildID: id.uppercased())])
        #expect(s.resolve(frame).last?.function == "main")
        #expect(s.warnings.isEmpty)
        // Another build-id: left as recorded.
        s = try Symbolizer(options: .init(tool: "none"), reports: [report(created: now, buildID: "00112233")])
        #expect(s.resolve(frame) == [.unresolved(frame)])
        #expect(s.warnings.count == 1 && s.warnings[0].hasPrefix("\(program): not the file the program ran (build-id 00112233 in the report, \(id) on disk)"))
        // No build-id, the file is newer than the process: named, with a warning.
        s = try Symbolizer(options: .init(tool: "none"), reports: [report(created: 1000, buildID: nil)])
        #expect(s.resolve(frame).last?.function == "main")
        #expect(s.warnings.count == 1 && s.warnings[0].contains("changed since the program ran"))
        // Older than the process: no warning.
        s = try Symbolizer(options: .init(tool: "none"), reports: [report(created: now + 60, buildID: nil)])
        _ = s.resolve(frame)
        #expect(s.warnings.isEmpty)
    }

    /// End to end: a program under the library; its sites' top frames are its functions and lines,
    /// the wrapper skipped (PIE and classic executables).
    @Test(.enabled(if: Support.canProfile, "needs cc and a libBuddyMalloc.so that writes JSON reports"),
          .timeLimit(.minutes(1)))
    func aRealProgramsSites() throws {
        let directory = try Support.temporaryDirectory()
        let classic = try Support.compile("sites", in: directory, flags: ["-O1", "-no-pie"], output: directory.appendingPathComponent("sites-nopie").path)
        for program in [try Support.compile("sites", in: directory), classic] {
            let document = try Support.profile(program, in: directory)
            let resolver = SiteResolver(symbolizer: try Symbolizer(), filter: FrameFilter())
            let sites = resolver.sites(document.report)
            func site(_ function: String) -> ResolvedSite? { sites.first { $0.topFrame?.function == function } }
            let names = try #require(site("make_name"), "\(sites.map { $0.topFrame?.display ?? "" })")
            #expect(names.topFrame?.line == (try Support.siteLine("make_name")))
            #expect(names.skipped.map(\.function) == ["xmalloc"])
            #expect(names.stack.dropFirst().prefix(2).map(\.function) == ["keep_names", "main"])
            #expect(site("keep_names")?.topFrame?.line == (try Support.siteLine("keep_names")))
            #expect(site("hold_big")?.topFrame?.line == (try Support.siteLine("hold_big")))
            #expect(site("churn") == nil)
            #expect(resolver.symbolizer?.warnings.filter { !$0.contains("changed since") } == [])
            // Without the default skips, xmalloc is the top frame.
            let plain = SiteResolver(symbolizer: resolver.symbolizer, filter: FrameFilter(defaults: false)).sites(document.report)
            #expect(plain.contains { $0.topFrame?.function == "xmalloc" && $0.topFrame?.line == (try? Support.siteLine("xmalloc")) })
        }
    }

    /// C++: operator new, std::vector and std::string allocate through the standard library's
    /// plumbing (inlined from /usr/include, or libstdc++'s _M_* members): the top frame is the
    /// program's line.
    @Test(.enabled(if: Support.canProfile && Support.command("c++", "g++", "clang++") != nil, "needs c++ and a libBuddyMalloc.so that writes JSON reports"),
          .timeLimit(.minutes(1)))
    func aCxxProgramsSites() throws {
        let directory = try Support.temporaryDirectory()
        let output = directory.appendingPathComponent("cxxsites").path
        let source = Support.programs.appendingPathComponent("cxxsites.cpp").path
        let built = try Support.run([Support.command("c++", "g++", "clang++")!, "-g", "-O1", "-o", output, source])
        #expect(built.status == 0, "\(built.stderr)")
        let document = try Support.profile(output, in: directory)
        let resolver = SiteResolver(symbolizer: try Symbolizer(), filter: FrameFilter())
        let sites = resolver.sites(document.report).filter { $0.topFrame?.file?.hasSuffix("cxxsites.cpp") == true }
        let lines = Set(sites.compactMap { $0.topFrame?.line })
        for label in ["new", "vector", "string"] {
            #expect(lines.contains(try Support.siteLine(label, in: "cxxsites.cpp")), "\(label): \(sites.map { $0.topFrame?.display ?? "" })")
        }
        #expect(sites.allSatisfy { $0.topFrame?.function == "make_node(int)" })
        #expect(sites.allSatisfy { $0.viaText.hasPrefix("operator new") })
        // Without the defaults, operator new is the top frame.
        let plain = SiteResolver(symbolizer: resolver.symbolizer, filter: FrameFilter(defaults: false)).sites(document.report)
        #expect(plain.contains { $0.topFrame?.function?.hasPrefix("operator new") == true })
    }

    /// run symbolizes the report of the program it started, whose file it knows ("./sites" from its folder).
    @Test(.enabled(if: Support.canProfile && Support.tool != nil), .timeLimit(.minutes(1)))
    func theRunCommand() throws {
        let directory = try Support.temporaryDirectory()
        _ = try Support.compile("sites", in: directory)
        let result = try Support.run([Support.tool!, "run", "--lib", Support.library!, "--set", "PROFILE_SAMPLE=16K", "--", "./sites"],
                                     directory: directory)
        #expect(result.status == 0)
        #expect(result.stderr.contains("make_name (sites.c:\(try Support.siteLine("make_name")))  [via xmalloc]"))
        #expect(!result.stderr.contains("warning"), "\(result.stderr)")
    }

    @Test(.enabled(if: Support.canProfile && Support.tool != nil), .timeLimit(.minutes(1)))
    func theShowCommand() throws {
        let directory = try Support.temporaryDirectory()
        let program = try Support.compile("sites", in: directory)
        let report = try Support.profile(program, in: directory).file
        let shown = try Support.runTool(["show", report])
        #expect(shown.status == 0)
        #expect(shown.stdout.contains("make_name (sites.c:\(try Support.siteLine("make_name")))  [via xmalloc]"))
        let raw = try Support.runTool(["show", "--no-symbolize", report])
        #expect(!raw.stdout.contains("make_name (sites.c"))
        #expect(raw.stdout.contains("\(program)+0x"))
        // Only the patterns given: xmalloc and make_name.
        let skipping = try Support.runTool(["show", "--no-default-skips", "--skip-frames", "xm*", "--skip-frames", "make_name", report])
        #expect(skipping.stdout.contains("keep_names (sites.c:\(try Support.siteLine("keep_names") + 1))  [via xmalloc, make_name]"))
        #expect(skipping.stdout.contains("keep_names (sites.c:\(try Support.siteLine("keep_names")))  [via xmalloc]"))
    }
}
