#!/usr/bin/env python3
"""check-malloc-path.py: prove that no Swift runtime entry is reachable from a library's exports.

    tools/check-malloc-path.py .build/debug/libBuddyMalloc.so
    tools/check-malloc-path.py --verbose .build/release/libBuddyMalloc.so
    tools/check-malloc-path.py --roots malloc,free LIB     # walk from these functions only
    tools/check-malloc-path.py --signal-safe --roots buddy_report_signal_handler LIB
                                                           # and only async-signal-safe libc calls
    tools/check-malloc-path.py --self-test                 # prove the checker can fail

libBuddyMalloc.so links the Swift runtime statically (-static-stdlib): the runtime's functions
are local symbols inside the library, so "which symbols are undefined" says nothing. Instead this
tool disassembles the library (objdump -d), builds the call graph from direct call and jump
targets (tail jumps and conditional jumps into another function included), GOT-indirect calls
(resolved through the dynamic relocations), and function addresses taken by code (lea/mov of a
function: callbacks such as pthread_atfork handlers), with PLT entries as leaves. It walks the graph
from every exported function (GLOBAL or WEAK defined FUNC symbols of .dynsym) and fails when a
reachable function is forbidden:

  - any `swift_*` / `_swift_*` / `__swift_*` function (swift_allocObject, swift_retain,
    swift_release, swift_once, swift_beginAccess, swift_getGenericMetadata, ...): runtime entries
    that allocate, instantiate metadata, take runtime locks or check exclusivity;
  - any Swift symbol (`$s...`) that does not belong to one of the project's modules: standard
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

import argparse
import bisect
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import deque

# Swift modules of this project: their symbols are ours (their callees are still checked).
PROJECT_MODULES = ("BuddyEngine", "BuddyMallocCore", "CBuddySupport", "BuddyMallocAPI", "BuddyMallocExports")

# Forbidden external (PLT/GOT) names besides the prefix rules: they allocate or lock inside
# runtimes that call back into malloc.
FORBIDDEN_EXTERNAL_PREFIXES = ("swift_", "_swift_", "__swift", "_Z", "__cxa_guard", "__cxa_allocate",
                               "$s", "_$s")

# Allowed exceptions: function name -> reason. Keep this short and justified.
ALLOWED_FUNCTIONS = {
    # (none: no Swift runtime function is allowed on the allocator's path)
}

# Async-signal-safe functions: the table of signal-safety(7) (man-pages 6.03), which is POSIX.1's
# list (XSH 2.4.3) up to POSIX.1-2008 TC2. Not listed there, so not here: nanosleep, getpagesize,
# mincore, round, pthread_mutex_*, and of course every allocator function.
ASYNC_SIGNAL_SAFE = frozenset("""
    abort accept access aio_error aio_return aio_suspend alarm bind cfgetispeed cfgetospeed
    cfsetispeed cfsetospeed chdir chmod chown clock_gettime close connect creat dup dup2 execl
    execle execv execve _exit _Exit faccessat fchdir fchmod fchmodat fchown fchownat fcntl
    fdatasync fexecve ffs fork fstat fstatat fsync ftruncate futimens getegid geteuid getgid
    getgroups getpeername getpgrp getpid getppid getsockname getsockopt getuid htonl htons kill
    link linkat listen longjmp lseek lstat memccpy memchr memcmp memcpy memmove memset mkdir
    mkdirat mkfifo mkfifoat mknod mknodat ntohl ntohs open openat pause pipe poll
    posix_trace_event pselect pthread_kill pthread_self pthread_sigmask raise read readlink
    readlinkat recv recvfrom recvmsg rename renameat rmdir select sem_post send sendmsg sendto
    setgid setpgid setsid setsockopt setuid shutdown sigaction sigaddset sigdelset sigemptyset
    sigfillset sigismember siglongjmp signal sigpause sigpending sigprocmask sigqueue sigset
    sigsuspend sleep sockatmark socket socketpair stat stpcpy stpncpy strcat strchr strcmp strcpy
    strcspn strlen strncat strncmp strncpy strnlen strpbrk strrchr strspn strstr strtok_r symlink
    symlinkat tcdrain tcflow tcflush tcgetattr tcgetpgrp tcsendbreak tcsetattr tcsetpgrp time
    timer_getoverrun timer_gettime timer_settime times umask uname unlink unlinkat utime
    utimensat utimes wait waitpid wcpcpy wcpncpy wcscat wcschr wcscmp wcscpy wcscspn wcslen
    wcsncat wcsncmp wcsncpy wcsnlen wcspbrk wcsrchr wcsspn wcsstr wcstok wmemchr wmemcmp wmemcpy
    wmemmove wmemset write
