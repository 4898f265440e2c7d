"""The command line: a library to check, or --self-test."""

import argparse
import sys

from .check import check
from .selftest import self_test


def main(description, script):
    """`description`: the entry script's docstring (--help); `script`: its path (--self-test runs it)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
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
        sys.exit(self_test(script))
    if not args.library:
        parser.error("the library is required (or --self-test)")
    sys.exit(check(args.library, args.verbose, args.roots.split(",") if args.roots else None,
                   signal_safe=args.signal_safe))
