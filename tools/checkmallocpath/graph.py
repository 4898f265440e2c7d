"""The call graph: edges from direct calls and jumps, GOT-indirect calls, function addresses taken
by code and local jump tables; PLT entries are leaves. The breadth-first walk from the roots."""

import bisect
import re
from collections import deque

from .disassembly import BRANCH, COMMENT, TARGET


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
        """A PIC jump table: lea T(%rip),%rA; movslq (%rA,%rI,4),%rB; add %rA,%rB; jmp *%rB,
        with other instructions between them as the scheduler places them (a loop's index
        increment, an unrelated lea). True when the table's first entry lands inside the same
        function."""
        window = dis.insns[max(0, index - 10):index]
        load = None
        for position, (_a, _o, _s, text) in enumerate(window):
            m = re.match(r"movslq\s+\((%\w+),%\w+,4\)", text)
            if m:
                load = (position, m.group(1))
        if load is None:
            return False
        table = None
        for _addr, _owner, _section, text in window[:load[0]]:
            if text.startswith("lea") and "(%rip)" in text and text.split("#")[0].rstrip().endswith("," + load[1]):
                c = COMMENT.search(text)
                if c:
                    table = int(c.group(1), 16)
        if table is None:
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
