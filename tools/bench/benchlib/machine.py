"""What the JSON output records about the machine and the allocators."""

import datetime
import os
import platform
import subprocess

from .common import CC, REPO


def machine_info(loadavg_start=None):
    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "nproc": os.cpu_count(),
        "nproc_available": len(os.sched_getaffinity(0)),
        "kernel": platform.release(),
        "uname": " ".join(platform.uname()),
        "python": platform.python_version(),
        "loadavg_start": loadavg_start or os.getloadavg(),
    }
    try:
        info["glibc"] = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        pass
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                info["memtotal_kb"] = int(line.split()[1])
                break
    except OSError:
        pass
    try:
        info["gcc"] = subprocess.run([CC, "--version"], capture_output=True,
                                     text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        pass
    try:
        r = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                           capture_output=True, text=True, timeout=10)
        info["git_head"] = r.stdout.strip() if r.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def alloc_info(a):
    return {"lib": a.lib, "package": a.package, "version": a.version,
            "sha256": a.sha256, "probe": a.probe}
