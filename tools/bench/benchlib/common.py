"""Paths, build flags and the progress lines on stderr, shared by every module."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # tools/bench
REPO = HERE.parent.parent
WORKLOAD_DIR = HERE / "workloads"
SUPPORT_DIR = HERE / "support"
CC = "gcc"
CFLAGS = ["-O2", "-fno-builtin", "-pthread"]
# The C++ workloads (objects.cpp): -fno-allocation-dce, or g++ removes new/delete pairs.
CXX = "g++"
CXXFLAGS = CFLAGS + ["-fno-allocation-dce"]
WARNFLAGS = ["-Wall", "-Wextra"]
DEFAULT_TIMEOUT = 120.0


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def warn(msg):
    log("warning: " + msg)


def progress(i, total, wname, aname, rep, reps, res_text):
    w = len(str(total))
    log("[%*d/%d] %-11s %-9s rep %d/%d  %s"
        % (w, i, total, wname, aname, rep, reps, res_text))