""".split())

# Not on the list, yet safe in a signal handler: name -> reason. Keep this short and justified.
SIGNAL_SAFE_EXTRA = {
    "__errno_location":
        "how C reads and writes errno, which a handler must save and restore (signal-safety(7), 'errno'): "
        "the address of a thread-local variable",
    "__stack_chk_fail":
        "the stack protector's failure exit: reached only when the stack is already corrupt, and ends the process",
}

# Functions whose indirect calls are known and harmless: name -> reason.
ALLOWED_INDIRECT_CALLERS = {
    "buddy_system_usable_size":
        "calls glibc's malloc_usable_size through the pointer dlsym(RTLD_NEXT) returned (a libc function)",
    "system_mallinfo2":
        "calls glibc's mallinfo2 through the pointer dlsym(RTLD_NEXT) returned (a libc function)",
    "buddy_backtrace":
        "calls libunwind's unw_backtrace through the pointer dlsym returned (libunwind.so.8, loaded RTLD_LOCAL)",
    "buddy_call_corruption_hook":
        "calls a pool's EngineHooks.corruption; every hook is installed by a function the walk reaches, "
        "whose taking of the hook's address makes the hook's body part of the check",
    "buddy_call_segment_hook":
        "calls a pool's EngineHooks.segmentRemoved (installed and checked as the corruption hook is)",
    "buddy_report_chain_previous":
        "calls the signal handler the program installed before the library's (chained, as sigaction's contract asks)",
}


def fail_usage(message):
    print(f"check-malloc-path: {message}", file=sys.stderr)
    sys.exit(2)


def run(argv):
    try:
        result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                errors="replace")
    except FileNotFoundError:
        fail_usage(f"{argv[0]} not found (install binutils)")
    if result.returncode != 0:
        fail_usage(f"{' '.join(argv)} failed:\n{result.stderr}")
    return result.stdout


# MARK: - Reading the ELF file

SYMBOL_LINE = re.compile(
    r"^\s*\d+:\s+([0-9a-f]+)\s+(\d+|0x[0-9a-f]+)\s+(\w+)\s+(\w+)\s+(\w+)\s+(\S+)\s+(.+?)\s*$")


def read_symbols(lib):
    """Returns (symtab_present, functions {addr: set(names)}, exports [names], defined {name: addr},
    external_functions {names of undefined FUNC/NOTYPE symbols}, sizes {addr: bytes})."""
    text = run(["readelf", "-W", "--syms", lib])
    table = None
    symtab_present = False
    functions = {}
    exports = []
    defined = {}
    external_functions = set()
    sizes = {}
    for line in text.splitlines():
        if line.startswith("Symbol table"):
            table = ".dynsym" if "'.dynsym'" in line else ".symtab"
            if table == ".symtab":
                symtab_present = True
            continue
        m = SYMBOL_LINE.match(line)
        if not m:
            continue
        value, size, kind, bind, _vis, ndx, name = m.groups()
        name = name.split("@")[0]
        if ndx == "UND" and kind in ("FUNC", "IFUNC", "NOTYPE") and name:
            external_functions.add(name)
        if ndx == "UND" or kind not in ("FUNC", "IFUNC"):
            continue
        addr = int(value, 16)
        functions.setdefault(addr, set()).add(name)
        sizes[addr] = max(sizes.get(addr, 0), int(size, 0))
        defined.setdefault(name, addr)
        if table == ".dynsym" and bind in ("GLOBAL", "WEAK") and name not in exports:
            exports.append(name)
    return symtab_present, functions, exports, defined, external_functions, sizes


def read_sections(lib):
    """[(address, file offset, size, name)] of the allocated sections."""
    sections = []
    pattern = re.compile(r"^\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)")
    for line in run(["readelf", "-W", "-S", lib]).splitlines():
        m = pattern.match(line)
        if m and int(m.group(2), 16) != 0:
            sections.append((int(m.group(2), 16), int(m.group(3), 16), int(m.group(4), 16), m.group(1)))
    return sections


RELOC_LINE = re.compile(r"^([0-9a-f]+)\s+[0-9a-f]+\s+(R_\w+)\s*(.*)$")


def read_relocations(lib):
    """GOT slot address -> ("symbol", name) or ("address", target)."""
    slots = {}
    for line in run(["readelf", "-W", "-r", lib]).splitlines():
        m = RELOC_LINE.match(line.strip())
        if not m:
            continue
        offset, kind, rest = int(m.group(1), 16), m.group(2), m.group(3).strip()
        if kind.endswith("_RELATIVE") or kind.endswith("IRELATIVE"):
            try:
                slots[offset] = ("address", int(rest.split()[-1], 16))
            except (ValueError, IndexError):
                pass
        elif kind.endswith(("_GLOB_DAT", "_JUMP_SLOT", "_64")) and rest:
            # "<value> <name>@<version> + <addend>"
            parts = rest.split()
            if len(parts) >= 2:
                slots[offset] = ("symbol", parts[1].split("@")[0])
    return slots


HEADER = re.compile(r"^([0-9a-f]+) <(.+)>:$")
SECTION = re.compile(r"^Disassembly of section (\S+):$")
INSN = re.compile(r"^\s*([0-9a-f]+):\s+(.*)$")
TARGET = re.compile(r"^([0-9a-f]+)(?:\s+<([^>]+)>)?$")
COMMENT = re.compile(r"#\s*([0-9a-f]+)(?:\s+<([^>]+)>)?\s*$")
BRANCH = re.compile(r"^(?:(?:notrack|bnd|rex\.W|data16|cs|ds)\s+)*(call\w*|jmp\w*|j[a-z]{1,4})\s+(.*)$")


SYSCALL_INSN = re.compile(r"^(syscall|svc\s+#?0x?0*)\b")
PADDING = re.compile(r"^(?:(?:data16|cs|ds)\s+)*(nop\w*|xchg\s+%ax,%ax|int3|ud2)\b")


class Disassembly:
    def __init__(self):
        self.regions = []          # sorted start addresses of functions (named or not)
        self.names = {}            # region start -> name
        self.plt = {}              # start address -> external name (PLT entries)
        self.insns = []            # (address, owner region start, section, text)
        self.syscalls = set()      # region starts whose code issues a system call itself


def disassemble(lib, functions, sizes):
    """Splits the code into functions by the symbol table's addresses and sizes. Code outside
    every sized function symbol (LLVM outlined or deduplicated code without a symbol) becomes an
    "unnamed code" function of its own, never part of the function before it."""
    result = Disassembly()
    section = None
    owner = None
    end = None          # end of the current sized function, or None when its extent is unknown
    out = run(["objdump", "-d", "-w", "--no-show-raw-insn", lib])

    def start_region(address, name):
        nonlocal owner
        owner = address
        result.regions.append(address)
        result.names.setdefault(address, name)

    for line in out.splitlines():
        m = SECTION.match(line)
        if m:
            section = m.group(1)
            owner, end = None, None
            continue
        m = HEADER.match(line)
        if m:
            start, name = int(m.group(1), 16), m.group(2)
            if section and section.startswith((".plt", ".iplt")):
                if name.endswith("@plt"):
                    result.plt[start] = name[: -len("@plt")]
                start_region(start, name)
                end = None
            elif start in functions or owner is None or (end is not None and start >= end):
                # A function symbol, or a non-function label outside the current function.
                start_region(start, sorted(functions[start])[0] if start in functions else name)
                end = start + sizes[start] if sizes.get(start) else None
            continue
        m = INSN.match(line)
        if not m or owner is None:
            continue
        address, text = int(m.group(1), 16), m.group(2).strip()
        if end is not None and address >= end:
            if PADDING.match(text):
                continue
            start_region(address, f"<unnamed code at 0x{address:x} after {result.names[owner]}>")
            end = None
        result.insns.append((address, owner, section, text))
        if SYSCALL_INSN.match(text):
            result.syscalls.add(owner)
    result.regions.sort()
    return result


# MARK: - The call graph

def demangle(names):
    tool = shutil.which("swift-demangle")
    if tool is None:
        swift = shutil.which("swift")
        if swift is None:
            return {}
        argv = [swift, "demangle", "--compact"]
    else:
        argv = [tool, "--compact"]
    try:
        out = subprocess.run(argv, input="\n".join(names) + "\n", stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, timeout=60).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return {}
    return dict(zip(names, out)) if len(out) == len(names) else {}


def is_project_swift_symbol(name):
    body = name[1:] if name.startswith("_$s") else name
    if not body.startswith("$s"):
        return False
    return any(f"{len(m)}{m}" in body for m in PROJECT_MODULES)


def forbidden_reason(name, external=False):
    """Why `name` must not be reachable, or None."""
    if name in ALLOWED_FUNCTIONS:
        return None
    if name.startswith(("swift_", "_swift_", "__swift")):
        return "Swift runtime entry"
    if name.startswith(("$s", "_$s")) and not is_project_swift_symbol(name):
        return "Swift standard library / runtime code (not one of the project's modules)"
    if name.startswith("_Z"):
        return "C++ code (Swift runtime internals, operator new, ...)"
    if external and name.startswith(FORBIDDEN_EXTERNAL_PREFIXES):
        return "allocating runtime entry"
    return None



class Graph:
    def __init__(self):
        self.edges = {}        # node -> [(node, kind)]; a node is a function's start address (int)
                               # or "ext:NAME" for a function outside the library (a leaf)
        self.indirect = {}     # node -> [instruction text] for calls/jumps the tool cannot resolve
        self.unresolved = {}   # node -> [instruction text] for branches to no known function
        self.switches = 0      # jump-table dispatches recognised as local to their function
        self.names = {}        # node -> display name

    def add(self, node, dest, kind):
        if dest is not None and dest != node:
            self.edges.setdefault(node, []).append((dest, kind))


def build_graph(dis, functions, external_functions, slots, image):
    starts = dis.regions
    graph = Graph()
    graph.names.update(dis.names)
    for addr, ns in functions.items():
        graph.names.setdefault(addr, sorted(ns)[0])
    plt_sections = (".plt", ".iplt")
    function_starts = set(functions) | (set(dis.regions) - set(dis.plt))
    defined_by_name = {}
    for addr, ns in functions.items():
        for n in ns:
            defined_by_name.setdefault(n, addr)

    def owner_of(address):
        i = bisect.bisect_right(starts, address) - 1
        return starts[i] if i >= 0 else None

    def node_for_address(address):
        if address in dis.plt:
            return "ext:" + dis.plt[address]
        owner = owner_of(address)
        if owner is None:
            return None
        if owner in dis.plt:
            return "ext:" + dis.plt[owner]
        return owner

    def node_for_slot(slot, branch):
        """The function a GOT slot holds, or None when it holds data."""
        kind, value = slots[slot]
        if kind == "symbol":
            if value in defined_by_name:
                return defined_by_name[value]
            if branch or value in external_functions:
                return "ext:" + value
            return None
        return value if (branch or value in function_starts) else None

    def is_local_switch(index, owner):
        """A PIC jump table: lea T(%rip),%rA; movslq (%rA,%rI,4),%rB; add %rA,%rB; jmp *%rB.
        True when the table's first entry lands inside the same function."""
        window = dis.insns[max(0, index - 4):index]
        table = None
        for _addr, _owner, _section, text in window:
            if text.startswith("lea") and "(%rip)" in text:
                c = COMMENT.search(text)
                if c:
                    table = int(c.group(1), 16)
        if table is None or not any(t.startswith("movslq") and ",4)" in t for _a, _o, _s, t in window):
            return False
        raw = image(table, 4)
        if raw is None:
            return False
        target = (table + int.from_bytes(raw, "little", signed=True)) & 0xFFFFFFFFFFFFFFFF
        return owner_of(target) == owner

    for index, (address, owner, section, text) in enumerate(dis.insns):
        if section and section.startswith(plt_sections):
            continue  # PLT stubs are leaves
        node = owner
        b = BRANCH.match(text)
        comment = COMMENT.search(text)
        if b:
            mnemonic, operand = b.group(1), b.group(2).split("#")[0].strip()
            kind = "call" if mnemonic.startswith("call") else "jump"
            if operand.startswith("*"):
                if "(%rip)" in operand and comment and int(comment.group(1), 16) in slots:
                    dest = node_for_slot(int(comment.group(1), 16), branch=True)
                    if isinstance(dest, int):
                        dest = node_for_address(dest)
                    if dest is not None:
                        graph.add(node, dest, kind + " via GOT")
                        continue
                if kind == "jump" and re.match(r"^\*%r\w+$", operand) and is_local_switch(index, owner):
                    graph.switches += 1
                    continue
                graph.indirect.setdefault(node, []).append(f"{address:x}: {text}")
                continue
            t = TARGET.match(operand)
            dest = node_for_address(int(t.group(1), 16)) if t else None
            if dest is None:
                graph.unresolved.setdefault(node, []).append(f"{address:x}: {text}")
                continue
            graph.add(node, dest, kind)
            continue
        if comment:
            # A reference by address: a function whose address the code takes (a callback), or a
            # GOT slot holding one.
            ref = int(comment.group(1), 16)
            if ref in slots:
                dest = node_for_slot(ref, branch=False)
            elif ref in function_starts:
                dest = ref
            elif ref in dis.plt:
                dest = "ext:" + dis.plt[ref]
            else:
                dest = None
            graph.add(node, dest, "address taken")
    return graph


