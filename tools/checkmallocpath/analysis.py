"""The analysis: read the library, build its call graph, walk it from the roots, and collect the
problems (forbidden functions, indirect calls the tool cannot resolve, with --signal-safe the
external functions POSIX does not list as async-signal-safe)."""

import os

from .commands import fail_usage
from .disassembly import disassemble
from .elf import read_relocations, read_sections, read_symbols
from .graph import build_graph, display, walk
from .rules import ALLOWED_INDIRECT_CALLERS, ASYNC_SIGNAL_SAFE, SIGNAL_SAFE_EXTRA, forbidden_reason


class Analysis:
    """What the walk found, for the report."""

    def __init__(self, roots, functions, dis, graph):
        self.roots = roots            # the root function names
        self.functions = functions    # {addr: set(names)} from the symbol table
        self.dis = dis                # the Disassembly
        self.graph = graph            # the Graph
        self.names = graph.names      # node -> display name
        self.callers = {}             # node -> [(caller, edge kind)]
        for src, outgoing in graph.edges.items():
            for dest, kind in outgoing:
                self.callers.setdefault(dest, []).append((src, kind))
        self.everything = {}          # every node reached: {node: (parent, edge kind) or None}
        self.frontier = {}            # the nodes reached without passing a forbidden function
        self.internal = []            # the library's functions reached
        self.external = []            # names of the external functions reached on the frontier
        self.problems = []            # [(node, message)]
        self.behind = []              # forbidden functions reached only through other problems

    def merged_function_resolved(self, node):
        """Swift's function merging (a symbol ending in `Tm`) turns the differing callees of
        near-identical functions into function-pointer parameters. Its indirect calls are resolved
        when it is only ever called directly, by callers that take function addresses (those
        addresses are edges of the callers, so their targets are walked and checked)."""
        name = self.names.get(node, "")
        if not (name.startswith(("$s", "_$s", "$e", "_$e")) and name.endswith("Tm")):
            return False
        incoming = self.callers.get(node, [])
        return bool(incoming) and all(
            kind in ("call", "jump") and any(k == "address taken" for _d, k in self.graph.edges.get(src, []))
            for src, kind in incoming)

    def reasons(self, node):
        """Why the node is a problem: (forbidden name reason or None, other problems)."""
        if isinstance(node, str):
            return forbidden_reason(node[4:], external=True), []
        names, graph = self.names, self.graph
        forbidden = None
        all_names = sorted(self.functions.get(node, set()) | {names.get(node, "")})
        for n in all_names:
            r = forbidden_reason(n)
            if r:
                forbidden = f"{n}: {r}"
                break
        others = []
        if forbidden:
            return forbidden, others  # what it calls is beside the point
        if node in graph.indirect and not any(n in ALLOWED_INDIRECT_CALLERS for n in all_names) \
                and not self.merged_function_resolved(node):
            others.append(f"{names.get(node)}: indirect call or jump the tool cannot resolve "
                          f"({graph.indirect[node][0]})")
        if node in graph.unresolved:
            others.append(f"{names.get(node)}: branch to no known function ({graph.unresolved[node][0]})")
        return forbidden, others

    def path_to(self, parent, node):
        steps = []
        while node is not None:
            link = parent[node]
            steps.append((node, link[1] if link else None))
            node = link[0] if link else None
        steps.reverse()
        text = display(steps[0][0], self.names)
        for n, kind in steps[1:]:
            text += f"\n      -> [{kind}] {display(n, self.names)}"
        return text


def analyse(lib, roots=None, signal_safe=False):
    """Reads and walks `lib` (exit 2 through fail_usage when it cannot be checked)."""
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
    result = Analysis(roots, functions, dis, graph)
    reasons = result.reasons

    root_nodes = [defined[r] for r in roots]
    everything = walk(graph, root_nodes)
    # The first forbidden function on each path: walk again without expanding forbidden functions.
    frontier = walk(graph, root_nodes, stop=lambda node: reasons(node)[0] is not None)

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

    result.everything, result.frontier = everything, frontier
    result.internal, result.external = internal, external
    result.problems, result.behind = problems, behind
    return result
