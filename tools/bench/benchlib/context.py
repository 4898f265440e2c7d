"""What one run shares: options, built programs, the scratch folder, the clean environment."""

import os
import shutil
import tempfile

from .common import warn
from .process import RUNPROC


class Context:
    def __init__(self, args, installer, bins):
        self.args = args
        self.quick = args.quick
        self.timeout = args.timeout
        self.installer = installer
        self.bins = bins
        self.python = args.python
        self.tmp = tempfile.mkdtemp(prefix="buddybench-")
        RUNPROC["bin"] = bins["runproc"]
        RUNPROC["scratch"] = self.tmp
        self.redis_seq = 0
        self.libc_path = None
        env = dict(os.environ)
        for k in list(env):
            if k in ("LD_PRELOAD", "PYTHONMALLOC", "MALLOC_CONF", "MIMALLOC_OPTIONS",
                     "TCMALLOC_RELEASE_RATE") or k.startswith("MALLOC_") \
                    or k.startswith("GLIBC_TUNABLES") or k.startswith("MIMALLOC_"):
                del env[k]
        env["LC_ALL"] = "C"
        self.base_env = env

    def need_tool(self, exe, pkg):
        path = shutil.which(exe)
        if path:
            return path
        if self.installer.ensure(pkg, "for the %s workload" % exe):
            path = shutil.which(exe)
        if not path:
            warn("%s not available (package %s)" % (exe, pkg))
        return path