def display(node, names):
    if isinstance(node, str):
        return node[4:] + " (external)"
    return names.get(node, f"0x{node:x}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("library", nargs="?", help="the shared library (e.g. .build/debug/libBuddyMalloc.so)")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="list every reachable function with the edge that reached it, and every "
                             "forbidden function (not only the first on each path)")
    parser.add_argument("--roots", help="comma-separated functions to start from (default: every export)")
    parser.add_argument("--signal-safe", action="store_true",
                        help="also require every function outside the library reached from the roots to be "
                             "async-signal-safe (POSIX's list, signal-safety(7)); for a signal handler's roots")
    parser.add_argument("--self-test", action="store_true",
                        help="build small libraries with gcc and check that the tool fails and passes "
                             "where it must")
    args = parser.parse_args()
    if args.self_test:
        sys.exit(self_test())
    if not args.library:
        parser.error("the library is required (or --self-test)")
    sys.exit(check(args.library, args.verbose, args.roots.split(",") if args.roots else None,
                   signal_safe=args.signal_safe))


def walk(graph, roots, stop=lambda node: False):
    """Breadth-first from the roots (the first path found to each node is a shortest one);
    does not expand nodes for which `stop` is true. Returns {node: (parent, edge kind) or None}."""
    parent = {}
    queue = deque()
    for node in roots:
        if node not in parent:
            parent[node] = None
            queue.append(node)
    while queue:
        node = queue.popleft()
        if isinstance(node, str) or stop(node):
            continue
        for dest, kind in graph.edges.get(node, []):
            if dest not in parent:
                parent[dest] = (node, kind)
                queue.append(dest)
    return parent


