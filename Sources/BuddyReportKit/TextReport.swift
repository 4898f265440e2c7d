import Foundation

/// What a report read from the library's text format (`BUDDY_REPORT_FORMAT=text`, the default)
/// does not carry, so that the commands can say so.
public struct TextReportOrigin: Sendable, Equatable {
    /// The figures the JSON would have and the text does not, in words.
    public var lacking: [String]
    /// The byte figures read as the text rounds them (JSON paths), the others being exact.
    public var rounded: [String]

    /// One line for a note: what is missing and how to get it.
    public var note: String {
        "a text report, so byte figures are rounded to three digits"
            + (rounded.isEmpty ? "" : " (\(rounded.count) of them; block and object counts are exact)")
            + (lacking.isEmpty ? "" : ", and it lacks " + Self.list(lacking))
            + "; BUDDY_REPORT_FORMAT=json writes every figure"
    }

    static func list(_ items: [String]) -> String {
        guard items.count > 1 else { return items.first ?? "" }
        return items.dropLast().joined(separator: ", ") + " and " + items.last!
    }
}

/// Reads the library's text reports: the format its writer prints (Sources/BuddyMallocCore,
/// ReportFields.swift and ReportParts.swift; Tests/Fixtures/writer/*.txt), one report or several
/// one after another (a stderr stream, with other text between them).
///
/// Each report becomes the JSON document the library would have written, with the figures the
/// text shows, and is then read like any JSON report. The text rounds byte figures (`83.5M`,
/// truncated to one decimal below 100 units); where the exact value follows from exact figures
/// (a block size is min_block << order; `used` is the live blocks' and objects' bytes; a site whose
/// samples were all small holds live samples x the period) and prints the same, it is taken,
/// else the smallest value that prints so.
enum TextReportReader {
    static let headerPrefix = "BuddyMalloc report"

    /// Whether `text` holds text reports (and no JSON).
    static func looksLikeText(_ lines: [Substring]) -> Bool {
        lines.contains { $0.hasPrefix(headerPrefix) } && !lines.contains { $0.drop { $0 == " " || $0 == "\t" }.hasPrefix("{") }
    }

    static func parse(_ text: String, file: String) throws(ReportError) -> ReportFile {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
        // Each report runs from its header to the next header.
        var starts: [Int] = []
        for (i, line) in lines.enumerated() where line.hasPrefix(headerPrefix) { starts.append(i) }
        var documents: [ReportDocument] = []
        var warnings: [String] = []
        var skipped = starts.first ?? 0
        let many = starts.count > 1
        for (n, start) in starts.enumerated() {
            let end = n + 1 < starts.count ? starts[n + 1] : lines.count
            let label = many ? "\(file), report \(n + 1) (line \(start + 1))" : file
            var reader = Reader(lines: Array(lines[start..<end]), firstLine: start + 1)
            do {
                let parsed = try reader.read()
                skipped += reader.skippedLines
                warnings += reader.warnings.map { "\(label): \($0)" }
                let data = try JSONSerialization.data(withJSONObject: parsed.json, options: [.sortedKeys])
                var document = try ReportLoader.validate(parsed.json, data: data, file: file, index: n + 1, line: start + 1,
                                                         label: label, inStream: many)
                document.report.textOrigin = parsed.origin
                documents.append(document)
            } catch let error as TextError {
                let message = "\(many ? "report \(n + 1) (line \(start + 1)): " : "")a text report this buddy-report cannot read: \(error.message); have the library write JSON with BUDDY_REPORT_FORMAT=json"
                // A stream's last report may be cut short (a process killed while writing it).
                if n == starts.count - 1 && !documents.isEmpty {
                    warnings.append("\(file): ignored the last report (line \(start + 1)): \(error.message) (the process may still be writing it, or was killed)")
                    continue
                }
                throw ReportError(file: file, message)
            } catch let error as ReportError {
                throw error
            } catch {
                throw ReportError(file: file, "cannot be read: \(error)")
            }
        }
        if let origin = documents.last?.report.textOrigin {
            warnings.insert("\(file): \(origin.note)", at: 0)
        }
        if skipped > 0 {
            warnings.append("\(file): skipped \(skipped) line\(skipped == 1 ? "" : "s") of other text between the reports")
        }
        return ReportFile(documents: documents, warnings: warnings)
    }

    struct TextError: Error {
        var message: String
    }

    /// One report's lines.
    struct Reader {
        var lines: [Substring]
        var firstLine: Int
        var skippedLines = 0
        var warnings: [String] = []
        var rounded: Set<String> = []

