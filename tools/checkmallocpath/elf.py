"""Reading the ELF file with readelf: symbols, sections, dynamic relocations."""

import re

from .commands import run


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
