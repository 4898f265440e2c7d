"""The command line: options, defaults, --list, and interruption."""

import argparse
import os
import signal
import sys

from .allocators import DEFAULT_ALLOCATORS
from .common import DEFAULT_TIMEOUT, REPO, log
from .micro import cmd_micro
from .process import _kill_group, _running
from .suite import cmd_run
from .workloads import make_workloads


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="BuddyMalloc benchmark suite: runs allocator workloads under "
                    "several malloc implementations (LD_PRELOAD) and reports wall "
                    "time and peak RSS relative to glibc.")
    ap.add_argument("mode", nargs="?", default="run", choices=["run", "micro"],
                    help="run: the workload suite (default); micro: hot-path "
                         "ns per malloc+free pair")
    ap.add_argument("--buddy-lib",
                    default=str(REPO / ".build" / "release" / "libBuddyMalloc.so"),
                    help="path of libBuddyMalloc.so (default: %(default)s)")
    ap.add_argument("--allocators", default=",".join(DEFAULT_ALLOCATORS),
                    help="comma-separated list (default: %(default)s)")
    ap.add_argument("--extra-lib", action="append", metavar="NAME=PATH",
                    help="define another preload allocator (repeatable); "
                         "then list NAME in --allocators")
    ap.add_argument("--only", metavar="WORKLOAD,...",
                    help="run only these workloads")
    ap.add_argument("--reps", type=int, default=None,
                    help="repetitions per (workload, allocator) (default 5, "
                         "3 with --quick)")
    ap.add_argument("--quick", action="store_true",
                    help="smaller parameters and 3 reps (CI smoke run)")
    ap.add_argument("--no-install", action="store_true",
                    help="never run apt-get to install missing allocators/tools")
    ap.add_argument("--json", default=None,
                    help="JSON output (default bench-results.json, "
                         "bench-micro.json in micro mode)")
    ap.add_argument("--svg", default=None,
                    help="SVG chart (default bench-results.svg, bench-micro.svg "
                         "in micro mode)")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                    help="per-process timeout in seconds (default %(default)s)")
    ap.add_argument("--warmup", type=int, choices=[0, 1], default=None,
                    help="one untimed run of each workload before timing "
                         "(default 1, 0 with --quick)")
    ap.add_argument("--build-dir", default=str(REPO / ".build" / "bench"),
                    help="where the C programs are built (default %(default)s)")
    ap.add_argument("--python", default=sys.executable,
                    help="python interpreter for the python workload "
                         "(default: this one, %(default)s)")
    ap.add_argument("--keep-tmp", action="store_true",
                    help="keep the temporary directory (databases, redis logs)")
    ap.add_argument("--list", action="store_true",
                    help="list workloads and allocators and exit")
    args = ap.parse_args(argv)
    if args.reps is None:
        args.reps = 3 if args.quick else 5
    if args.reps < 1:
        sys.exit("bench: --reps must be >= 1")
    if args.warmup is None:
        args.warmup = 0 if args.quick else 1
    if args.json is None:
        args.json = "bench-micro.json" if args.mode == "micro" else "bench-results.json"
    if args.svg is None:
        args.svg = "bench-micro.svg" if args.mode == "micro" else "bench-results.svg"
    if args.list:
        for w in make_workloads():
            print("%-10s %s" % (w.name, w.desc))
        print()
        print("allocators: %s (+ --extra-lib NAME=PATH)" % ", ".join(DEFAULT_ALLOCATORS))
        return 0

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    try:
        if args.mode == "micro":
            return cmd_micro(args)
        return cmd_run(args)
    except KeyboardInterrupt:
        for pid in list(_running):
            _kill_group(pid)
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        log("bench: interrupted")
        return 130
