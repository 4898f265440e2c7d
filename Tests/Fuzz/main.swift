// The libFuzzer entry point of the operation-sequence fuzzer (Tests/BuddyCoreTests/FuzzDriver.swift).
// Not a SwiftPM target: tools/fuzz.sh compiles it with the engine and malloc core sources and the driver into
// one module with `swiftc -sanitize=fuzzer,address -D BUDDY_FUZZER`. A failed check prints the
// step and aborts, so libFuzzer saves the input (crash-<sha1>) and prints it.
import Glibc

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    // FUZZ_QUIET unset: C pools may use on_error = log (one stderr line per bad free).
    if let failure = FuzzRun.run(input, quiet: getenv("FUZZ_QUIET") != nil) {
        fputs("buddy fuzz: \(failure)\n", stderr)
        abort()
    }
    return 0
}
