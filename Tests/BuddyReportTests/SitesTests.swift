import Foundation
import Testing
@testable import BuddyReportKit

/// Allocator-wrapper skipping and the per-site estimates.
@Suite struct SitesTests {
    func frame(_ function: String?, raw: String = "prog+0x10") -> SymbolizedFrame {
        SymbolizedFrame(function: function, file: function == nil ? nil : "/src/a.c", line: 1, module: "prog", raw: raw)
    }

    @Test func theDefaultWrappers() {
        let filter = FrameFilter()
        for name in ["xmalloc", "xcalloc", "xrealloc", "xstrdup", "sqlite3Malloc", "sqlite3MallocZero", "sqlite3DbMallocRawNN",
                     "operator new(unsigned long)", "operator new[](unsigned long, std::nothrow_t const&)", "_Znwm", "_ZnamRKSt9nothrow_t",
                     "PyMem_Malloc", "PyMem_RawRealloc", "_PyMem_RawMalloc", "PyObject_Malloc", "g_malloc0", "g_malloc_n", "g_strdup",
                     "strdup", "std::__new_allocator<int>::allocate(unsigned long, void const*)"] {
            #expect(filter.matches(frame(name)), "\(name)")
        }
        for name in ["main", "make_name", "PyList_New", "sqlite3VdbeExec", "g_hash_table_insert", "operator delete(void*)", "newx"] {
            #expect(!filter.matches(frame(name)), "\(name)")
        }
        // libstdc++'s internals, and code inlined from the system's headers.
        #expect(filter.matches(frame("std::vector<int, std::allocator<int> >::_M_realloc_insert<int const&>(int const&)")))
        #expect(filter.matches(.unresolved("_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE9_M_createERmm+0x2a (/lib/libstdc++.so.6)")))
        var inlined = frame("std::vector<int, std::allocator<int> >::vector(unsigned long, std::allocator<int> const&)")
        inlined.file = "/usr/include/c++/12/bits/stl_vector.h"
        #expect(filter.matches(inlined))
        #expect(!filter.matches(frame("std::vector<int, std::allocator<int> >::size() const")))
        // The report's own name of a frame matches too (no symbolizer): "xmalloc+0x1c (/usr/bin/git)".
        #expect(filter.matches(.unresolved("xmalloc+0x1c (/usr/bin/git)")))
        #expect(!filter.matches(.unresolved("/usr/bin/git+0x28961c")))
    }

    @Test func patternsOfOnesOwn() {
        let mine = FrameFilter(extra: ["my_alloc*", "*libfoo.so*"], defaults: false)
        #expect(mine.matches(frame("my_alloc_zeroed")))
        #expect(!mine.matches(frame("xmalloc")))
        // A pattern may name a module through the frame's text.
        #expect(mine.matches(.unresolved("/usr/lib/libfoo.so.1+0x2a")))
    }

    @Test func theWrappersSaid() {
        let frames = [frame("operator new(unsigned long)"), frame("std::__new_allocator<int>::allocate(unsigned long, void const*)"),
                      frame("operator new(unsigned long)"), frame("std::allocator_traits<std::allocator<int> >::allocate(std::allocator<int>&, unsigned long)"),
                      frame("std::_Vector_base<int, std::allocator<int> >::_M_allocate(unsigned long)"), frame("grow")]
        let site = ResolvedSite(site: Report.Site(liveBytes: 1, liveCount: 1, frames: []), frames: frames, top: 5,
                                estimate: SamplingModel(try! Self.report(period: 0, sites: "")).estimate(Report.Site(liveBytes: 1, liveCount: 1, frames: [])))
        #expect(site.viaText == "operator new, std::__new_allocator<>::allocate, std::allocator_traits<>::allocate and 1 more")
        #expect(ResolvedSite.withoutTemplateArguments("std::map<int, std::vector<int> >::operator[]") == "std::map<>::operator[]")
        #expect(ResolvedSite.withoutTemplateArguments("operator<<") == "operator<<")
    }

    @Test func theTopFrame() {
        let resolver = SiteResolver()
        #expect(resolver.top(of: [frame("xmalloc"), frame("make_name"), frame("main")]) == 1)
        #expect(resolver.top(of: [frame("operator new(unsigned long)"), frame("std::__new_allocator<int>::allocate(unsigned long, void const*)"), frame("grow")]) == 2)
        #expect(resolver.top(of: [frame("make_name"), frame("xmalloc")]) == 0)
        // Only wrappers: the outermost frame is the best there is.
        #expect(resolver.top(of: [frame("xmalloc"), frame("xcalloc")]) == 1)
        #expect(resolver.top(of: []) == 0)
    }

