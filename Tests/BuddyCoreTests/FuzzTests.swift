import Foundation
import Testing
@testable import BuddyEngine
@testable import BuddyMallocCore

// The operation-sequence fuzzer (FuzzDriver.swift) in the test suite: the committed corpus
// (Tests/Fuzz/corpus, seeds and whatever tools/fuzz.sh found worth keeping), then seeded random
// inputs (about 3 s). FUZZ_RUNS raises their number (default 200, of 16 to 527 bytes) and
// FUZZ_SEED changes the seed, for a longer run without libFuzzer:
//     FUZZ_RUNS=20000 FUZZ_SEED=7 swift test --filter FuzzTests

private let corpusDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz/corpus")

private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

@Suite("Fuzz")
struct FuzzTests {
    @Test("the corpus replays with every check holding")
    func corpus() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: corpusDirectory.path).sorted()
        #expect(names.count >= 8, "the corpus has \(names.count) inputs")
        var operations = 0
        for name in names {
            let input = [UInt8](try Data(contentsOf: corpusDirectory.appendingPathComponent(name)))
            var count = 0
            let failure = FuzzRun.run(input, quiet: true, operations: &count)
            operations += count
            #expect(failure == nil, "corpus input \(name): \(failure.map { "\($0)" } ?? "")")
        }
        #expect(operations > 500)
    }

    @Test("seeded random inputs, every target and configuration")
    func seededRandomInputs() {
        let environment = ProcessInfo.processInfo.environment
        let runs = environment["FUZZ_RUNS"].flatMap(Int.init) ?? 200
        let seed = environment["FUZZ_SEED"].flatMap(UInt64.init) ?? 13
        var random = FuzzRandom(state: seed)
        var failures = 0
        for run in 0..<runs {
            var input = random.input(count: 16 + Int(random.next() % 512))
            // Every fourth input one of each target: the header's low two bits.
            input[0] = input[0] & ~3 | UInt8(run & 3)
            if let failure = FuzzRun.run(input, quiet: true) {
                failures += 1
                Issue.record("random input \(run) (seed \(seed)): \(failure)\ninput: \(hex(input))")
                if failures >= 3 { return }
            }
        }
    }
}
