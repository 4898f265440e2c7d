import Foundation

/// `buddy-report leaks`: the sampled sites still live when the report was written (at exit: what
/// the program never freed), largest first, with estimated bytes and blocks.
public struct LeakReport {
    public struct Process {
        public var document: ReportDocument
        /// Sites with live bytes, largest first (those matching --ignore left out).
        public var sites: [ResolvedSite]
        /// Sites left out by --ignore, and their bytes.
        public var ignoredSites: Int
        public var ignoredBytes: Int
        public var model: SamplingModel

        public var report: Report { document.report }
        public var totalBytes: Int { sites.reduce(0) { $0 + $1.estimate.liveBytes } }
        /// One standard error of the total: the sites' errors added in quadrature (independent samples).
        public var totalError: Int {
            let variance = sites.reduce(0.0) { $0 + Double($1.estimate.liveBytesError) * Double($1.estimate.liveBytesError) }
            return Int(variance.squareRoot().rounded())
        }
    }

    public var processes: [Process]
    /// Things the reader should know (a report not written at exit, dropped samples).
    public var notes: [String]

    public var totalBytes: Int { processes.reduce(0) { $0 + $1.totalBytes } }

    /// `documents`: one report per process (the last one of each file). Throws when a report has
    /// no profile (leaks need BUDDY_PROFILE_SAMPLE).
    public init(_ documents: [ReportDocument], resolver: SiteResolver, ignore: [String] = [], minimumBytes: Int = 0) throws(ToolError) {
        processes = []
        notes = []
        resolver.prepare(documents.map(\.report))
        let ignoring = FrameFilter(extra: ignore, defaults: false)
        for document in documents {
            let r = document.report
            guard let period = r.profile?.sampleBytes, period > 0 else {
                throw ToolError("\(document.label): no allocation-site profile (the program ran without BUDDY_PROFILE_SAMPLE); run it again with e.g. BUDDY_PROFILE_SAMPLE=64K (buddy-report run --set PROFILE_SAMPLE=64K -- PROGRAM)")
            }
            if r.reason != "exit" {
                notes.append("\(document.label): written \(ShowRenderer.reasonText(r.reason)), not at exit: its sites were live then, not necessarily leaked")
            }
            if let dropped = r.profile?.droppedSamples, dropped > 0 {
                notes.append("\(document.label): \(dropped) samples were dropped (the library's tables were full): the figures are low")
            }
            var kept: [ResolvedSite] = []
            var ignoredSites = 0, ignoredBytes = 0
            for site in resolver.sites(r) where site.site.liveBytes > 0 {
                if !ignore.isEmpty && site.frames.contains(where: ignoring.matches) || site.estimate.liveBytes < minimumBytes {
                    ignoredSites += 1
                    ignoredBytes += site.estimate.liveBytes
                } else {
                    kept.append(site)
                }
            }
            if r.sites.count >= 20 {
                notes.append("\(document.label): the library lists the 20 sites holding the most; smaller ones are not in the report")
            }
            processes.append(Process(document: document, sites: kept, ignoredSites: ignoredSites, ignoredBytes: ignoredBytes, model: SamplingModel(r)))
        }
    }

