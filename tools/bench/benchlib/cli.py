"""The command line: options, defaults, --list, and interruption."""

import argparse
import os
import signal
import sys

from .allocators import DEFAULT_ALLOCATORS
from .common import DEFAULT_TIMEOUT, REPO, log
from .micro import cmd_micro
from .process import _kill_group, _running
from .scaling import SHAPE_DESC, SHAPES, THREADS, cmd_scaling
from .suite import cmd_run
from .workloads import make_workloads


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="BuddyMalloc benchmark suite: runs allocator workloads under "
                    "several malloc implementations (LD_PRELOAD) and reports wall "
                    "time and peak RSS relative to glibc.")
    ap.add_argument("mode", nargs="?", default="run", choices=["run", "micro", "scaling"],
                    help="run: the workload suite (default); micro: hot-path "
                         "ns per malloc+free pair; scaling: operations per second "
                         "against threads")
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
                         "3 with --quick; scaling: 3, 1 with --quick)")
    ap.add_argument("--quick", action="store_true",
                    help="smaller parameters and 3 reps (CI smoke run)")
    ap.add_argument("--no-install", action="store_true",
                    help="never run apt-get to install missing allocators/tools")
    ap.add_argument("--json", default=None,
                    help="JSON output (default bench-results.json, "
                         "bench-micro.json in micro mode, bench-scaling.json in "
                         "scaling mode)")
    ap.add_argument("--svg", default=None,
                    help="SVG chart (default bench-results.svg, bench-micro.svg "
                         "in micro mode; scaling mode writes one chart per shape, "
                         "bench-scaling-SHAPE.svg from the default bench-scaling.svg)")
    ap.add_argument("--tsv", default="bench-scaling.tsv",
                    help="scaling mode: raw rows, one per run (default %(default)s)")
    ap.add_argument("--shapes", metavar="SHAPE,...",
                    help="scaling mode: shapes to run (default all: %s)" % ",".join(SHAPES))
    ap.add_argument("--threads", metavar="N,...",
                    help="scaling mode: thread counts (default %s; 1,2,8,64 with --quick)"
                         % ",".join(str(t) for t in THREADS))
    ap.add_argument("--duration", type=float, default=None, metavar="S",
                    help="scaling mode: seconds per run (default 0.5, 0.2 with --quick)")
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
        if args.mode == "scaling":
            args.reps = 1 if args.quick else 3
        else:
            args.reps = 3 if args.quick else 5
    if args.reps < 1:
        sys.exit("bench: --reps must be >= 1")
    if args.warmup is None:
        args.warmup = 0 if args.quick else 1
    if args.duration is not None and args.duration <= 0:
        sys.exit("bench: --duration must be > 0")
    stem = {"micro": "bench-micro", "scaling": "bench-scaling"}.get(args.mode, "bench-results")
    if args.json is None:
        args.json = stem + ".json"
    if args.svg is None:
        args.svg = stem + ".svg"
    if args.list:
        for w in make_workloads():
            print("%-10s %s" % (w.name, w.desc))
        print()
        print("allocators: %s (+ --extra-lib NAME=PATH)" % ", ".join(DEFAULT_ALLOCATORS))
        print()
        print("scaling shapes:")
        for s in SHAPES:
            print("%-10s %s" % (s, SHAPE_DESC[s]))
        return 0

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    try:
        if args.mode == "micro":
            return cmd_micro(args)
        if args.mode == "scaling":
            return cmd_scaling(args)
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