    /// A report with the given sites; 1000 live blocks of 64 bytes and 10 of 1 MiB in the pool,
    /// internal fragmentation 25%: the mean requested size below a 64K period is 64 x 0.75 = 48.
    static func report(period: Int, sites: String) throws -> Report {
        let json = """
        {"format":"buddymalloc-report","version":1,"pid":7,"program":"t","reason":"exit",
         "memory":{"reserved":16777216,"used":10549248,"free":6227968,"internal_fragmentation":0.25,"held":10549248},
         "calls":{"malloc":1},
         "orders":[{"order":2,"block_size":64,"live":1000,"free":0},{"order":16,"block_size":1048576,"live":10,"free":0}],
         "profile":{"sample_bytes":\(period),"sites":[\(sites)]}}
        """
        return try ReportLoader.parse(Data(json.utf8), file: "t").documents[0].report
    }

    @Test func estimatesFromWhatTheReportHolds() throws {
        let r = try Self.report(period: 65536, sites: """
            {"live_bytes":655360,"live_count":10,"samples":25,"frames":["a+0x1 (p)"]},
            {"live_bytes":3276800,"live_count":3,"samples":3,"frames":["b+0x1 (p)"]},
            {"live_bytes":1048576,"live_count":1,"samples":1,"frames":["c+0x1 (p)"]},
            {"live_bytes":131072,"live_count":2,"samples":2,"live_blocks":2731,"allocated_bytes":999999,"frames":["d+0x1 (p)"]}
            """)
        let model = SamplingModel(r)
        #expect(model.period == 65536)
        #expect(model.meanSmallBlock == 48)
        // Every sample stood for P: W = n x P; blocks W / m; error W / sqrt(n).
        let a = model.estimate(r.sites[0])
        #expect(a.liveBytes == 655_360 && a.liveBlocks == 13_653 && a.blockMethod == .meanSize)
        #expect(a.liveBytesError == Int((655_360 / Double(10).squareRoot()).rounded()))
        #expect(a.blocksText == "~14K")
        // Freed samples count P bytes each towards the bytes allocated.
        #expect(a.allocatedBytes == 655_360 + 15 * 65536)
        #expect(a.shareOfHeld == 655_360 / 10_549_248.0)
        // Some samples were large blocks (W > n x P): only bounds, n ... 1 + (n - 1) x P / m.
        let b = model.estimate(r.sites[1])
        #expect(b.blockMethod == .bounds && b.liveBlocks == 3 && b.liveBlocksRange == 3...2732)
        #expect(b.liveBytesError == Int((65536 * Double(2).squareRoot()).rounded()))
        #expect(b.blocksText == "3-2.7K")
        // One large block: exact.
        let c = model.estimate(r.sites[2])
        #expect(c.liveBlocks == 1 && c.liveBlocksRange == nil && c.liveBytesError == 0 && c.errorText == "exact")
        #expect(c.blockMethod == .exact && c.blocksText == "1")
        // The library's own estimate when it writes one.
        let d = model.estimate(r.sites[3])
        #expect(d.liveBlocks == 2731 && d.blockMethod == .reported && d.allocatedBytes == 999_999)
    }

    @Test func withoutAProfile() throws {
        let r = try Self.report(period: 0, sites: #"{"live_bytes":100,"live_count":3,"frames":[]}"#)
        let e = SamplingModel(r).estimate(r.sites[0])
        #expect(e.liveBlocks == 3 && e.blockMethod == .samples && e.liveBytesError == 0)
    }

    @Test func sizes() {
        #expect(Units.parseBytes("4096") == 4096)
        #expect(Units.parseBytes("64K") == 65536)
        #expect(Units.parseBytes("64kb") == 65536)
        #expect(Units.parseBytes("1.5M") == 1_572_864)
        #expect(Units.parseBytes("2GiB") == 2 << 30)
        #expect(Units.parseBytes("lots") == nil)
        #expect(Units.parseBytes("-1") == nil)
        #expect(Units.count(999) == "999" && Units.count(13_653) == "14K" && Units.count(2_500_000) == "2.5M")
    }
}
