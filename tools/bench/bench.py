#!/usr/bin/env python3
"""BuddyMalloc benchmark suite runner (python3 stdlib only).

    tools/bench/bench.py                 # full run: all workloads x all allocators
    tools/bench/bench.py --quick         # CI smoke run (~1-2 min)
    tools/bench/bench.py micro           # hot-path ns per malloc+free pair
    tools/bench/bench.py scaling         # ops/s against 1..64 threads, 4 shapes
    tools/bench/bench.py --list          # show workloads and allocators

See tools/bench/README.md for the method and how to read the output.
"""

import sys

sys.dont_write_bytecode = True  # running the suite leaves no __pycache__ in the source tree

from benchlib.cli import main  # noqa: E402  (tools/bench/benchlib/, beside this script)

if __name__ == "__main__":
    sys.exit(main())
