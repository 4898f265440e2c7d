#!/usr/bin/env python3
"""check-malloc-path.py: prove that no Swift runtime entry is reachable from a library's exports.

    tools/check-malloc-path.py .build/debug/libBuddyMalloc.so
    tools/check-malloc-path.py --verbose .build/release/libBuddyMalloc.so
    tools/check-malloc-path.py --roots malloc,free LIB     # walk from these functions only
    tools/check-malloc-path.py --signal-safe --roots buddy_report_signal_handler LIB
                                                           # and only async-signal-safe libc calls
    tools/check-malloc-path.py --self-test                 # prove the checker can fail

libBuddyMalloc.so is Embedded Swift: what it keeps of the runtime and the standard library
(swift_once, swift_allocObject, `$es...` functions) are local symbols inside the library, so
"which symbols are undefined" says nothing. Instead this
tool disassembles the library (objdump -d), builds the call graph from direct call and jump
targets (tail jumps and conditional jumps into another function included), GOT-indirect calls
(resolved through the dynamic relocations), and function addresses taken by code (lea/mov of a
function: callbacks such as pthread_atfork handlers), with PLT entries as leaves. It walks the graph
from every exported function (GLOBAL or WEAK defined FUNC symbols of .dynsym) and fails when a
reachable function is forbidden:

  - any `swift_*` / `_swift_*` / `__swift_*` function (swift_allocObject, swift_retain,
    swift_release, swift_once, swift_beginAccess, swift_getGenericMetadata, ...): runtime entries
    that allocate, instantiate metadata, take runtime locks or check exclusivity;
  - any Swift symbol (`$s...`, or `$e...` in Embedded Swift) that does not belong to one of the
    project's modules: standard
    library code (ContiguousArrayBuffer, _StringGuts, print, ...) that is not inlined;
  - any C++ symbol (`_Z...`): the Swift runtime's internals, operator new, static-init guards;
  - a register- or memory-indirect call or jump the tool cannot resolve (it could reach anything),
    unless the calling function is an allowed exception below. Resolved, so not problems: calls
    through the GOT (by relocation), PIC switch jump tables whose entries land in the same
    function, and Swift merged functions (`...Tm`) whose function-pointer parameters are the
    addresses their direct callers take (those addresses are edges, walked and checked).

Code outside every sized function symbol (outlined or deduplicated code without a name) is a node
of its own ("unnamed code at 0x..."), never counted as part of the function before it.

With --signal-safe (for a signal handler's roots), every function outside the library that the
walk reaches must also be async-signal-safe: on POSIX's list as signal-safety(7) gives it
(ASYNC_SIGNAL_SAFE below), or one of the few SIGNAL_SAFE_EXTRA names with their reason. Anything
else (malloc, pthread_mutex_trylock, mmap, nanosleep, getpagesize, round, ...) fails, with its
path. System calls the library issues with its own instruction (`syscall`, `svc`) are no calls:
the tool lists the functions that contain one.

Exit status: 0 clean, 1 a forbidden function is reachable (the path from the export is printed),
2 the tool could not check (no symbol table, objdump missing, no exports...). It never passes a
library it could not analyse.
"""

import sys

sys.dont_write_bytecode = True  # running the check leaves no __pycache__ in the source tree

# The tables named above (ASYNC_SIGNAL_SAFE, SIGNAL_SAFE_EXTRA, ALLOWED_INDIRECT_CALLERS, ...) are in
# checkmallocpath/rules.py.
from checkmallocpath.cli import main  # noqa: E402  (tools/checkmallocpath/, beside this script)

if __name__ == "__main__":
    main(__doc__, __file__)
