import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Allocator wrappers: functions that only pass a request on to malloc (and check it, count it or
/// round it). A site's innermost frames that match are skipped when its top frame is chosen, so
/// that `xmalloc` or `operator new` is not the answer to "who allocated this".
public struct FrameFilter: Sendable, Equatable {
    /// Shell patterns (fnmatch(3)): glibc's and common libraries' wrappers.
    public static let defaultPatterns: [String] = [
        // C: libc's own allocating helpers, and the x* family (git, gcc, binutils, gnulib, bash...).
        "malloc", "calloc", "realloc", "reallocarray", "strdup", "strndup", "__strdup", "__strndup",
        "xmalloc", "xcalloc", "xrealloc", "xzalloc", "xmallocz", "xmallocz_gently", "do_xmalloc", "xstrdup", "xstrndup",
        "xmemdup", "xmemdupz", "ximalloc", "xicalloc", "xirealloc", "xnmalloc", "xnrealloc", "x2nrealloc", "xreallocarray",
        "xcharalloc", "ximemdup*", "xmemdup0",
        // C++: operator new in every form (demangled, and mangled when nothing demangled it), the
        // standard allocators.
        "operator new*", "_Znwm*", "_Znam*", "_ZnwmSt11align_val_t*", "_ZnamSt11align_val_t*",
        "std::allocator<*>::allocate*", "std::__new_allocator<*>::allocate*", "__gnu_cxx::new_allocator<*>::allocate*",
        "std::allocator_traits<*>::allocate*", "std::_Vector_base<*>::_M_allocate*",
        // libstdc++'s internals (its members are _M_*: _M_create, _M_mutate, _M_realloc_insert...),
        // demangled and mangled, and everything inlined from the system's headers (/usr/include:
        // the containers' and strings' constructors, push_back, append...): the caller is the answer.
        "std::*::_M_*", "_ZNSt*_M_*", "_ZNKSt*_M_*", "/usr/include/*",
        // SQLite.
        "sqlite3Malloc*", "sqlite3_malloc*", "sqlite3Realloc*", "sqlite3_realloc*", "sqlite3DbMalloc*", "sqlite3DbRealloc*",
        "sqlite3DbStrDup", "sqlite3DbStrNDup", "sqlite3MemMalloc", "sqlite3MemRealloc", "dbMallocRawFinish", "sqlite3DbSpanDup",
        // CPython.
        "PyMem_*", "_PyMem_*", "PyObject_Malloc", "PyObject_Calloc", "PyObject_Realloc", "_PyObject_Malloc",
        "_PyObject_Calloc", "_PyObject_Realloc", "pymalloc_*", "_PyObject_GC_Alloc", "_PyObject_GC_Malloc", "_PyObject_GC_New*",
        "gc_alloc", "_PyObject_New*", "PyObject_GC_*", "_PyObject_GC_Link",
        // GLib.
        "g_malloc*", "g_try_malloc*", "g_realloc*", "g_try_realloc*", "g_slice_alloc*", "g_memdup*", "g_strdup*", "g_strndup",
        // Others often met: zlib's and OpenSSL's hooks.
        "zcalloc", "CRYPTO_malloc", "CRYPTO_zalloc", "CRYPTO_realloc", "CRYPTO_strdup",
    ]

    public var patterns: [String]

    public init(extra: [String] = [], defaults: Bool = true) {
        patterns = (defaults ? Self.defaultPatterns : []) + extra
    }

    /// Whether the frame is a wrapper: a pattern matches its function (as symbolized, or as the
    /// report names it), its source file, or the report's text of the frame.
    public func matches(_ frame: SymbolizedFrame) -> Bool {
        guard !patterns.isEmpty else { return false }
        var names = [frame.raw]
        if let file = frame.file { names.append(file) }
        if let function = frame.function {
            names.append(function)
            // "operator new(unsigned long)" and "std::vector<int>::push_back(int const&)": match
            // the name with and without its parameters.
            if let paren = function.firstIndex(of: "("), paren > function.startIndex { names.append(String(function[..<paren])) }
        }
        if case .symbol(let name, _, _) = RawFrame(frame.raw) { names.append(name) }
        return patterns.contains { pattern in names.contains { fnmatch(pattern, $0, 0) == 0 } }
    }
}

/// A report's site, its frames symbolized and its figures estimated.
public struct ResolvedSite {
    public var site: Report.Site
    /// Every frame, innermost first; one recorded frame may give several (inlined calls).
    public var frames: [SymbolizedFrame]
    /// The first frame that is not an allocator wrapper (the last frame if all of them are).
    public var top: Int
    public var estimate: SiteEstimate

    /// The wrappers skipped above the top frame.
    public var skipped: ArraySlice<SymbolizedFrame> { frames[..<top] }
    /// The frames from the top frame outwards.
    public var stack: ArraySlice<SymbolizedFrame> { frames[top...] }
    public var topFrame: SymbolizedFrame? { top < frames.count ? frames[top] : nil }

    /// The skipped wrappers, innermost first, short: "xmalloc", "operator new, std::vector<int>::_M_realloc_insert
    /// and 3 more" (names without their parameters; the same name once).
    public var viaText: String {
        var names: [String] = []
        for frame in skipped {
            var name = frame.function ?? frame.shortName
            if let paren = name.firstIndex(of: "("), paren > name.startIndex, !name.hasPrefix("(") { name = String(name[..<paren]) }
            name = Self.withoutTemplateArguments(name)
            if !names.contains(name) { names.append(name) }
        }
        let shown = names.prefix(3).joined(separator: ", ")
        return names.count > 3 ? shown + " and \(names.count - 3) more" : shown
    }

    /// "std::vector<int, std::allocator<int> >::_M_realloc_insert" -> "std::vector<>::_M_realloc_insert"
    /// ("operator<" and "operator<<" kept).
    static func withoutTemplateArguments(_ name: String) -> String {
        var out = ""
        var depth = 0
        for c in name {
            if c == "<" && !(out.hasSuffix("operator") || out.hasSuffix("operator<")) {
                if depth == 0 { out.append("<") }
                depth += 1
            } else if c == ">" && depth > 0 {
                depth -= 1
                if depth == 0 { out.append(">") }
            } else if depth == 0 {
                out.append(c)
            }
        }
        return out
    }
}

/// Turns sites and bad pointers into symbolized frames: the symbolizer (nil: the frames as the
/// report has them) and the wrapper patterns.
public struct SiteResolver {
    public var symbolizer: Symbolizer?
    public var filter: FrameFilter

    public init(symbolizer: Symbolizer? = nil, filter: FrameFilter = FrameFilter()) {
        self.symbolizer = symbolizer
        self.filter = filter
    }

    /// Frames as the report writes them, wrappers skipped with the default patterns.
    public static var raw: SiteResolver { SiteResolver() }

    /// Symbolizes every frame of the reports at once (one symbolizer call per module).
    public func prepare(_ reports: [Report]) {
        symbolizer?.prepare(reports.flatMap { r in r.sites.flatMap(\.frames) + r.badPointers.flatMap { $0.frames ?? [] } })
    }

    public func frames(_ stack: [String]) -> [SymbolizedFrame] {
        guard let symbolizer else { return stack.map(SymbolizedFrame.unresolved) }
        return symbolizer.resolve(stack: stack)
    }

    /// The index of the first frame that is not a wrapper.
    public func top(of frames: [SymbolizedFrame]) -> Int {
        guard !frames.isEmpty else { return 0 }
        return frames.firstIndex { !filter.matches($0) } ?? frames.count - 1
    }

    /// The report's sites, largest estimated live bytes first.
    public func sites(_ report: Report) -> [ResolvedSite] {
        prepare([report])
        let model = SamplingModel(report)
        return report.sites.sorted { $0.liveBytes > $1.liveBytes }.map { site in
            let frames = frames(site.frames)
            return ResolvedSite(site: site, frames: frames, top: top(of: frames), estimate: model.estimate(site))
        }
    }
}

// MARK: - Estimates

/// What the profile's figures say about a site, and how sure they are.
///
/// The library samples about one allocation per P bytes allocated (P = `sample_bytes`; a
/// countdown of bytes per thread): an allocation of s bytes is sampled with probability
/// min(1, s / P) and stands for max(s, P) bytes, so a site's `live_bytes` W is the
/// Horvitz-Thompson estimate of its live bytes. Blocks of P bytes or more are always sampled.
public struct SiteEstimate: Sendable, Equatable {
    public enum BlockMethod: String, Sendable, Equatable {
        /// The library's `live_blocks` (sum of max(s, P) / s over the live samples).
        case reported
        /// Every live sample stood for P bytes (blocks smaller than P): W / m, m the mean size of
        /// the process's live blocks smaller than P.
        case meanSize = "mean size"
        /// Some samples were blocks of P bytes or more (W > n x P): only bounds are known.
        case bounds
        /// One live sample of P bytes or more: one block, exactly.
        case exact
        /// No sampling period or no live samples: the live samples themselves.
        case samples
    }

    /// Estimated live bytes (W) and one standard error of it.
    public var liveBytes: Int
    public var liveBytesError: Int
    /// The live samples that may have stood for P bytes (n_s): the error is P x sqrt(n_s).
    public var smallSamples: Int
    /// Estimated live blocks, and the range they lie in when that is all that is known.
    public var liveBlocks: Int
    public var liveBlocksRange: ClosedRange<Int>?
    public var blockMethod: BlockMethod
    /// Live samples (n) and samples taken so far, freed ones included (when the report says).
    public var liveSamples: Int
    public var samples: Int?
    /// Estimated bytes allocated at the site so far.
    public var allocatedBytes: Int?
    /// W / the bytes the program holds (`memory.held`), and one standard error of it (the bytes'
    /// error over the same exact denominator).
    public var shareOfHeld: Double?
    public var shareOfHeldError: Double?
    /// W / the process's peak (`memory.peak_used`, thread caches included, + `oversize.peak_bytes`),
    /// when the report was written near the peak (used + cached + oversize bytes at least 90% of
    /// it): then the site's bytes now are its share of the peak. nil otherwise (an exit report's
    /// sites are what is left, not what made the peak).
    public var shareOfPeak: Double?
    public var shareOfPeakError: Double?

    /// "4.7% ±0.6%" of held (ASCII: "+-").
    public func shareText(ascii: Bool = false) -> String? {
        guard let share = shareOfHeld else { return nil }
        return Units.percent(share) + ((shareOfHeldError ?? 0) > 0 ? (ascii ? " +-" : " ±") + Units.percent(shareOfHeldError!) : "")
    }

    /// "4.6% ±0.6%" of the peak, when the report was written near it.
    public func peakShareText(ascii: Bool = false) -> String? {
        guard let share = shareOfPeak else { return nil }
        return Units.percent(share) + ((shareOfPeakError ?? 0) > 0 ? (ascii ? " +-" : " ±") + Units.percent(shareOfPeakError!) : "")
    }

    /// "20.0K blocks", "~14K blocks" or "14-19K blocks".
    public var blocksText: String {
        if let range = liveBlocksRange, range.lowerBound != range.upperBound {
            return "\(Units.count(range.lowerBound))-\(Units.count(range.upperBound))"
        }
        return (blockMethod == .meanSize || blockMethod == .reported ? "~" : "") + Units.count(liveBlocks)
    }

    /// "± 64K" (one standard error), or "" when the figure is exact (blocks of P or more only).
    public var errorText: String {
        liveBytesError > 0 ? "±" + Units.bytes(liveBytesError) : "exact"
    }
}

/// The report-wide figures the estimates use.
public struct SamplingModel: Sendable {
    /// P: one sample per this many bytes allocated; 0 when profiling was off.
    public var period: Int
    /// m: the mean requested size of the process's live blocks smaller than P (from the orders and
    /// slab classes, their block sizes times requested_total / allocated_total), or nil.
    public var meanSmallBlock: Double?
    public var held: Int
    /// The most the program had: the pool's peak used (thread caches included) plus the
    /// oversize blocks' peak (an upper bound when the two peaks were at different times).
    public var peak: Int
    /// The same figure at the report: used + cached + the oversize blocks' bytes.
    public var current: Int
    /// Whether the report was written near the peak (`current` at least 90% of it): then a
    /// site's live bytes now are its share of the peak.
    public var nearPeak: Bool { peak > 0 && Double(current) >= 0.9 * Double(peak) }

    public init(_ report: Report) {
        period = report.profile?.sampleBytes ?? 0
        held = report.memory.held
        current = report.memory.used + report.memory.cached + report.oversize.bytes
        peak = max(report.memory.peakUsed, report.memory.used + report.memory.cached) + max(report.oversize.peakBytes, report.oversize.bytes)
        var count = 0, bytes = 0
        for o in report.orders where o.blockSize < period && o.live > 0 {
            count += o.live
            bytes += o.liveBytes
        }
        for k in report.slabClasses where k.objectSize < period && k.live > 0 {
            count += k.live
            bytes += k.liveBytes
        }
        let requestedShare = 1 - min(max(report.memory.internalFragmentation, 0), 0.99)
        meanSmallBlock = count > 0 ? max(1, Double(bytes) / Double(count) * requestedShare) : nil
    }

    /// The site's estimates: bytes and their error, blocks, bytes allocated, and its shares of
    /// what the program held (and of the peak, near it), each with the bytes' error over the
    /// same exact denominator.
    public func estimate(_ site: Report.Site) -> SiteEstimate {
        var e = bytesAndBlocks(site)
        if held > 0 { e.shareOfHeldError = Double(e.liveBytesError) / Double(held) }
        if nearPeak {
            e.shareOfPeak = Double(e.liveBytes) / Double(peak)
            e.shareOfPeakError = Double(e.liveBytesError) / Double(peak)
        }
        return e
    }

    func bytesAndBlocks(_ site: Report.Site) -> SiteEstimate {
        let n = max(0, site.liveCount)
        let w = max(0, site.liveBytes)
        let p = period
        var e = SiteEstimate(liveBytes: w, liveBytesError: 0, smallSamples: 0, liveBlocks: n, liveBlocksRange: nil, blockMethod: .samples,
                             liveSamples: n, samples: site.samples, allocatedBytes: site.allocatedBytes,
                             shareOfHeld: held > 0 ? Double(w) / Double(held) : nil)
        guard p > 0, n > 0 else { return e }
        // W = n x P when every live sample stood for P bytes (blocks smaller than P); W > n x P
        // when at least one was a block of P bytes or more, which is exact: then at most n - 1
        // samples carry sampling error.
        let allSmall = w <= n * p
        let small = allSmall ? n : n - 1
        e.smallSamples = small
        e.liveBytesError = allSmall
            ? Int((Double(w) / Double(n).squareRoot()).rounded())
            : Int((Double(p) * Double(small).squareRoot()).rounded())
        if let reported = site.liveBlocks {
            e.liveBlocks = reported
            e.blockMethod = .reported
        } else if let m = meanSmallBlock {
            if allSmall {
                e.liveBlocks = max(n, Int((Double(w) / m).rounded()))
                e.blockMethod = .meanSize
            } else {
                let high = max(n, 1 + Int((Double(n - 1) * max(1, Double(p) / m)).rounded()))
                e.liveBlocks = n
                e.liveBlocksRange = high > n ? n...high : nil
                e.blockMethod = n == 1 ? .exact : .bounds
            }
        }
        if e.allocatedBytes == nil, let samples = site.samples, samples >= n {
            // Freed samples counted as P bytes each: exact for blocks below P, low for larger ones.
            e.allocatedBytes = w + (samples - n) * p
        }
        return e
    }
}

extension Units {
    /// 950, 14K, 1.2M (counts, powers of 1000).
    public static func count(_ n: Int) -> String {
        if n < 1000 { return "\(n)" }
        let units = ["K", "M", "G", "T"]
        var value = Double(n)
        var unit = -1
        while value >= 999.5 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return String(format: value < 9.95 ? "%.1f" : "%.0f", value) + units[unit]
    }
}

extension ReportDocument {
    /// The document with each site's and bad pointer's frames replaced by their symbolized text
    /// (wrappers skipped): for renderers that match or print frames as strings (diff).
    public func symbolized(_ resolver: SiteResolver) -> ReportDocument {
        var copy = self
        resolver.prepare([report])
        copy.report.profile?.sites = report.sites.map { site in
            var s = site
            let frames = resolver.frames(site.frames)
            s.frames = frames[resolver.top(of: frames)...].map(\.display)
            return s
        }
        copy.report.badPointers = report.badPointers.map { p in
            var q = p
            q.frames = p.frames.map { resolver.frames($0).map(\.display) }
            return q
        }
        return copy
    }
}
