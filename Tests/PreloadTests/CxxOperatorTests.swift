import Foundation
import Testing

// C++'s operator new and delete, defined by the library (Sources/BuddyMallocExports/
// cxx_operators.c), in a C++ program under the preload: Tests/Programs/cxx_operators.cpp.

private enum Driver {
    static let program = Result { try Harness.compileCxx("cxx_operators") }
}

@Suite("C++ operator new and delete")
struct CxxOperatorTests {
    /// Every form binds to the library, serves pool blocks and keeps its bytes and alignment; out
    /// of memory, the nothrow forms return nullptr and the others run the program's new_handler and
    /// throw std::bad_alloc (the standard's loop, which the library hands to libstdc++); delete
    /// keeps errno. The same program on glibc is the control: its operators are libstdc++'s.
    @Test(.enabled(if: Harness.has("g++"), "g++ is not installed"))
    func everyFormUnderThePreload() throws {
        let program = try Driver.program.get()
        let control = try Harness.run([program], timeout: 60)
        #expect(control.status == 0 && control.stdout.hasSuffix("cxx: ok\n"), "on glibc: \(control.stdout) \(control.stderr)")
        #expect(control.stdout.contains("which=") && !control.stdout.contains("libBuddyMalloc"), "on glibc: \(control.stdout)")
        for environment in [[:], ["BUDDY_THREAD_SAFETY": "always"]] {
            let run = try ProgramRunner.runPreloaded([program], environment: environment, timeout: 60)
            let what = "cxx_operators with \(environment)"
            #expect(run.result.status == 0 && run.result.signal == 0 && run.result.stdout.hasSuffix("cxx: ok\n"),
                    "\(what): status \(run.result.status), signal \(run.result.signal); stdout:\n\(run.result.stdout)\nstderr:\n\(run.result.stderr.prefix(4000))")
            let lines = run.result.stdout.split(separator: "\n")
            #expect(lines.contains { $0.hasPrefix("which=") && $0.hasSuffix("libBuddyMalloc.so") }, "\(what): operator new is not the library's: \(run.result.stdout)")
            #expect(lines.contains { $0.hasPrefix("which-delete=") && $0.hasSuffix("libBuddyMalloc.so") }, "\(what): operator delete is not the library's: \(run.result.stdout)")
            // The pool's block for 100 bytes (glibc's chunk gives 104).
            #expect(lines.contains("usable=128"), "\(what): \(run.result.stdout)")
            ProgramRunner.expectLibraryUsed(run, what)
        }
    }

    /// A pointer deleted twice is caught as free catches it (operator delete is free), and with
    /// BUDDY_ON_ERROR=log the program goes on.
    @Test(.enabled(if: Harness.has("g++"), "g++ is not installed"))
    func deletingTwiceIsCaught() throws {
        let program = try Harness.compileCxx("cxx_double_delete")
        let run = try ProgramRunner.runPreloaded([program], environment: ["BUDDY_ON_ERROR": "log"], timeout: 60)
        #expect(run.result.status == 0 && run.result.stdout.hasSuffix("deleted twice\n"), "status \(run.result.status): \(run.result.stdout) \(run.result.stderr.prefix(2000))")
        #expect(run.result.stderr.contains("double free"), "no double free reported: \(run.result.stderr.prefix(2000))")
        let aborted = try ProgramRunner.runPreloaded([program], timeout: 60)
        #expect(aborted.result.signal == SIGABRT, "the default strategy (abort): status \(aborted.result.status), signal \(aborted.result.signal)")
    }
}
