"""The disassembly (objdump -d), split into functions by the symbol table's addresses and sizes."""

import re

from .commands import run


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
