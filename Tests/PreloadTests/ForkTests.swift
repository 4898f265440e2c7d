import Foundation
import Testing

// fork in the places where an allocator's atfork handlers deadlock (glibc's tst-mallocfork,
// tst-mallocfork2 and tst-malloc-fork-deadlock, rewritten as Tests/Programs/fork_signal.c and
// fork_stdio.c). A deadlock is a hang, caught by the time-out; each run is a few seconds.
// `tools/fork-soak.sh` repeats them 100 times in a row (README, "Testing").

private enum Drivers {
    static let forkSignal = Result { try Harness.compileC("fork_signal") }
    static let forkStdio = Result { try Harness.compileC("fork_stdio") }
}

@Suite("fork: signal handlers, stdio locks")
struct ForkTests {
    /// A signal handler forks while the (single) thread is inside malloc or inside fork's own
    /// prepare handler: the handler must not wait for a lock its own thread holds.
    @Test("fork from a signal handler that interrupted malloc or fork", arguments: ["auto", "always"])
    func forkFromSignalHandler(threadSafety: String) throws {
        let program = try Drivers.forkSignal.get()
        let run = try ProgramRunner.runPreloaded([program, "1.5"], environment: ["BUDDY_THREAD_SAFETY": threadSafety], timeout: 30)
        let what = "fork_signal with BUDDY_THREAD_SAFETY=\(threadSafety)"
        #expect(run.result.status == 0 && run.result.signal == 0,
                "\(what): status \(run.result.status), signal \(run.result.signal); stderr: \(run.result.stderr.prefix(2000))")
        #expect(run.result.stdout.contains("fork_signal: ok "), "\(what): \(run.result.stdout)")
        ProgramRunner.expectLibraryUsed(run, what)
    }

    /// fork while one thread holds a stream's lock inside getline's realloc and another holds the
    /// stream list's lock in fflush(NULL) (glibc bug 19431).
    @Test("fork while getline reallocates and fflush(NULL) walks the streams")
    func forkWithStdioLocks() throws {
        let program = try Drivers.forkStdio.get()
        let run = try ProgramRunner.runPreloaded([program, "2"], timeout: 30)
        #expect(run.result.status == 0 && run.result.signal == 0,
                "fork_stdio: status \(run.result.status), signal \(run.result.signal); stderr: \(run.result.stderr.prefix(2000))")
        #expect(run.result.stdout.contains("fork_stdio: ok "), "fork_stdio: \(run.result.stdout)")
        ProgramRunner.expectLibraryUsed(run, "fork_stdio")
    }
}

@Suite("dlopen and dlclose")
struct DlcloseTests {
    /// A program that dlopens the library late, uses it from threads and dlcloses it while those
    /// threads live (and while the interval report thread runs): the library stays mapped
    /// (-z nodelete), so the thread-exit destructor and the interval thread find their code.
    @Test("dlclose after a late dlopen, with live threads and the interval thread", arguments: [false, true])
    func dlcloseKeepsTheLibrary(interval: Bool) throws {
        let program = try Harness.compileC("late_dlopen")
        let directory = try Harness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let environment = interval
            ? ["BUDDY_REPORT": directory.appendingPathComponent("report.%p").path, "BUDDY_REPORT_INTERVAL": "0.1"]
            : [:]
        let result = try Harness.run([program, try Harness.library], environment: environment, timeout: 30)
        #expect(result.status == 0 && result.signal == 0,
                "late_dlopen (interval \(interval)): status \(result.status), signal \(result.signal); stderr: \(result.stderr.prefix(2000))")
        #expect(result.stdout.contains("late_dlopen: ok"), "late_dlopen: \(result.stdout)")
        if interval {
            // The interval thread kept ticking after dlclose: its series reports exist.
            let series = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix("report.") }
            #expect(!series.isEmpty, "no interval report was written")
        }
    }
}
