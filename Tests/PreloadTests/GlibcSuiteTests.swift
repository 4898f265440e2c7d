import Foundation
import Testing

// glibc's malloc test suite, public-API part, rewritten for this project (issue 13): one C program
// per original in Tests/Programs/glibc (README, "Tests"), plus fork_signal.c and fork_stdio.c
// (ForkTests), which already have the shapes of tst-mallocfork, tst-mallocfork2 and
// tst-malloc-fork-deadlock. Each program runs on glibc (the control: it must pass there) and
// under the preload, where the library must have served it: the program names the object its
// malloc came from and malloc_usable_size(malloc(100)) (128 from the pool, 104 from glibc), and
// the exit report counts allocations. Arguments run in parallel; the whole suite takes ~20 s.

struct GlibcProgram: CustomTestStringConvertible, Sendable {
    /// glibc's test (malloc/tst-*.c).
    var original: String
    /// The program under Tests/Programs, without ".c".
    var program: String
    var arguments: [String] = []
    /// The line a passing run prints (its start).
    var success: String
    /// Why the preloaded run is expected to fail today (a defect being fixed elsewhere), or nil.
    var knownIssue: String? = nil

    var testDescription: String { "\(original) (\(program))" }
    /// A program of Tests/Programs/glibc: it prints "<name>: ok ...; malloc from <object>; ...".
    var reportsAllocator: Bool { program.hasPrefix("glibc/") }

    static func glibc(_ original: String, _ name: String, _ arguments: [String] = [], knownIssue: String? = nil) -> GlibcProgram {
        GlibcProgram(original: original, program: "glibc/\(name)", arguments: arguments, success: "\(name): ok ",
                     knownIssue: knownIssue)
    }

    static let all: [GlibcProgram] = [
        .glibc("tst-malloc", "glibc_malloc"),
        .glibc("tst-calloc", "glibc_calloc"),
        .glibc("tst-realloc", "glibc_realloc"),
        .glibc("tst-reallocarray", "glibc_reallocarray"),
        .glibc("tst-memalign", "glibc_memalign"),
        .glibc("tst-posix_memalign", "glibc_posix_memalign"),
        .glibc("tst-aligned-alloc", "glibc_aligned_alloc"),
        .glibc("tst-valloc", "glibc_valloc"),
        .glibc("tst-pvalloc", "glibc_pvalloc"),
        .glibc("tst-malloc-usable", "glibc_malloc_usable"),
        .glibc("tst-malloc-too-large", "glibc_malloc_too_large"),
        .glibc("tst-free-errno", "glibc_free_errno"),
        .glibc("tst-mallinfo2", "glibc_mallinfo2"),
        .glibc("tst-malloc_info", "glibc_malloc_info"),
        .glibc("tst-trim1", "glibc_trim1"),
        .glibc("tst-malloc-thread-exit", "glibc_malloc_thread_exit", ["2"]),
        .glibc("tst-malloc-thread-fail", "glibc_malloc_thread_fail"),
        // Shared with ForkTests: a signal handler forks while the thread is inside malloc or fork.
        GlibcProgram(original: "tst-mallocfork, tst-mallocfork2", program: "fork_signal", arguments: ["1.5"],
                     success: "fork_signal: ok "),
        // Shared with ForkTests: fork while getline reallocates and fflush(NULL) walks the streams.
        GlibcProgram(original: "tst-malloc-fork-deadlock", program: "fork_stdio", arguments: ["2"],
                     success: "fork_stdio: ok "),
    ]
}

@Suite("glibc's malloc tests, rewritten")
struct GlibcSuiteTests {
    @Test("passes on glibc and under the preload", arguments: GlibcProgram.all)
    func program(_ entry: GlibcProgram) throws {
        let path = try Harness.compileC(entry.program)
        let what = entry.testDescription

        // The control: glibc's own malloc.
        let plain = try Harness.run([path] + entry.arguments, timeout: 60)
        #expect(plain.status == 0 && plain.signal == 0 && plain.stdout.contains(entry.success),
                "\(what) fails on glibc (status \(plain.status), signal \(plain.signal)):\n\(plain.stdout.suffix(3000))\n\(plain.stderr.suffix(1000))")
        if entry.reportsAllocator {
            #expect(plain.stdout.contains("malloc from libc.so"), "\(what): the control run's malloc was not glibc's:\n\(plain.stdout.suffix(500))")
        }

        // Under the preload.
        let run = try ProgramRunner.runPreloaded([path] + entry.arguments, timeout: 60)
        let check = {
            #expect(run.result.status == 0 && run.result.signal == 0 && run.result.stdout.contains(entry.success),
                    "\(what) fails under the preload (status \(run.result.status), signal \(run.result.signal)):\n\(run.result.stdout.suffix(3000))\n\(run.result.stderr.suffix(1000))")
        }
        if let reason = entry.knownIssue {
            withKnownIssue(Comment(rawValue: reason)) { check() }
        } else {
            check()
        }
        if entry.reportsAllocator && run.result.stdout.contains(entry.success) {
            #expect(run.result.stdout.contains("malloc from libBuddyMalloc.so; malloc_usable_size(malloc(100)) = 128"),
                    "\(what): the preloaded run's malloc was not the pool's:\n\(run.result.stdout.suffix(500))")
        }
        ProgramRunner.expectLibraryUsed(run, what)
    }
}

@Suite("glibc's introspection calls on a busy pool")
struct IntrospectionBusyTests {
    /// mallinfo2 waits for the pool lock like glibc's waits for its arena's: while another thread
    /// keeps the pool busy, every call still reports the pool (found by the tst-malloc_info
    /// rewrite: the calls used to only try the lock and answered glibc's figures or zeros).
    @Test("mallinfo2 sees the pool while another thread takes its lock")
    func mallinfoWaitsForThePool() throws {
        let program = try Harness.compileC("introspection_busy")
        let run = try ProgramRunner.runPreloaded([program, "3000"], timeout: 60)
        #expect(run.result.status == 0 && run.result.stdout.contains("introspection_busy: ok"),
                "status \(run.result.status) signal \(run.result.signal): \(run.result.stdout) \(run.result.stderr.prefix(1000))")
        ProgramRunner.expectLibraryUsed(run, "introspection_busy")
    }
}
