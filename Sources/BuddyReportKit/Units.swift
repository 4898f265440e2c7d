import Foundation

/// Numbers as the library's own text report writes them: bytes in B/K/M/G (powers of 1024),
/// ratios in percent, times in the unit that keeps them short.
public enum Units {
    static let byteUnits = ["B", "K", "M", "G", "T", "P"]

    /// 0B, 512B, 1.0K, 583K, 2.6M, 4.0G: one decimal below 10 units, none above.
    public static func bytes(_ n: Int) -> String {
        if n < 0 { return "-" + bytes(-n) }
        if n < 1024 { return "\(n)B" }
        var value = Double(n)
        var unit = 0
        while unit < byteUnits.count - 1 {
            value /= 1024
            unit += 1
            // Round first, so 1023.9K reads 1.0M and not 1024K.
            if (value < 9.95 ? (value * 10).rounded() / 10 : value.rounded()) < 1024 { break }
        }
        return String(format: value < 9.95 ? "%.1f" : "%.0f", value) + byteUnits[unit]
    }

    /// +1.5M, -512B, 0B.
    public static func signedBytes(_ n: Int) -> String {
        n > 0 ? "+" + bytes(n) : bytes(n)
    }

    /// +150, -3, 0.
    public static func signedCount(_ n: Int) -> String {
        n > 0 ? "+\(n)" : "\(n)"
    }

    /// 0.143 -> "14.3%".
    public static func percent(_ ratio: Double) -> String {
        guard ratio.isFinite else { return "-" }
        return String(format: "%.1f%%", ratio * 100)
    }

    /// A change of a ratio in percentage points: "+3.2 pt".
    public static func signedPoints(_ delta: Double) -> String {
        String(format: "%+.1f pt", delta * 100)
    }

    /// Relative change: "+109%", "-50%", "new" when the old value is 0.
    public static func relative(_ old: Double, _ new: Double) -> String {
        if old == 0 { return new == 0 ? "" : "new" }
        let r = (new - old) / abs(old) * 100
        return abs(r) < 10 ? String(format: "%+.1f%%", r) : String(format: "%+.0f%%", r)
    }

    /// 0.42s, 4.4s, 1m12s, 2h03m.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "-" }
        if seconds < 10 { return String(format: "%.2fs", seconds) }
        if seconds < 60 { return String(format: "%.1fs", seconds) }
        let s = Int(seconds.rounded())
        if s < 3600 { return String(format: "%dm%02ds", s / 60, s % 60) }
        return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60)
    }

    /// 31 ns, 5.1 µs, 3.0 ms.
    public static func nanoseconds(_ ns: Double) -> String {
        if ns < 1000 { return String(format: "%.0f ns", ns) }
        if ns < 1_000_000 { return String(format: ns < 10_000 ? "%.1f µs" : "%.0f µs", ns / 1000) }
        return String(format: "%.1f ms", ns / 1_000_000)
    }
}

/// Horizontal bars of text: eighths of a cell with Unicode blocks, whole cells of `#` in ASCII.
public struct BarStyle: Sendable {
    public var ascii: Bool
    public var width: Int

    public init(ascii: Bool, width: Int = 30) {
        self.ascii = ascii
        self.width = width
    }

    static let eighths: [Character] = ["▏", "▎", "▍", "▌", "▋", "▊", "▉", "█"]

    /// A bar `fraction` (0...1) of the width; a non-zero fraction shows at least a sliver.
    public func bar(_ fraction: Double) -> String {
        let f = max(0, min(1, fraction.isFinite ? fraction : 0))
        if ascii {
            var cells = Int((f * Double(width)).rounded())
            if cells == 0 && f > 0 { cells = 1 }
            return String(repeating: "#", count: cells)
        }
        var eighthsTotal = Int((f * Double(width) * 8).rounded())
        if eighthsTotal == 0 && f > 0 { eighthsTotal = 1 }
        var out = String(repeating: "█", count: eighthsTotal / 8)
        if eighthsTotal % 8 > 0 { out.append(Self.eighths[eighthsTotal % 8 - 1]) }
        return out
    }

    /// The fill of each part of a stacked bar: live, cached, free.
    public var stackFills: [Character] { ascii ? ["#", "=", "."] : ["█", "▓", "░"] }

    /// A bar of parts, each `fraction` of the width, drawn with `stackFills`. The bar's length is
    /// the rounded sum (at least one cell when the sum is not zero); the cells go to the parts by
    /// largest remainder, so a part below half a cell may not show.
    public func stacked(_ fractions: [Double]) -> String {
        let fills = stackFills
        let exact = fractions.map { max(0, $0.isFinite ? $0 : 0) * Double(width) }
        let sum = exact.reduce(0, +)
        var total = min(width, Int(sum.rounded()))
        if total == 0 && sum > 0 { total = 1 }
        var cells = exact.map { Int($0.rounded(.down)) }
        var remaining = total - cells.reduce(0, +)
        let byRemainder = exact.indices.sorted { (exact[$0] - Double(cells[$0]), exact[$0]) > (exact[$1] - Double(cells[$1]), exact[$1]) }
        for i in byRemainder where remaining > 0 && exact[i] > 0 {
            cells[i] += 1
            remaining -= 1
        }
        var out = ""
        for (i, c) in cells.enumerated() { out += String(repeating: fills[i % fills.count], count: c) }
        return out
    }
}

/// A text table: a header row, then rows, columns padded to their widest cell.
struct TextTable {
    enum Alignment { case left, right }

    var columns: [(title: String, alignment: Alignment)]
    var rows: [[String]] = []
    var indent = "  "
    var showHeader = true

    init(_ columns: [(String, Alignment)]) {
        self.columns = columns.map { (title: $0.0, alignment: $0.1) }
    }

    mutating func add(_ row: [String]) { rows.append(row) }

    func render() -> [String] {
        var widths = columns.map { $0.title.count }
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for (i, column) in columns.enumerated() {
                let cell = i < cells.count ? cells[i] : ""
                let pad = String(repeating: " ", count: max(0, widths[i] - cell.count))
                // The last column is not padded on the right: no trailing spaces.
                if i == columns.count - 1 && column.alignment == .left {
                    parts.append(cell)
                } else {
                    parts.append(column.alignment == .right ? pad + cell : cell + pad)
                }
            }
            var text = indent + parts.joined(separator: "  ")
            while text.last == " " { text.removeLast() }
            return text
        }
        return (showHeader ? [line(columns.map(\.title))] : []) + rows.map(line)
    }
}

extension Units {
    /// "4096", "64K", "1.5M", "2G" (powers of 1024, as the library's options write them; a "B" or
    /// "iB" after the unit is allowed) -> bytes; nil when it is not a size.
    public static func parseBytes(_ text: String) -> Int? {
        var t = text.trimmingCharacters(in: .whitespaces).uppercased()
        if t.hasSuffix("IB") { t.removeLast(2) } else if t.hasSuffix("B") { t.removeLast() }
        let scales: [Character: Double] = ["K": 1024, "M": 1024 * 1024, "G": 1024 * 1024 * 1024, "T": 1024 * 1024 * 1024 * 1024]
        var scale = 1.0
        if let last = t.last, let s = scales[last] { scale = s; t.removeLast() }
        guard let value = Double(t), value >= 0, value.isFinite, value * scale < Double(Int.max) else { return nil }
        return Int((value * scale).rounded())
    }
}
