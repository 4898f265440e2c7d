import Foundation
import Testing
@testable import BuddyReportKit

/// Every error names the file and what is wrong with it, in one line.
@Suite struct ErrorTests {
    func message(_ name: String) -> String {
        do {
            _ = try Support.load(name)
            return "no error"
        } catch {
            return error.description
        }
    }

    func message(json: String, file: String = "x.json") -> String {
        do {
            _ = try ReportLoader.parse(Data(json.utf8), file: file)
            return "no error"
        } catch {
            return error.description
        }
    }

    @Test func notJSON() {
        #expect(message("not-json.txt") == Support.fixture("not-json.txt") + #": not JSON (line 1 reads "Hello, this is not JSON.")"#)
        // (Text reports are read: TextReportTests. This one is of an older library's format.)
        #expect(message("text-report.txt").hasPrefix(Support.fixture("text-report.txt") + ": a text report this buddy-report cannot read: "))
        #expect(message(json: "{\"format\": \"buddymalloc-report\", \"version\": 1,,}")
            .hasPrefix("x.json: not JSON: "))
        #expect(message(json: "  \n") == "x.json: empty: no report in it")
        #expect(message(json: "{\"format\": \"buddymalloc-report\"") == "x.json: not JSON: the document starting at line 1 is incomplete (the process may still be writing it, or was killed)")
    }

    @Test func notABuddyMallocReport() {
        #expect(message("wrong-format.json") == Support.fixture("wrong-format.json")
            + #": not a BuddyMalloc report: its format is "mimalloc-stats", expected "buddymalloc-report""#)
        #expect(message(json: #"{"name": "left-pad", "version": "1.3.0"}"#)
            == #"x.json: not a BuddyMalloc report: it has no "format" field (expected "buddymalloc-report")"#)
        #expect(message(json: "[1, 2]") == #"x.json: not a BuddyMalloc report: the JSON is an array, not an object with "format": "buddymalloc-report""#)
    }

    @Test func aNewerVersion() {
        #expect(message("newer-version.json") == Support.fixture("newer-version.json")
            + ": report version 2 is newer than this buddy-report reads (up to version 1): update buddy-report")
    }

    @Test func aMissingField() {
        #expect(message("missing-field.json") == Support.fixture("missing-field.json") + #": missing field "used" at memory"#)
        var object = try! JSONSerialization.jsonObject(with: Data(contentsOf: Support.fixtures.appendingPathComponent("python-exit.json"))) as! [String: Any]
        var orders = object["orders"] as! [[String: Any]]
        orders[2].removeValue(forKey: "live")
        object["orders"] = orders
        let json = String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        #expect(message(json: json) == #"x.json: missing field "live" at orders[2]"#)
        #expect(message(json: #"{"format": "buddymalloc-report", "pid": 1}"#) == #"x.json: missing field "version" at the top level"#)
        #expect(message(json: #"{"format": "buddymalloc-report", "version": 1, "memory": {}}"#) == #"x.json: missing field "pid" at the top level"#)
    }

    @Test func aWrongType() {
        let json = #"{"format": "buddymalloc-report", "version": 1, "pid": 1, "memory": {"reserved": "4M", "used": 0, "free": 0}, "calls": {}, "orders": []}"#
        #expect(message(json: json).hasPrefix("x.json: field memory.reserved has the wrong type (expected an integer)"))
    }

    /// In a stream, the message says which report.
    @Test func whichReportOfAStream() throws {
        let lines = try String(contentsOfFile: Support.fixture("series.jsonl"), encoding: .utf8).split(separator: "\n")
        let broken = lines[1].replacingOccurrences(of: #""version":1"#, with: #""version":7"#)
        let json = [String(lines[0]), broken, String(lines[2])].joined(separator: "\n")
        #expect(message(json: json, file: "s.jsonl") == "s.jsonl: report 2 (line 2): report version 7 is newer than this buddy-report reads (up to version 1): update buddy-report")
    }

    @Test func noSuchFile() {
        #expect(message("does-not-exist.json") == Support.fixture("does-not-exist.json") + ": no such file")
    }

    /// The command line: one line on stderr, a non-zero status, no stack trace.
    @Test(.enabled(if: Support.tool != nil, "the buddy-report executable is built by swift test"),
          arguments: ["not-json.txt", "wrong-format.json", "newer-version.json", "missing-field.json", "does-not-exist.json"])
    func theToolFailsWithOneLine(_ name: String) throws {
        for command in [["show"], ["diff", Support.fixture("python-exit.json")], ["plot", "-o", "/tmp/unused.svg"]] {
            let result = try Support.runTool(command + [Support.fixture(name)])
            #expect(result.status == 1)
            #expect(result.stdout.isEmpty)
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1, "\(result.stderr)")
            #expect(lines.first?.hasPrefix("buddy-report: \(Support.fixture(name)): ") == true)
        }
    }
}
