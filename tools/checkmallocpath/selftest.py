"""--self-test: small libraries built with gcc, on which the tool must fail or pass."""

import os
import shutil
import subprocess
import sys
import tempfile

from .check import check
from .commands import fail_usage


SELF_TEST_SOURCE = r"""
#include <stddef.h>
#define EXPORT __attribute__((visibility("default")))
#define LOCAL __attribute__((visibility("hidden"), noinline))
extern void *mmap(void *, size_t, int, int, int, long);
volatile int sink;
LOCAL void *swift_retain(void *object) { sink++; return object; }
LOCAL void *swift_once(void *object) { sink += 2; return object; }
LOCAL int helper(int x) { sink += x; return x * 3; }
LOCAL void tail_target(void) { swift_once((void *)0); }
LOCAL void callback(void) { swift_retain((void *)0); }
LOCAL void register_it(void (*volatile *slot)(void), void (*fn)(void)) { *slot = fn; }
void (*volatile hook)(void);
#if VARIANT == 1   /* a direct call chain: entry -> middle -> swift_retain */
LOCAL void *middle(void *p) { helper(1); return swift_retain(p); }
EXPORT void *entry(void *p) { helper(2); return middle(p); }
#elif VARIANT == 2 /* a tail jump: entry ends with jmp tail_target */
EXPORT void entry(void) { sink = 7; tail_target(); }
#elif VARIANT == 3 /* a callback whose address the export takes */
EXPORT void entry(void) { register_it(&hook, callback); }
#elif VARIANT == 4 /* an unresolvable indirect call */
EXPORT void entry(void (*fn)(void)) { helper(1); fn(); sink = 0; }
#elif VARIANT == 5 /* clean: a switch compiled to a jump table */
EXPORT int entry(int x) {
    switch (x) {
    case 0: return helper(1); case 1: sink = 5; return 7; case 2: return helper(9) + 1;
    case 3: sink = 8; return 2; case 4: return helper(4) * 2; case 5: sink = 1; return 11;
    case 6: return helper(6) - 3; case 7: sink = 2; return 13; default: return 0;
    }
}
#elif VARIANT == 6 /* a jump table with one case reaching swift_retain */
EXPORT int entry(int x) {
    switch (x) {
    case 0: return helper(1); case 1: sink = 5; return 7; case 2: return helper(9) + 1;
    case 3: sink = 8; return 2; case 4: swift_retain((void *)0); return 3; case 5: sink = 1; return 11;
    case 6: return helper(6) - 3; case 7: sink = 2; return 13; default: return 0;
    }
}
#elif VARIANT == 7 /* --signal-safe: a lock POSIX does not list as async-signal-safe */
extern int pthread_mutex_trylock(void *);
static char mutex[64];
EXPORT int entry(void) { helper(1); return pthread_mutex_trylock(mutex); }
#elif VARIANT == 8 /* --signal-safe: clean, write(2) only */
extern long write(int, const void *, size_t);
EXPORT long entry(void) { helper(1); return write(2, "x", 1); }
#elif VARIANT == 9 /* an Embedded Swift standard library function ($e..., not the project's) */
LOCAL void embedded_stdlib(void) __asm__("\"$es15__StringStorageCfD\"");  /* quoted: `$` starts an immediate */
LOCAL void embedded_stdlib(void) { sink += 3; }
EXPORT void entry(void) { helper(1); embedded_stdlib(); }
#elif VARIANT == 10 /* clean: an Embedded Swift function of the project's own module */
LOCAL void embedded_own(void) __asm__("\"$e19BuddyMallocEmbedded4mainyyF\"");
LOCAL void embedded_own(void) { sink += 3; }
EXPORT void entry(void) { helper(1); embedded_own(); }
#else              /* clean: reaches only local C code and mmap */
EXPORT void *entry(void *p) { helper(2); if (p) return mmap(0, 4096, 3, 0x22, -1, 0); return p; }
EXPORT void *unused_bad(void *p) { return p; }
#endif
"""


def self_test(script):
    """`script`: the path of tools/check-malloc-path.py, run on a stripped library (exit 2)."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        fail_usage("--self-test needs gcc")
    # (variant, expected exit status, label, --signal-safe)
    expectations = [(0, 0, "clean library", False), (1, 1, "direct call chain to swift_retain", False),
                    (2, 1, "tail jump to a function calling swift_once", False),
                    (3, 1, "callback (address taken) calling swift_retain", False),
                    (4, 1, "unresolvable indirect call", False),
                    (5, 0, "clean switch through a jump table", False),
                    (6, 1, "jump table with a case calling swift_retain", False),
                    (0, 1, "--signal-safe: mmap is not async-signal-safe", True),
                    (7, 1, "--signal-safe: pthread_mutex_trylock is not async-signal-safe", True),
                    (7, 0, "pthread_mutex_trylock without --signal-safe", False),
                    (8, 0, "--signal-safe: write only", True),
                    (9, 1, "an Embedded Swift standard library function", False),
                    (10, 0, "the project's own Embedded Swift function", False)]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "probe.c")
        with open(source, "w") as f:
            f.write(SELF_TEST_SOURCE)
        for variant, expected, label, signal_safe in expectations:
            lib = os.path.join(tmp, f"libprobe{variant}.so")
            if not os.path.exists(lib):
                subprocess.run([gcc, "-O2", "-shared", "-fPIC", f"-DVARIANT={variant}", "-o", lib, source], check=True)
            with open(os.devnull, "w") as devnull:
                status = check(lib, out=devnull, roots=["entry"] if signal_safe else None, signal_safe=signal_safe)
            verdict = "ok" if status == expected else "WRONG"
            failures += status != expected
            print(f"  self-test {verdict}: {label}: exit {status}, expected {expected}")
        # A stripped library cannot be checked: exit 2, never a pass.
        lib = os.path.join(tmp, "libprobe1.so")
        subprocess.run(["strip", lib], check=True)
        status = subprocess.run([sys.executable, os.path.abspath(script), lib],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        verdict = "ok" if status == 2 else "WRONG"
        failures += status != 2
        print(f"  self-test {verdict}: stripped library: exit {status}, expected 2")
    print("self-test passed" if failures == 0 else f"self-test FAILED ({failures})")
    return 0 if failures == 0 else 1