        init(lines: [Substring], firstLine: Int) {
            self.lines = lines
            self.firstLine = firstLine
        }

        // The figures, by JSON path ("memory.used"), as the text shows them.
        var counts: [String: Int] = [:]
        var byteTexts: [String: String] = [:]
        var ratios: [String: Double] = [:]
        var orders: [(line: Int, cells: [Substring])] = []
        var slabs: [(line: Int, cells: [Substring])] = []

        mutating func read() throws(TextError) -> (json: [String: Any], origin: TextReportOrigin) {
            var json: [String: Any] = ["format": Report.formatName, "version": 1]
            try header(String(lines[0]), into: &json)
            enum Table { case none, orders, slabs, badPointers, profile }
            var table = Table.none
            var seen: Set<String> = []
            var calls: [String: Int] = [:], failures: [String: Int] = [:]
            var badPointers: [[String: Any]] = []
            var sites: [[String: Any]] = []
            var profile: [String: Any]?
            var latency: [String: Any]?
            var health: [String: Any]?
            var uptime: Double?
            var sizes: [[String: Any]] = [], alignments: [[String: Any]] = []

            for (offset, raw) in lines.enumerated().dropFirst() {
                let lineNumber = firstLine + offset
                let line = String(raw)
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty {
                    if table == .orders || table == .slabs { table = .none }
                    continue
                }
                let indent = line.prefix { $0 == " " }.count
                switch table {
                case .orders where indent > 2 || trimmed.first?.isNumber == true:
                    if trimmed.first?.isNumber == true { orders.append((lineNumber, trimmed.split(separator: " "))); continue }
                case .slabs:
                    if trimmed.first?.isNumber == true { slabs.append((lineNumber, trimmed.split(separator: " "))); continue }
                case .badPointers where indent >= 4:
                    if trimmed.hasPrefix("#"), !badPointers.isEmpty {
                        badPointers[badPointers.count - 1]["frames"] = (badPointers[badPointers.count - 1]["frames"] as? [String] ?? []) + [Self.frameText(trimmed)]
                        continue
                    }
                    if let record = Self.badPointer(trimmed) { badPointers.append(record); continue }
                case .profile where indent >= 4:
                    if trimmed.hasPrefix("#"), !sites.isEmpty {
                        sites[sites.count - 1]["frames"] = (sites[sites.count - 1]["frames"] as? [String] ?? []) + [Self.frameText(trimmed)]
                        continue
                    }
                    if let site = Self.site(trimmed) { sites.append(site); continue }
                default:
                    break
                }
                table = .none
                // "  order   block  ..." and "  slab class  object ...": the tables' headings.
                if trimmed.hasPrefix("order ") && trimmed.contains(" block") { table = .orders; seen.insert("orders"); continue }
                if trimmed.hasPrefix("slab class ") { table = .slabs; seen.insert("slab_classes"); continue }
                guard indent == 2, let key = Self.key(of: trimmed) else { skippedLines += 1; continue }
                let rest = trimmed.dropFirst(key.count).trimmingCharacters(in: .whitespaces)
                seen.insert(key)
                switch key {
                case "health":
                    let status = rest.prefix { $0 != ":" }
                    health = ["status": String(status), "message": rest]
                case "time":
                    let values = Self.fields(line, ["  time        up ", "s, last activity "])
                    uptime = values[0].flatMap { Double($0) }
                case "pool":
                    let v = Self.fields(line, ["  pool        ", " in ", " segments (resident ", ", metadata ", "): used ", ", cached ", ", free ", "; peak used "])
                    bytes("memory.reserved", v[0]); count("segments.count", v[1]); bytes("memory.resident", v[2])
                    bytes("memory.metadata", v[3]); bytes("memory.used", v[4]); bytes("memory.cached", v[5])
                    bytes("memory.free", v[6]); bytes("memory.peak_used", v[7])
                case "resident":
                    let v = Self.fields(line, ["  resident    used ", ", cached ", ", slab spare ", ", free ", " (written once, not given back yet); metadata ",
                                               ", oversize ", " (retained ", "); the process ", ", of which outside the allocator "])
                    for (i, path) in ["used", "cached", "slab_spare", "free", "metadata", "oversize", "retained", "process", "outside"].enumerated() {
                        bytes("resident." + path, v[i])
                    }
                case "blocks":
                    let v = Self.fields(line, ["  blocks      ", " live (peak ", "); largest free block ", "; usage "])
                    count("memory.live_allocations", v[0]); count("memory.peak_live_allocations", v[1])
                    bytes("memory.largest_free_block", v[2])
                case "fragments":
                    let v = Self.fields(line, ["  fragments   internal ", " (requested ", " in blocks of ", " so far; live requested about ", "), external "])
                    ratio("memory.internal_fragmentation", v[0]); bytes("memory.requested_total", v[1])
                    bytes("memory.allocated_total", v[2]); bytes("memory.requested", v[3]); ratio("memory.external_fragmentation", v[4])
                case "calls":
                    let v = Self.fields(line, ["  calls       allocations ", ", frees ", ", failed ", ", resized in place "])
                    count("segments.realloc_in_place", v[3])
                case "entries":
                    (calls, failures) = try Self.entries(rest, line: lineNumber)
                case "system":
                    let v = Self.fields(line, ["  system      ", " calls, ", " (larger than the maximum block ", ", mapped directly, so far); re-entrant calls "])
                    count("system.calls", v[0]); bytes("system.bytes", v[1]); bytes("config.max_block", v[2]); count("system.reentrant", v[3])
                case "oversize":
                    let v = Self.fields(line, ["  oversize    ", " live, ", " (peak ", ", ", "); held by the program in all ", " (used + oversize)"])
                    count("oversize.blocks", v[0]); bytes("oversize.bytes", v[1]); count("oversize.peak_blocks", v[2])
                    bytes("oversize.peak_bytes", v[3]); bytes("memory.held", v[4])
                case "errors":
                    let v = Self.fields(line, ["  errors      invalid pointers ", ", double frees ", ", uses after free ", ", wrong sizes "])
                    count("errors.invalid_pointer", v[0]); count("errors.double_free", v[1])
                    count("errors.use_after_free", v[2]); count("errors.wrong_size", v[3])
                case "segments":
                    let v = Self.fields(line, ["  segments    added ", ", released ", "; splits ", ", coalesces ", "; returned to the OS "])
                    count("segments.added", v[0]); count("segments.released", v[1]); bytes("segments.released_bytes", v[4])
                case "locks":
                    // (The shelf locks' waits are not in the text of libraries before 2026-12-06.)
                    let v = Self.fields(line, ["  locks       pool lock taken ", " times (", " after a wait); depot batches in ", ", out ", ", to the pool ",
                                               " (shelf full); shelf locks ", " after a wait"])
                    count("locks.pool_acquisitions", v[0]); count("locks.pool_contended", v[1]); count("locks.depot_puts", v[2])
                    count("locks.depot_takes", v[3]); count("locks.depot_full", v[4]); count("locks.depot_contended", v[5])
                case "latency":
                    latency = Self.latency(rest)
                case "sizes":
                    sizes = Self.histogram(rest, mark: "<=", key: "upto")
                case "alignments":
                    alignments = Self.histogram(rest, mark: "", key: "alignment")
                case "bad pointers":
                    table = .badPointers
                case "profile":
                    // "one sample per 16.0K allocated; the sites ..." or ": no samples yet".
                    let period = rest.hasPrefix("one sample per ") ? rest.dropFirst("one sample per ".count).prefix { $0 != " " } : ""
                    byteTexts["profile.sample_bytes"] = String(period)
                    profile = [:]
                    table = .profile
                default:
                    skippedLines += 1
                }
            }

            guard seen.contains("pool"), byteTexts["memory.used"] != nil, byteTexts["memory.reserved"] != nil, byteTexts["memory.free"] != nil else {
                throw TextError(message: seen.contains("pool") ? "its \"pool\" line has no reserved, used or free bytes (an older library's text?)" : "it has no \"pool\" line")
            }
            guard seen.contains("orders") else { throw TextError(message: "it has no table of orders") }

            // The tables, then the figures that follow from them.
            let orderRows = readOrders()
            let slabRows = readSlabs()
            json["orders"] = orderRows
            json["slab_classes"] = slabRows
            refineMemory(orders: orderRows, slabs: slabRows)

            if let uptime { json["time"] = ["uptime": uptime] }
            if let health { json["health"] = health }
            if let latency { json["latency"] = latency }
            json["calls"] = calls
            // The text names the failures that happened; the JSON lists every allocating entry point called.
            for name in ["malloc", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc"]
            where calls[name] != nil && failures[name] == nil {
                failures[name] = 0
            }
            json["failures"] = failures
            json["sizes"] = sizes
            json["alignments"] = alignments
            if seen.contains("bad pointers") { json["bad_pointers"] = badPointers }
            if var profile {
                let period = refinePeriod()
                profile["sample_bytes"] = period
                profile["sites"] = sites.map { refineSite($0, period: period) }
                json["profile"] = profile
            }
            for (path, value) in counts { Self.set(&json, path, value) }
            for (path, value) in ratios { Self.set(&json, path, value) }
            for (path, text) in byteTexts where path != "profile.sample_bytes" {
                if let value = exact[path] ?? Self.lowestBytes(text) { Self.set(&json, path, value) }
            }
            if byteTexts.keys.contains(where: { $0.hasPrefix("config.") }) || json["orders"] != nil {
                var config = json["config"] as? [String: Any] ?? [:]
                if let min = minBlock { config["min_block"] = min }
                if config["max_block"] == nil, let last = orderRows.last, let size = last["block_size"] as? Int { config["max_block"] = size }
                if config["min_block"] != nil, config["max_block"] != nil { json["config"] = config } else { json["config"] = nil }
            }
            // External fragmentation as the library defines it, when the exact figures give the percent the text shows.
            if let free = exact["memory.free"], let largest = (Self.get(json, "memory.largest_free_block") as? Int),
               let maxBlock = Self.get(json, "config.max_block") as? Int, let shown = ratios["memory.external_fragmentation"] {
                let value = free == 0 ? 0 : 1 - Double(largest) / Double(max(1, min(free, maxBlock)))
                if (value * 100).rounded() == (shown * 100).rounded() { Self.set(&json, "memory.external_fragmentation", value) }
            }

            var lacking = ["the time it was written (only the uptime)", "the parent pid", "the configuration beyond the block sizes"]
            if profile != nil {
                lacking.append("the sites' sample counts and allocated bytes (flame, collapsed and pprof --value allocated)")
                lacking.append("the modules' build-ids (a changed module cannot be told)")
            }
            if !seen.contains("locks") { lacking.append("the lock counts") }
            let origin = TextReportOrigin(lacking: lacking, rounded: rounded.sorted())
            return (json, origin)
        }

        // MARK: Values

        mutating func count(_ path: String, _ text: String?) {
            guard let text, let value = Int(text) else { return }
            counts[path] = value
        }

        mutating func bytes(_ path: String, _ text: String?) {
            guard let text, Self.lowestBytes(text) != nil else { return }
            byteTexts[path] = text
        }

        mutating func ratio(_ path: String, _ text: String?) {
            guard let text, text.hasSuffix("%"), let value = Double(text.dropLast()) else { return }
            ratios[path] = value / 100
        }

        /// Byte figures whose exact value is known (they print as the text does).
        var exact: [String: Int] = [:]
        var minBlock: Int?

        /// `path`'s exact value when one of `candidates` prints as the text; records the figure as
        /// rounded otherwise.
        mutating func refine(_ path: String, _ candidates: [Int]) {
            guard let text = byteTexts[path] else { return }
            if let value = candidates.first(where: { $0 >= 0 && Self.writerBytes($0) == text }) {
                exact[path] = value
            } else if !text.hasSuffix("B") {
                rounded.insert(path)
            } else if let value = Self.lowestBytes(text) {
                exact[path] = value
            }
        }

        mutating func readOrders() -> [[String: Any]] {
            var rows: [[String: Any]] = []
            for (line, cells) in orders {
                guard cells.count == 9, let order = Int(cells[0]), let low = Self.lowestBytes(String(cells[1])) else {
                    warnings.append("line \(line): an order's row whose columns run together (a figure wider than its column) was left out")
                    continue
                }
                let numbers = cells[2...].map { Int($0) }
                guard numbers.allSatisfy({ $0 != nil }) else {
                    warnings.append("line \(line): an order's row that is not numbers was left out")
                    continue
                }
                let text = String(cells[1])
                var size = low
                if !text.hasSuffix("B") {
                    if let power = Self.powerOfTwo(near: low), Self.writerBytes(power) == text { size = power }
                }
                if minBlock == nil, order < 62, (size >> order) << order == size, size >> order > 0 { minBlock = size >> order }
                rows.append(["order": order, "block_size": size, "live": numbers[0]!, "free": numbers[1]!, "cached": numbers[2]!,
                             "allocations": numbers[3]!, "frees": numbers[4]!, "splits": numbers[5]!, "coalesces": numbers[6]!])
            }
            // The text leaves out the orders with nothing in them: the JSON lists them all (when
            // every row's block is min_block << order).
            if let min = minBlock, !rows.allSatisfy({ ($0["block_size"] as! Int) == min << ($0["order"] as! Int) }) { minBlock = nil }
            guard let min = minBlock, let last = rows.last?["order"] as? Int else { return rows }
            let maxBlock = byteTexts["config.max_block"].flatMap { Self.lowestBytes($0) }.flatMap(Self.powerOfTwo(near:))
            let top = maxBlock.map { max(last, Int(log2(Double($0) / Double(min)).rounded())) } ?? last
            if let maxBlock, Self.writerBytes(maxBlock) == byteTexts["config.max_block"] { exact["config.max_block"] = maxBlock }
            var byOrder: [Int: [String: Any]] = [:]
            for row in rows { byOrder[row["order"] as! Int] = row }
            guard top < 62 else { return rows }
            return (0...top).map { k in
                byOrder[k] ?? ["order": k, "block_size": min << k, "live": 0, "free": 0, "cached": 0, "allocations": 0, "frees": 0,
                               "splits": 0, "coalesces": 0]
            }
        }

        mutating func readSlabs() -> [[String: Any]] {
            var rows: [[String: Any]] = []
            for (line, cells) in slabs {
                guard cells.count == 9, let index = Int(cells[0]), let objectLow = Self.lowestBytes(String(cells[1])),
                      let slabLow = Self.lowestBytes(String(cells[2])) else {
                    warnings.append("line \(line): a slab class's row whose columns run together (a figure wider than its column) was left out")
                    continue
                }
                let numbers = cells[3...].map { Int($0) }
                guard numbers.allSatisfy({ $0 != nil }) else {
                    warnings.append("line \(line): a slab class's row that is not numbers was left out")
                    continue
                }
                // The classes: 9/8 ... 15/8 of 1K, 2K, ... 16K, in slabs of 16K << (class / 7).
                var object = objectLow, slab = slabLow
                var exactObject = cells[1].hasSuffix("B")
                if index < 56 {
                    let candidate = (1024 << (index / 7)) * (9 + index % 7) / 8
                    if Self.writerBytes(candidate) == String(cells[1]) { object = candidate; exactObject = true }
                    let slabCandidate = 16384 << (index / 7)
                    if Self.writerBytes(slabCandidate) == String(cells[2]) { slab = slabCandidate }
                }
                if !exactObject { rounded.insert("slab_classes.object_size") }
                if let power = Self.powerOfTwo(near: slab), Self.writerBytes(power) == String(cells[2]) { slab = power }
                rows.append(["class": index, "object_size": object, "slab_size": slab, "slabs": numbers[0]!, "live": numbers[1]!,
                             "free": numbers[2]!, "cached": numbers[3]!, "allocations": numbers[4]!, "frees": numbers[5]!])
            }
            return rows
        }

        /// used, free and the spare bytes of the slabs from the tables, when they print as the text does.
        mutating func refineMemory(orders: [[String: Any]], slabs: [[String: Any]]) {
            func int(_ row: [String: Any], _ key: String) -> Int { row[key] as? Int ?? 0 }
            let orderLive = orders.reduce(0) { $0 + int($1, "live") * int($1, "block_size") }
            let orderFree = orders.reduce(0) { $0 + int($1, "free") * int($1, "block_size") }
            let orderCached = orders.reduce(0) { $0 + int($1, "cached") * int($1, "block_size") }
            let slabLive = slabs.reduce(0) { $0 + int($1, "live") * int($1, "object_size") }
            let slabCached = slabs.reduce(0) { $0 + int($1, "cached") * int($1, "object_size") }
            let spare = slabs.reduce(0) { $0 + int($1, "slabs") * int($1, "slab_size") - (int($1, "live") + int($1, "cached")) * int($1, "object_size") }
            refine("memory.used", [orderLive + slabLive])
            refine("memory.free", [orderFree + spare])
            refine("memory.cached", [orderCached + slabCached])
            if exact["memory.free"] != nil, !slabs.isEmpty { exact["memory.slab_spare"] = spare; byteTexts["memory.slab_spare"] = Self.writerBytes(spare) }
            if let used = exact["memory.used"], let free = exact["memory.free"], let text = byteTexts["memory.cached"], let low = Self.lowestBytes(text) {
                // The caches' own descriptors are in `cached` too: reserved is the one that prints so.
                let reservedLow = byteTexts["memory.reserved"].flatMap { Self.lowestBytes($0) } ?? 0
                refine("memory.reserved", [reservedLow, Self.powerOfTwo(near: reservedLow) ?? 0, used + free + (exact["memory.cached"] ?? low)])
            } else {
                refine("memory.reserved", [byteTexts["memory.reserved"].flatMap { Self.lowestBytes($0) }.flatMap(Self.powerOfTwo(near:)) ?? 0])
            }
            if let used = exact["memory.used"] {
                let oversize = byteTexts["oversize.bytes"].flatMap { Self.lowestBytes($0) } ?? 0
                refine("oversize.bytes", [oversize])
                refine("memory.held", [used + (exact["oversize.bytes"] ?? oversize)])
            }
            let largest = byteTexts["memory.largest_free_block"].flatMap { Self.lowestBytes($0) } ?? 0
            refine("memory.largest_free_block", [Self.powerOfTwo(near: largest) ?? largest])
            for path in ["resident.used", "resident.cached", "resident.slab_spare", "resident.free", "resident.metadata",
                         "resident.oversize", "resident.retained", "resident.process", "resident.outside"] where byteTexts[path] != nil {
                refine(path, [])
            }
            for path in ["memory.resident", "memory.metadata", "memory.peak_used", "memory.requested", "memory.requested_total",
                         "memory.allocated_total", "oversize.peak_bytes", "system.bytes", "segments.released_bytes"] {
                refine(path, [])
            }
        }

        /// The profile's period: a power of two, a multiple of 1K or of 1000 that prints as the text does.
        mutating func refinePeriod() -> Int {
            guard let text = byteTexts["profile.sample_bytes"], let low = Self.lowestBytes(text) else { return 0 }
            let high = Self.lowestBytes(text, upper: true) ?? low
            var candidates = [Self.powerOfTwo(near: low) ?? low]
            for step in [1024, 1000] {
                let first = (low + step - 1) / step * step
                if first < high { candidates.append(first) }
            }
            if let value = candidates.first(where: { Self.writerBytes($0) == text }) { return value }
            rounded.insert("profile.sample_bytes")
            return low
        }

        /// A site's live bytes: n x P when every live sample was small, which prints as the text does.
        mutating func refineSite(_ site: [String: Any], period: Int) -> [String: Any] {
            var out = site
            let text = site["live_bytes"] as? String ?? "0B"
            let n = site["live_count"] as? Int ?? 0
            if period > 0, Self.writerBytes(n * period) == text {
                out["live_bytes"] = n * period
            } else {
                out["live_bytes"] = Self.lowestBytes(text) ?? 0
                if !text.hasSuffix("B") { rounded.insert("profile.sites.live_bytes") }
            }
            if out["frames"] == nil { out["frames"] = [String]() }
            return out
        }

        // MARK: Lines

        /// "BuddyMalloc report (private pool), pid 4242 (golden): signal, report #7".
        func header(_ line: String, into json: inout [String: Any]) throws(TextError) {
            var rest = Substring(line.dropFirst(headerPrefix.count))
            json["pool"] = "process"
            if rest.hasPrefix(" (private pool)") {
                json["pool"] = "private"
                rest = rest.dropFirst(" (private pool)".count)
            }
            guard rest.hasPrefix(", pid ") else { throw TextError(message: "line \(firstLine): a header without a pid") }
            rest = rest.dropFirst(", pid ".count)
            let digits = rest.prefix { $0.isNumber }
            guard let pid = Int(digits) else { throw TextError(message: "line \(firstLine): a header without a pid") }
            json["pid"] = pid
            rest = rest.dropFirst(digits.count)
            // The program's name may hold anything: the reason and number are after its last "): ".
            guard let colon = rest.range(of: ": ", options: .backwards) else {
                // An older writer's header: the pid alone.
                json["program"] = rest.hasPrefix(" (") && rest.hasSuffix(")") ? String(rest.dropFirst(2).dropLast()) : ""
                json["reason"] = "exit"
                return
            }
            let name = rest[..<colon.lowerBound]
            if name.hasPrefix(" (") && name.hasSuffix(")") { json["program"] = String(name.dropFirst(2).dropLast()) } else { json["program"] = "" }
            let tail = rest[colon.upperBound...].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            json["reason"] = tail.first ?? "exit"
            if tail.count > 1, tail[1].hasPrefix("report #"), let sequence = Int(tail[1].dropFirst("report #".count)) {
                json["sequence"] = sequence
            }
        }

        /// The summary line's key ("pool", "bad pointers"), or nil.
        static let keys = ["bad pointers", "health", "time", "pool", "resident", "blocks", "fragments", "calls", "entries", "system", "oversize",
                           "errors", "segments", "locks", "latency", "sizes", "alignments", "profile"]

        static func key(of trimmed: String) -> String? {
            keys.first { trimmed.hasPrefix($0 + " ") || trimmed == $0 }
        }

        /// The values between the writer's words: `separators[i]` comes before value i. A word the
        /// line lacks (an older writer) leaves its value out.
        static func fields(_ line: String, _ separators: [String]) -> [String?] {
            var found: [(index: Int, range: Range<String.Index>)] = []
            var from = line.startIndex
            for (i, separator) in separators.enumerated() {
                if separator.isEmpty {
                    found.append((i, from..<from))
                } else if let range = line.range(of: separator, range: from..<line.endIndex) {
                    found.append((i, range))
                    from = range.upperBound
                }
            }
            var values = [String?](repeating: nil, count: separators.count)
            for (k, f) in found.enumerated() {
                let end = k + 1 < found.count ? found[k + 1].range.lowerBound : line.endIndex
                var value = line[f.range.upperBound..<end]
                // The line's closing words: ")" and what follows.
                if k + 1 == found.count, let space = value.firstIndex(where: { $0 == " " || $0 == ")" }) { value = value[..<space] }
                values[f.index] = String(value).trimmingCharacters(in: .whitespaces)
            }
            return values
        }

        /// " malloc 22021 free 2011 realloc 9 (2 failed)" or " none".
        static func entries(_ text: String, line: Int) throws(TextError) -> ([String: Int], [String: Int]) {
            var calls: [String: Int] = [:], failures: [String: Int] = [:]
            let words = text.split(separator: " ")
            var i = 0
            if words == ["none"] { return (calls, failures) }
            while i + 1 < words.count {
                let name = String(words[i])
                guard let n = Int(words[i + 1]) else { throw TextError(message: "line \(line): the entries are not NAME COUNT pairs") }
                calls[name] = n
                i += 2
                if i + 1 < words.count, words[i].hasPrefix("("), words[i + 1].hasPrefix("failed"), let f = Int(words[i].dropFirst()) {
                    failures[name] = f
                    i += 2
                }
            }
            return (calls, failures)
        }

        /// "1 malloc in 1024: allocations avg 2.8us max 54us (20 samples); frees avg 52ns max 75ns (4 samples...)".
        static func latency(_ text: String) -> [String: Any] {
            if text.hasPrefix("off") { return ["mode": "off"] }
            var out: [String: Any] = [:]
            if text.hasPrefix("every call") {
                out["mode"] = "exact"
            } else {
                out["mode"] = "sampled"
                let v = fields(text, ["1 malloc in ", ": "])
                if let period = v[0].flatMap({ Int($0) }) { out["sample_period"] = period }
            }
            var total = 0
            for (word, prefix) in [("allocations ", "alloc"), ("frees ", "free")] {
                guard let range = text.range(of: word) else { continue }
                let part = text[range.upperBound...].prefix { $0 != ";" }
                let tokens = part.split(separator: " ")
                if tokens.count >= 4, tokens[0] == "avg", tokens[2] == "max" {
                    if let avg = nanoseconds(tokens[1]) { out["\(prefix)_avg_ns"] = avg }
                    if let max = nanoseconds(tokens[3]) { out["\(prefix)_max_ns"] = max }
                }
                if let open = part.firstIndex(of: "("), let n = Int(part[part.index(after: open)...].prefix { $0.isNumber }) {
                    out["\(prefix)_samples"] = n
                    total += n
                }
            }
            out["samples"] = total
            return out
        }

        /// "850ns", "12us", "3.4ms", "1.20s" -> nanoseconds.
        static func nanoseconds(_ text: Substring) -> Double? {
            for (unit, scale) in [("ns", 1.0), ("us", 1e3), ("ms", 1e6), ("s", 1e9)] where text.hasSuffix(unit) {
                return Double(text.dropLast(unit.count)).map { $0 * scale }
            }
            return nil
        }

        /// "<=16B:52 <=32B:213" (mark "<=") or "1B:118 32B:44"; "none".
        static func histogram(_ text: String, mark: String, key: String) -> [[String: Any]] {
            var out: [[String: Any]] = []
            for word in text.split(separator: " ") where word != "none" {
                let parts = word.dropFirst(mark.count).split(separator: ":")
                guard parts.count == 2, let count = Int(parts[1]), let low = lowestBytes(String(parts[0])) else { continue }
                var bound = low
                if let power = powerOfTwo(near: low), writerBytes(power) == String(parts[0]) { bound = power }
                out.append([key: bound, "count": count])
            }
            return out
        }

        /// "double free 0x7f994b806980 in free()".
        static func badPointer(_ text: String) -> [String: Any]? {
            guard let at = text.range(of: " 0x") else { return nil }
            let kindText = String(text[..<at.lowerBound])
            let kinds = ["invalid pointer": "invalid_pointer", "double free": "double_free", "another pool's pointer": "other_pool",
                         "use after free": "use_after_free", "wrong size": "wrong_size", "heap corruption": "heap_corruption"]
            guard let kind = kinds[kindText] else { return nil }
            let rest = text[at.upperBound...]
            let pointer = "0x" + rest.prefix { $0 != " " }
            var record: [String: Any] = ["kind": kind, "pointer": pointer, "frames": [String]()]
            if let inRange = rest.range(of: " in ") {
                var function = String(rest[inRange.upperBound...])
                if function.hasSuffix("()") { function.removeLast(2) }
                record["function"] = function
            }
            return record
        }

        /// "944K in about 20139 blocks (59 samples live)".
        static func site(_ text: String) -> [String: Any]? {
            let v = fields(text, ["", " in about ", " blocks (", " samples live)"])
            guard let bytes = v[0], lowestBytes(bytes) != nil, let blocks = v[1].flatMap({ Int($0) }),
                  let live = v[2].flatMap({ Int($0) }) else { return nil }
            return ["live_bytes": bytes, "live_blocks": blocks, "live_count": live]
        }

        /// "#3 __libc_start_main+0x85 (/lib/x86_64-linux-gnu/libc.so.6)" -> the frame's text.
        static func frameText(_ trimmed: String) -> String {
            let afterNumber = trimmed.dropFirst().drop { $0.isNumber }
            return String(afterNumber.dropFirst(afterNumber.hasPrefix(" ") ? 1 : 0))
        }

        // MARK: Bytes as the writer prints them

        /// The writer's byte figure (TextBuffer.append(bytes:)): 512B, 1.5K, 64.0K, 583K; tenths truncated.
        static func writerBytes(_ value: Int) -> String {
            if value < 1024 { return "\(value)B" }
            let units: [Character] = ["K", "M", "G", "T", "P"]
            var scaled = UInt64(value), unit = -1, tenths: UInt64 = 0
            while scaled >= 1024 && unit < 4 {
                tenths = (scaled % 1024) * 10 / 1024
                scaled /= 1024
                unit += 1
            }
            return "\(scaled)" + (scaled < 100 ? ".\(tenths)" : "") + String(units[unit])
        }

        /// The smallest value that prints as `text` (`upper`: the first value that prints larger).
        static func lowestBytes(_ text: String, upper: Bool = false) -> Int? {
            if text.hasSuffix("B") {
                guard let value = Int(text.dropLast()) else { return nil }
                return upper ? value + 1 : value
            }
            guard let unitChar = text.last, let unit = ["K", "M", "G", "T", "P"].firstIndex(of: String(unitChar)) else { return nil }
            let number = text.dropLast()
            let parts = number.split(separator: ".", omittingEmptySubsequences: false)
            guard let scaled = Int(parts[0]), parts.count <= 2 else { return nil }
            let scale = 1 << (10 * unit)   // the unit below the one printed
            if parts.count == 2 {
                guard parts[1].count == 1, let tenths = Int(parts[1]) else { return nil }
                let t = upper ? tenths + 1 : tenths
                // tenths = (r * 10) / 1024 for the remainder r: r >= ceil(t * 1024 / 10).
                let (high, overflow) = (scaled * 1024 + (t * 1024 + 9) / 10).multipliedReportingOverflow(by: scale)
                return overflow ? nil : high
            }
            let (value, overflow) = ((upper ? scaled + 1 : scaled) * 1024).multipliedReportingOverflow(by: scale)
            return overflow ? nil : value
        }

        /// The power of two nearest `value` (nil for 0).
        static func powerOfTwo(near value: Int) -> Int? {
            guard value > 0 else { return nil }
            let low = 1 << (Int.bitWidth - 1 - value.leadingZeroBitCount)
            if low == value || low >= 1 << 61 { return low }
            return value - low < low * 2 - value ? low : low * 2
        }

        // MARK: JSON paths

        static func set(_ json: inout [String: Any], _ path: String, _ value: Any) {
            let parts = path.split(separator: ".").map(String.init)
            guard parts.count == 2 else { json[path] = value; return }
            var object = json[parts[0]] as? [String: Any] ?? [:]
            object[parts[1]] = value
            json[parts[0]] = object
        }

        static func get(_ json: [String: Any], _ path: String) -> Any? {
            let parts = path.split(separator: ".").map(String.init)
            guard parts.count == 2 else { return json[path] }
            return (json[parts[0]] as? [String: Any])?[parts[1]]
        }
    }
}
