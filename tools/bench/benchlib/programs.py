"""Building the programs (workloads/*.c and *.cpp, support/*.c) when stale."""

import os
import subprocess
import sys

from .common import CC, CFLAGS, CXX, CXXFLAGS, REPO, SUPPORT_DIR, WARNFLAGS, WORKLOAD_DIR, log


def build_programs(build_dir):
    """Compiles workloads/*.c and *.cpp and support/*.c into build_dir when stale."""
    build_dir.mkdir(parents=True, exist_ok=True)
    headers = list(WORKLOAD_DIR.glob("*.h"))
    newest_header = max((h.stat().st_mtime for h in headers), default=0)
    built = {}
    sources = (sorted(WORKLOAD_DIR.glob("*.c")) + sorted(WORKLOAD_DIR.glob("*.cpp"))
               + sorted(SUPPORT_DIR.glob("*.c")))
    for src in sources:
        compiler, language_flags = (CXX, CXXFLAGS) if src.suffix == ".cpp" else (CC, CFLAGS)
        flags = language_flags + WARNFLAGS + ["-I", str(WORKLOAD_DIR)]
        stamp = " ".join([compiler] + flags)
        out = build_dir / src.stem
        stampf = build_dir / (src.stem + ".flags")
        fresh = (out.exists()
                 and out.stat().st_mtime >= max(src.stat().st_mtime, newest_header)
                 and stampf.exists() and stampf.read_text() == stamp)
        if not fresh:
            tmp = build_dir / (src.stem + ".tmp")
            cmd = [compiler] + flags + ["-o", str(tmp), str(src), "-ldl"]
            log("bench: building %s" % out.relative_to(REPO)
                if REPO in out.parents else "bench: building %s" % out)
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                sys.stderr.write(r.stderr)
                sys.exit("bench: compiling %s failed: %s" % (src, " ".join(cmd)))
            if r.stderr.strip():
                sys.stderr.write(r.stderr)
            os.replace(tmp, out)
            stampf.write_text(stamp)
        built[src.stem] = str(out)
    return built
