"""The allocators: finding glibc/jemalloc/tcmalloc/mimalloc/BuddyMalloc libraries (installing
the Debian packages when allowed), and proving that each preload is in effect."""

import hashlib
import os
import shutil
import subprocess
import sys

from .common import log, warn
from .process import run_process, tail

# name -> (Debian package, soname looked up in `dpkg -L package`)
PACKAGED_ALLOCATORS = {
    "jemalloc": ("libjemalloc2", "libjemalloc.so.2"),
    "tcmalloc": ("libtcmalloc-minimal4", "libtcmalloc_minimal.so.4"),
    "mimalloc": ("libmimalloc2.0", "libmimalloc.so.2"),
}
DEFAULT_ALLOCATORS = ["glibc", "buddy", "jemalloc", "tcmalloc", "mimalloc"]
BUDDY_BUILD_HINT = "swift build -c release --product BuddyMalloc"


class Allocator:
    def __init__(self, name, lib=None, package=None):
        self.name = name
        self.lib = lib  # None = no preload (glibc)
        self.package = package
        self.version = None
        self.sha256 = None
        self.probe = {}

    def env(self, base, force_libc=None):
        env = dict(base)
        if self.lib:
            env["LD_PRELOAD"] = self.lib
        elif force_libc:
            env["LD_PRELOAD"] = force_libc
        return env

    def describe(self):
        return self.lib or "(no preload: system glibc malloc)"


class Installer:
    """Installs missing Debian packages with apt-get, unless disabled."""

    def __init__(self, allowed):
        self.allowed = allowed
        self.updated = False

    @staticmethod
    def installed(pkg):
        try:
            out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg],
                                 capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return False
        return out.returncode == 0 and "install ok installed" in out.stdout

    @staticmethod
    def version(pkg):
        try:
            out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                                 capture_output=True, text=True, timeout=30)
            return out.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            return None

    def ensure(self, pkg, why):
        if self.installed(pkg):
            return True
        if not self.allowed:
            warn("package %s (%s) is not installed and --no-install was given"
                 % (pkg, why))
            return False
        if not shutil.which("apt-get"):
            warn("package %s (%s) is missing and apt-get is not available"
                 % (pkg, why))
            return False
        if os.geteuid() != 0:
            warn("package %s (%s) is missing; not root, so not installing it "
                 "(run: apt-get install -y %s)" % (pkg, why, pkg))
            return False
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        if not self.updated:
            log("bench: running apt-get update (to install %s)" % pkg)
            subprocess.run(["apt-get", "update", "-qq"], env=env,
                           stdout=subprocess.DEVNULL, timeout=900)
            self.updated = True
        log("bench: installing %s (%s) with `apt-get install -y %s` "
            "(use --no-install to disable)" % (pkg, why, pkg))
        r = subprocess.run(["apt-get", "install", "-y", "-qq", pkg], env=env,
                           stdout=subprocess.DEVNULL, timeout=1800)
        ok = r.returncode == 0 and self.installed(pkg)
        if not ok:
            warn("apt-get install -y %s failed (exit %d)" % (pkg, r.returncode))
        return ok


def find_packaged_so(pkg, soname):
    try:
        out = subprocess.run(["dpkg", "-L", pkg], capture_output=True,
                             text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    for line in out.splitlines():
        if os.path.basename(line) == soname and os.path.exists(line):
            return line
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
              "/usr/lib64", "/usr/lib", "/usr/local/lib"):
        p = os.path.join(d, soname)
        if os.path.exists(p):
            return p
    return None


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_allocators(names, args, installer):
    """Returns the list of usable Allocator objects, in the requested order."""
    extra = {}
    for spec in args.extra_lib or []:
        if "=" not in spec:
            sys.exit("bench: --extra-lib wants NAME=PATH, got %r" % spec)
        n, p = spec.split("=", 1)
        extra[n] = p
    result = []
    for name in names:
        if name == "glibc":
            result.append(Allocator("glibc"))
        elif name == "buddy":
            lib = os.path.abspath(args.buddy_lib)
            if not os.path.isfile(lib):
                log("bench: ERROR: BuddyMalloc library not found at %s\n"
                    "bench:        build it first:  %s\n"
                    "bench:        (or pass --buddy-lib PATH, or leave it out "
                    "with --allocators glibc,jemalloc,...)"
                    % (lib, BUDDY_BUILD_HINT))
                sys.exit(2)
            a = Allocator("buddy", lib)
            a.sha256 = file_sha256(lib)
            result.append(a)
        elif name in PACKAGED_ALLOCATORS:
            pkg, soname = PACKAGED_ALLOCATORS[name]
            lib = find_packaged_so(pkg, soname) if installer.installed(pkg) else None
            if not lib and installer.ensure(pkg, name):
                lib = find_packaged_so(pkg, soname)
            if not lib:
                warn("skipping allocator %s: %s not found (package %s)"
                     % (name, soname, pkg))
                continue
            a = Allocator(name, lib, pkg)
            a.version = Installer.version(pkg)
            result.append(a)
        elif name in extra:
            lib = os.path.abspath(extra[name])
            if not os.path.isfile(lib):
                warn("skipping allocator %s: %s does not exist" % (name, lib))
                continue
            result.append(Allocator(name, lib))
        else:
            sys.exit("bench: unknown allocator %r (known: %s, or define one "
                     "with --extra-lib NAME=PATH)"
                     % (name, ", ".join(DEFAULT_ALLOCATORS)))
    return result


def probe_allocators(ctx, allocators):
    """Runs the probe under each allocator and checks that malloc/free really
    resolve into the preloaded library. Drops allocators whose preload is not
    in effect."""
    probe = ctx.bins["preload_probe"]
    ok = []
    for a in allocators:
        r = run_process([probe], a.env(ctx.base_env), 30)
        syms = {}
        for line in r.stdout.decode(errors="replace").splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2:
                syms[parts[0]] = parts[1]
        a.probe = syms
        if a.lib is None:
            libc = syms.get("malloc", "")
            if "libc.so" not in os.path.basename(libc):
                warn("glibc baseline: malloc resolves to %r?" % libc)
            ctx.libc_path = libc if libc.startswith("/") else None
            ok.append(a)
            continue
        want = os.path.realpath(a.lib)
        got = {k: (os.path.realpath(v) if v.startswith("/") else v)
               for k, v in syms.items()}
        if r.status != "ok":
            warn("%s: the preload probe failed (%s): %s"
                 % (a.name, r.reason, tail(r.stderr, 300)))
        if got.get("malloc") != want or got.get("free") != want:
            log("bench: ERROR: under LD_PRELOAD=%s, malloc resolves to %s and "
                "free to %s -- the preload is not in effect; skipping %s%s"
                % (a.lib, syms.get("malloc"), syms.get("free"), a.name,
                   (": " + tail(r.stderr, 300)) if r.stderr else ""))
            if a.name == "buddy":
                log("bench: ERROR: refusing to continue without a working BuddyMalloc "
                    "preload (leave it out with --allocators to benchmark the others)")
                sys.exit(2)
            continue
        elsewhere = [k for k, v in got.items() if v != want]
        if elsewhere:
            warn("%s: %s not provided by %s (resolve to %s); programs that "
                 "use them on its blocks may break"
                 % (a.name, ", ".join(elsewhere), os.path.basename(a.lib),
                    ", ".join(sorted({syms[k] for k in elsewhere}))))
        ok.append(a)
    return ok