    public func text(maxFrames: Int = 6) -> String {
        var out: [String] = []
        for p in processes {
            let r = p.report
            let when = r.reason == "exit" ? "live at exit" : "live when written (\(ShowRenderer.reasonText(r.reason)))"
            out.append("\(r.displayName) (pid \(r.pid)): \(p.sites.count) site\(p.sites.count == 1 ? "" : "s") \(when), about \(Units.bytes(p.totalBytes))"
                       + (p.totalError > 0 ? " ±\(Units.bytes(p.totalError))" : "")
                       + " of the \(Units.bytes(r.memory.held)) the program held")
            out.append("  estimates from sampling one allocation per \(Units.bytes(p.model.period)) allocated: bytes ± one standard error, blocks estimated (README, buddy-report leaks)")
            let peak = "the peak (\(Units.bytes(p.model.peak)): peak used, caches included, + oversize peak)"
            if p.model.nearPeak {
                out.append("  written near \(peak), at \(Units.percent(Double(p.model.current) / Double(p.model.peak))) of it: each site's bytes now are its share of the peak")
            } else if p.model.peak > 0 {
                out.append("  written at \(Units.percent(Double(p.model.current) / Double(p.model.peak))) of \(peak): shares of the peak need a report written near it (leaks --at-peak over periodic reports)")
            }
            if p.ignoredSites > 0 {
                out.append("  (\(p.ignoredSites) site\(p.ignoredSites == 1 ? "" : "s") of \(Units.bytes(p.ignoredBytes)) left out by --ignore or --min-bytes)")
            }
            if p.sites.isEmpty {
                out.append("  no sampled block was live")
            }
            let rankWidth = "\(p.sites.count)".count
            let bytesWidth = p.sites.map { Units.bytes($0.estimate.liveBytes).count }.max() ?? 0
            let errorWidth = p.sites.map { $0.estimate.errorText.count }.max() ?? 0
            let blocksWidth = p.sites.map { $0.estimate.blocksText.count }.max() ?? 0
            for (i, site) in p.sites.enumerated() {
                let e = site.estimate
                out.append("")
                let samples = "\(e.liveSamples)" + (e.samples.map { " of \($0)" } ?? "") + " sample" + ((e.samples ?? e.liveSamples) == 1 ? "" : "s") + " live"
                let share = (e.shareText().map { ", \($0) of held" } ?? "") + (e.peakShareText().map { ", \($0) of the peak" } ?? "")
                out.append("  \("\(i + 1)".leftPadded(to: rankWidth)). \(Units.bytes(e.liveBytes).leftPadded(to: bytesWidth)) \(e.errorText.rightPadded(to: errorWidth))"
                           + "  in \(e.blocksText.leftPadded(to: blocksWidth)) block\(e.liveBlocks == 1 && e.liveBlocksRange == nil ? " " : "s")  (\(samples)\(share))")
                let indent = String(repeating: " ", count: rankWidth + 6)
                let stack = Array(site.stack)
                for (k, frame) in stack.prefix(maxFrames).enumerated() {
                    var line = indent + frame.display
                    if k == 0 && !site.skipped.isEmpty {
                        line += "  [via " + site.viaText + "]"
                    }
                    out.append(line)
                }
                if stack.count > maxFrames { out.append(indent + "... \(stack.count - maxFrames) more") }
                if stack.isEmpty { out.append(indent + "(no frames)") }
            }
            out.append("")
        }
        for note in notes { out.append("note: \(note)") }
        return out.joined(separator: "\n") + (notes.isEmpty ? "" : "\n")
    }

    public func json() throws -> Data {
        struct FrameJSON: Encodable {
            var function: String?
            var file: String?
            var line: Int?
            var module: String?
            var raw: String
            var inlined: Bool?
        }
        struct SiteJSON: Encodable {
            var live_bytes: Int
            var live_bytes_error: Int
            var live_blocks: Int
            var live_blocks_low: Int?
            var live_blocks_high: Int?
            var blocks_estimate: String
            var live_samples: Int
            var samples: Int?
            var allocated_bytes: Int?
            var share_of_held: Double?
            var share_of_held_error: Double?
            var share_of_peak: Double?
            var share_of_peak_error: Double?
            var skipped: [FrameJSON]
            var frames: [FrameJSON]
        }
        struct ProcessJSON: Encodable {
            var file: String
            var program: String
            var pid: Int
            var reason: String
            var sample_bytes: Int
            var held: Int
            var peak: Int
            var near_peak: Bool
            var total_bytes: Int
            var total_bytes_error: Int
            var ignored_sites: Int
            var ignored_bytes: Int
            var sites: [SiteJSON]
        }
        struct LeaksJSON: Encodable {
            var format = "buddymalloc-leaks"
            var version = 1
            var total_bytes: Int
            var processes: [ProcessJSON]
            var notes: [String]
        }
        func frame(_ f: SymbolizedFrame) -> FrameJSON {
            FrameJSON(function: f.function, file: f.file, line: f.line, module: f.module, raw: f.raw, inlined: f.inlined ? true : nil)
        }
        let value = LeaksJSON(total_bytes: totalBytes, processes: processes.map { p in
            ProcessJSON(file: p.document.file, program: p.report.program, pid: p.report.pid, reason: p.report.reason,
                        sample_bytes: p.model.period, held: p.report.memory.held, peak: p.model.peak, near_peak: p.model.nearPeak,
                        total_bytes: p.totalBytes,
                        total_bytes_error: p.totalError, ignored_sites: p.ignoredSites, ignored_bytes: p.ignoredBytes,
                        sites: p.sites.map { s in
                let e = s.estimate
                return SiteJSON(live_bytes: e.liveBytes, live_bytes_error: e.liveBytesError, live_blocks: e.liveBlocks,
                                live_blocks_low: e.liveBlocksRange?.lowerBound, live_blocks_high: e.liveBlocksRange?.upperBound,
                                blocks_estimate: e.blockMethod.rawValue, live_samples: e.liveSamples, samples: e.samples,
                                allocated_bytes: e.allocatedBytes, share_of_held: e.shareOfHeld, share_of_held_error: e.shareOfHeldError,
                                share_of_peak: e.shareOfPeak, share_of_peak_error: e.shareOfPeakError,
                                skipped: s.skipped.map(frame), frames: s.stack.map(frame))
            })
        }, notes: notes)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }
}
