import Foundation

/// What is wrong with a report file, as one line: "FILE: what is wrong".
public struct ReportError: Error, CustomStringConvertible, Equatable, Sendable {
    public var file: String
    public var message: String

    public init(file: String, _ message: String) {
        self.file = file
        self.message = message
    }

    public var description: String { file.isEmpty ? message : "\(file): \(message)" }
}

/// One report read from a file, with where it came from.
public struct ReportDocument: Sendable {
    public var report: Report
    /// The document's JSON text, as the file holds it (unknown fields included).
    public var raw: Data
    public var file: String
    /// 1-based position of the document in its file.
    public var index: Int
    /// The line of the file where the document starts.
    public var line: Int

    /// "FILE" for a file's only document, "FILE, report N" for one of a stream.
    public var label: String
}

/// The reports of one file: one document, or a stream of them (one after another, each on its own
/// line, or pretty-printed over several lines).
public struct ReportFile: Sendable {
    public var documents: [ReportDocument]
    /// Things the reader skipped (an incomplete last document, lines of other text in a stream).
    public var warnings: [String]
}

public enum ReportLoader {
    /// Reads every report of the file at `path`.
    public static func load(path: String) throws(ReportError) -> ReportFile {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
                throw ReportError(file: path, isDirectory.boolValue ? "is a directory, not a report file" : "cannot be read")
            }
            throw ReportError(file: path, "no such file")
        }
        return try parse(data, file: path)
    }

    /// Reads the reports of several files, in order; every document of every file.
    public static func loadAll(paths: [String]) throws(ReportError) -> (documents: [ReportDocument], warnings: [String]) {
        var documents: [ReportDocument] = []
        var warnings: [String] = []
        for path in paths {
            let file = try load(path: path)
            documents += file.documents
            warnings += file.warnings
        }
        return (documents, warnings)
    }

    /// Reads the reports in `data`; `file` names it in messages.
    public static func parse(_ data: Data, file: String) throws(ReportError) -> ReportFile {
        let bytes = [UInt8](data)
        guard bytes.contains(where: { !isSpace($0) }) else {
            throw ReportError(file: file, "empty: no report in it")
        }
        // The usual case first: the whole file is one JSON value.
        if let whole = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) {
            let document = try validate(whole, data: data, file: file, index: 1, line: 1, label: file, inStream: false)
            return ReportFile(documents: [document], warnings: [])
        }
        // The library's text reports (BUDDY_REPORT_FORMAT=text, the default), one or a stream.
        let text = String(decoding: bytes, as: UTF8.self)
        if TextReportReader.looksLikeText(text.split(separator: "\n", omittingEmptySubsequences: false)) {
            return try TextReportReader.parse(text, file: file)
        }
        // A stream: top-level objects one after another (other lines, as on a stderr, are skipped).
        let scan = split(bytes)
        if scan.objects.isEmpty {
            if let incomplete = scan.incomplete {
                throw ReportError(file: file, "not JSON: the document starting at line \(incomplete.line) is incomplete (the process may still be writing it, or was killed)")
            }
            let first = firstLine(bytes)
            throw ReportError(file: file, "not JSON (line 1 reads \"\(first)\")")
        }
        var documents: [ReportDocument] = []
        var warnings: [String] = []
        let many = scan.objects.count > 1 || scan.incomplete != nil
        for (n, object) in scan.objects.enumerated() {
            let chunk = Data(bytes[object.range])
            let label = many ? "\(file), report \(n + 1) (line \(object.line))" : file
            let value: Any
            do {
                value = try JSONSerialization.jsonObject(with: chunk)
            } catch {
                throw ReportError(file: file, "\(many ? "report \(n + 1) (line \(object.line)): " : "")not JSON: \(describe(error, lineOffset: object.line - 1))")
            }
            documents.append(try validate(value, data: chunk, file: file, index: n + 1, line: object.line, label: label, inStream: many))
        }
        if let incomplete = scan.incomplete {
            warnings.append("\(file): ignored the incomplete document at line \(incomplete.line) (the process may still be writing it, or was killed)")
        }
        if scan.skippedLines > 0 {
            warnings.append("\(file): skipped \(scan.skippedLines) line\(scan.skippedLines == 1 ? "" : "s") of other text between the reports")
        }
        return ReportFile(documents: documents, warnings: warnings)
    }

    // MARK: - Checks

    /// Checks that `value` is a BuddyMalloc report this reader understands, and decodes it.
    static func validate(_ value: Any, data: Data, file: String, index: Int, line: Int, label: String,
                         inStream: Bool) throws(ReportError) -> ReportDocument {
        let prefix = inStream ? "report \(index) (line \(line)): " : ""
        func fail(_ message: String) -> ReportError { ReportError(file: file, prefix + message) }
        guard let object = value as? [String: Any] else {
            throw fail("not a BuddyMalloc report: the JSON is \(kind(of: value)), not an object with \"format\": \"\(Report.formatName)\"")
        }
        guard let format = object["format"] else {
            throw fail("not a BuddyMalloc report: it has no \"format\" field (expected \"\(Report.formatName)\")")
        }
        guard let name = format as? String, name == Report.formatName else {
            throw fail("not a BuddyMalloc report: its format is \(render(format)), expected \"\(Report.formatName)\"")
        }
        guard let rawVersion = object["version"] else {
            throw fail("missing field \"version\" at the top level")
        }
        guard let version = rawVersion as? Int else {
            throw fail("field \"version\" is \(render(rawVersion)), expected an integer")
        }
        if version > Report.newestVersion {
            throw fail("report version \(version) is newer than this buddy-report reads (up to version \(Report.newestVersion)): update buddy-report")
        }
        if version < 1 {
            throw fail("unknown report version \(version)")
        }
        do {
            let report = try JSONDecoder().decode(Report.self, from: data)
            return ReportDocument(report: report, raw: data, file: file, index: index, line: line, label: label)
        } catch let error as DecodingError {
            throw fail(describe(error))
        } catch {
            throw fail("cannot be read: \(error)")
        }
    }

    /// "missing field "used" at memory", "field orders[2].live: expected Int, found a string".
    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, let context):
            return "missing field \"\(key.stringValue)\" at \(path(context.codingPath))"
        case .valueNotFound(_, let context):
            return "field \(path(context.codingPath)) is null"
        case .typeMismatch(let type, let context):
            return "field \(path(context.codingPath)) has the wrong type (expected \(typeName(type))): \(context.debugDescription)"
        case .dataCorrupted(let context):
            return "field \(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    /// A coding path as a JSON path: `memory.used`, `orders[3].live`; "the top level" when empty.
    static func path(_ codingPath: [any CodingKey]) -> String {
        var out = ""
        for key in codingPath {
            if let index = key.intValue {
                out += "[\(index)]"
            } else {
                out += (out.isEmpty ? "" : ".") + key.stringValue
            }
        }
        return out.isEmpty ? "the top level" : out
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "an integer"
        case is Double.Type: return "a number"
        case is String.Type: return "a string"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") || name.hasPrefix("KeyedDecodingContainer") { return "an object" }
            return name
        }
    }

    static func kind(of value: Any) -> String {
        switch value {
        case is [Any]: return "an array"
        case is String: return "a string"
        case is NSNull: return "null"
        case is Bool: return "a boolean"
        case is NSNumber: return "a number"
        default: return "not an object"
        }
    }

    /// A JSON value as it would be written, shortened: "\"foo\"", "2", "null".
    static func render(_ value: Any) -> String {
        if let string = value as? String { return "\"\(string.prefix(40))\"" }
        if value is NSNull { return "null" }
        if let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]),
           let text = String(data: data, encoding: .utf8) {
            return String(text.prefix(40))
        }
        return "\(value)"
    }

    /// JSONSerialization's message without its boilerplate, its line moved by `lineOffset`.
    static func describe(_ error: any Error, lineOffset: Int) -> String {
        let nsError = error as NSError
        guard var text = nsError.userInfo[NSDebugDescriptionErrorKey] as? String else {
            return nsError.localizedDescription
        }
        if lineOffset > 0, let range = text.range(of: #"line (\d+)"#, options: .regularExpression),
           let n = Int(text[range].dropFirst(5)) {
            text.replaceSubrange(range, with: "line \(n + lineOffset)")
        }
        return text
    }

    // MARK: - Splitting a stream

    struct Scan {
        var objects: [(range: Range<Int>, line: Int)] = []
        var incomplete: (start: Int, line: Int)?
        var skippedLines = 0
    }

    /// Finds the top-level JSON objects in `bytes` by matching braces outside strings. Text between
    /// objects that is not an object is skipped a line at a time.
    static func split(_ bytes: [UInt8]) -> Scan {
        var scan = Scan()
        var i = 0
        var line = 1
        let n = bytes.count
        while i < n {
            let c = bytes[i]
            if c == UInt8(ascii: "\n") { line += 1; i += 1; continue }
            if isSpace(c) { i += 1; continue }
            if c != UInt8(ascii: "{") {
                // Not an object: skip the rest of the line.
                while i < n && bytes[i] != UInt8(ascii: "\n") { i += 1 }
                scan.skippedLines += 1
                continue
            }
            let start = i
            let startLine = line
            var depth = 0
            var inString = false
            var escaped = false
            var end: Int?
            while i < n {
                let b = bytes[i]
                if b == UInt8(ascii: "\n") { line += 1 }
                if inString {
                    if escaped { escaped = false }
                    else if b == UInt8(ascii: "\\") { escaped = true }
                    else if b == UInt8(ascii: "\"") { inString = false }
                } else if b == UInt8(ascii: "\"") {
                    inString = true
                } else if b == UInt8(ascii: "{") || b == UInt8(ascii: "[") {
                    depth += 1
                } else if b == UInt8(ascii: "}") || b == UInt8(ascii: "]") {
                    depth -= 1
                    if depth == 0 { end = i + 1; i += 1; break }
                }
                i += 1
            }
            guard let end else {
                scan.incomplete = (start, startLine)
                break
            }
            scan.objects.append((start..<end, startLine))
        }
        return scan
    }

    static func isSpace(_ c: UInt8) -> Bool {
        c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09
    }

    /// The first non-empty line, shortened, for messages.
    static func firstLine(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes.prefix(400), as: UTF8.self)
        let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        let printable = String(trimmed.unicodeScalars.map { $0.properties.isWhitespace || $0.value >= 0x20 && $0.value != 0xFFFD ? Character($0) : "?" })
        return printable.count > 40 ? printable.prefix(40) + "..." : printable
    }
}

/// Reports grouped by process: each pid's reports in the order they were written.
public struct ReportSeries: Sendable {
    public var documents: [ReportDocument]

    public init(_ documents: [ReportDocument]) {
        self.documents = documents
    }

    /// The pids in the order they first appear.
    public var pids: [Int] {
        var seen = Set<Int>()
        return documents.map(\.report.pid).filter { seen.insert($0).inserted }
    }

    /// One process's reports, oldest first (by sequence, then time).
    public func reports(pid: Int) -> [ReportDocument] {
        documents.filter { $0.report.pid == pid }.sorted {
            ($0.report.sequence, $0.report.time?.now ?? 0) < ($1.report.sequence, $1.report.time?.now ?? 0)
        }
    }

    /// The process with the most reports (the first such one): the one a series is about.
    public var mainPid: Int? {
        let counts = Dictionary(grouping: documents, by: \.report.pid).mapValues(\.count)
        let most = counts.values.max()
        return pids.first { counts[$0] == most }
    }
}
