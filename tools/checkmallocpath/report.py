"""The report: what the walk reached, the allowed exceptions it used, and every problem with its
path from a root; the exit status (0 clean, 1 a problem)."""

import shutil
import subprocess

from .graph import display
from .rules import ALLOWED_INDIRECT_CALLERS, SIGNAL_SAFE_EXTRA


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


def print_report(result, lib, verbose, signal_safe, out):
    """Prints the analysis of `lib` to `out`; returns 1 when there are problems, else 0."""
    roots, functions, dis, graph, names = result.roots, result.functions, result.dis, result.graph, result.names
    everything, frontier, internal, external = result.everything, result.frontier, result.internal, result.external
    problems, behind = result.problems, result.behind
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
        if n in graph.indirect and result.merged_function_resolved(n):
            print(f"  indirect call      {names.get(n)} (a merged function: its targets are the function "
                  f"addresses its callers pass)", file=out)
    for n in internal:
        for x in sorted(functions.get(n, {names.get(n)})):
            if x in ALLOWED_INDIRECT_CALLERS and n in graph.indirect:
                print(f"  indirect call      {x} (allowed: {ALLOWED_INDIRECT_CALLERS[x]})", file=out)
    if verbose:
        demangled = demangle([names[n] for n in internal if names.get(n, "").startswith(("$s", "_$s", "$e", "_$e"))])
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
            print(f"  {message}\n    path: {result.path_to(frontier if node in frontier else everything, node)}", file=out)
        if verbose and behind:
            print("  forbidden functions reachable only through the ones above:", file=out)
            for n in behind:
                print(f"    {display(n, names)}", file=out)
        return 1
    print("  result             clean: no Swift runtime or C++ entry is reachable"
          + ("; every external function reached is async-signal-safe" if signal_safe else ""), file=out)
    return 0