def check(lib, verbose=False, roots=None, out=sys.stdout, signal_safe=False):
    if not os.path.isfile(lib):
        fail_usage(f"{lib}: no such file")
    symtab_present, functions, exports, defined, external_functions, sizes = read_symbols(lib)
    if not symtab_present:
        fail_usage(f"{lib} has no .symtab (stripped?): local functions cannot be named, refusing to pass it")
    roots = roots or exports
    if not roots:
        fail_usage(f"{lib} exports no functions")
    missing = [r for r in roots if r not in defined]
    if missing:
        fail_usage(f"not defined in {lib}: {', '.join(missing)}")
    slots = read_relocations(lib)
    sections = read_sections(lib)
    with open(lib, "rb") as f:
        data = f.read()

    def image(address, count):
        for start, offset, size, name in sections:
            if start <= address and address + count <= start + size and name != ".bss":
                return data[offset + address - start: offset + address - start + count]
        return None

    dis = disassemble(lib, functions, sizes)
    if not dis.insns:
        fail_usage(f"objdump found no instructions in {lib}")
    graph = build_graph(dis, functions, external_functions, slots, image)
    names = graph.names
    callers = {}
    for src, outgoing in graph.edges.items():
        for dest, kind in outgoing:
            callers.setdefault(dest, []).append((src, kind))

    def merged_function_resolved(node):
        """Swift's function merging (a symbol ending in `Tm`) turns the differing callees of
        near-identical functions into function-pointer parameters. Its indirect calls are resolved
        when it is only ever called directly, by callers that take function addresses (those
        addresses are edges of the callers, so their targets are walked and checked)."""
        name = names.get(node, "")
        if not (name.startswith(("$s", "_$s")) and name.endswith("Tm")):
            return False
        incoming = callers.get(node, [])
        return bool(incoming) and all(
            kind in ("call", "jump") and any(k == "address taken" for _d, k in graph.edges.get(src, []))
            for src, kind in incoming)

    def reasons(node):
        """Why the node is a problem: (forbidden name reason or None, other problems)."""
        if isinstance(node, str):
            return forbidden_reason(node[4:], external=True), []
        forbidden = None
        all_names = sorted(functions.get(node, set()) | {names.get(node, "")})
        for n in all_names:
            r = forbidden_reason(n)
            if r:
                forbidden = f"{n}: {r}"
                break
        others = []
        if forbidden:
            return forbidden, others  # what it calls is beside the point
        if node in graph.indirect and not any(n in ALLOWED_INDIRECT_CALLERS for n in all_names) \
                and not merged_function_resolved(node):
            others.append(f"{names.get(node)}: indirect call or jump the tool cannot resolve "
                          f"({graph.indirect[node][0]})")
        if node in graph.unresolved:
            others.append(f"{names.get(node)}: branch to no known function ({graph.unresolved[node][0]})")
        return forbidden, others

    root_nodes = [defined[r] for r in roots]
    everything = walk(graph, root_nodes)
    # The first forbidden function on each path: walk again without expanding forbidden functions.
    frontier = walk(graph, root_nodes, stop=lambda node: reasons(node)[0] is not None)

    def path_to(parent, node):
        steps = []
        while node is not None:
            link = parent[node]
            steps.append((node, link[1] if link else None))
            node = link[0] if link else None
        steps.reverse()
        text = display(steps[0][0], names)
        for n, kind in steps[1:]:
            text += f"\n      -> [{kind}] {display(n, names)}"
        return text

    internal = [n for n in everything if not isinstance(n, str)]
    external = sorted({n[4:] for n in frontier if isinstance(n, str)})
    problems = []
    for node in frontier:
        forbidden, others = reasons(node)
        for message in ([forbidden] if forbidden else []) + others:
            problems.append((node, message))
    behind = [n for n in everything if n not in frontier and reasons(n)[0] is not None]
    if signal_safe:
        # Every external function reached at all, even behind a forbidden one: each is a call
        # the handler could make.
        for node in everything:
            if isinstance(node, str) and node[4:] not in ASYNC_SIGNAL_SAFE and node[4:] not in SIGNAL_SAFE_EXTRA:
                problems.append((node, f"{node[4:]}: not async-signal-safe (not on POSIX's list, signal-safety(7))"))

    print(f"check-malloc-path: {lib}", file=out)
    print(f"  roots              {len(roots)} exported functions", file=out)
    clean = [n for n in frontier if not isinstance(n, str)]
    print(f"  reachable          {len(internal)} functions in the library"
          + (f", {len(internal) - len(clean)} of them only through forbidden ones" if len(clean) < len(internal) else "")
          + f" ({graph.switches} jump tables recognised as local)", file=out)
    print(f"  external reached   {len(external)}: {', '.join(external) or '(none)'}", file=out)
    if signal_safe:
        extra = sorted({n[4:] for n in everything if isinstance(n, str) and n[4:] in SIGNAL_SAFE_EXTRA})
        for name in extra:
            print(f"  signal-safe extra  {name} (allowed: {SIGNAL_SAFE_EXTRA[name]})", file=out)
        issuing = sorted({names.get(n, f"0x{n:x}") for n in internal if n in dis.syscalls})
        print(f"  own system calls   {len(issuing)} functions issue them: {', '.join(issuing) or '(none)'}", file=out)
    for n in internal:
        if n in graph.indirect and merged_function_resolved(n):
            print(f"  indirect call      {names.get(n)} (a merged function: its targets are the function "
                  f"addresses its callers pass)", file=out)
    for n in internal:
        for x in sorted(functions.get(n, {names.get(n)})):
            if x in ALLOWED_INDIRECT_CALLERS and n in graph.indirect:
                print(f"  indirect call      {x} (allowed: {ALLOWED_INDIRECT_CALLERS[x]})", file=out)
    if verbose:
        demangled = demangle([names[n] for n in internal if names.get(n, "").startswith(("$s", "_$s"))])
        print("  reachable functions (first edge that reached each):", file=out)
        for n in sorted(internal, key=lambda x: names.get(x, "")):
            link = everything[n]
            via = f"  <- [{link[1]}] {display(link[0], names)}" if link else "  (root)"
            label = names.get(n, f"0x{n:x}")
            pretty = demangled.get(label)
            print(f"    {label}{'  = ' + pretty if pretty and pretty != label else ''}{via}", file=out)
    if problems:
        if signal_safe:
            problems.sort(key=lambda p: (not isinstance(p[0], str), str(p[1])))
        print(f"FAIL: {len(problems)} problem(s) on the paths from the exports "
              f"({len(behind)} more forbidden functions behind them{'' if verbose else '; --verbose lists them'})",
              file=out)
        for node, message in problems:
            print(f"  {message}\n    path: {path_to(frontier if node in frontier else everything, node)}", file=out)
        if verbose and behind:
            print("  forbidden functions reachable only through the ones above:", file=out)
            for n in behind:
                print(f"    {display(n, names)}", file=out)
        return 1
    print("  result             clean: no Swift runtime or C++ entry is reachable"
          + ("; every external function reached is async-signal-safe" if signal_safe else ""), file=out)
    return 0


# MARK: - Self-test

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
#else              /* clean: reaches only local C code and mmap */
EXPORT void *entry(void *p) { helper(2); if (p) return mmap(0, 4096, 3, 0x22, -1, 0); return p; }
EXPORT void *unused_bad(void *p) { return p; }
#endif
"""


def self_test():
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
                    (8, 0, "--signal-safe: write only", True)]
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
        status = subprocess.run([sys.executable, os.path.abspath(__file__), lib],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        verdict = "ok" if status == 2 else "WRONG"
        failures += status != 2
        print(f"  self-test {verdict}: stripped library: exit {status}, expected 2")
    print("self-test passed" if failures == 0 else f"self-test FAILED ({failures})")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    main()
