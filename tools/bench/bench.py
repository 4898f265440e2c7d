#!/usr/bin/env python3
"""BuddyMalloc benchmark suite runner (python3 stdlib only).

    tools/bench/bench.py                 # full run: all workloads x all allocators
    tools/bench/bench.py --quick         # CI smoke run (~1-2 min)
    tools/bench/bench.py micro           # hot-path ns per malloc+free pair
    tools/bench/bench.py --list          # show workloads and allocators

See tools/bench/README.md for the method and how to read the output.
"""

import argparse
import collections
import datetime
import hashlib
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
WORKLOAD_DIR = HERE / "workloads"
SUPPORT_DIR = HERE / "support"
CC = "gcc"
CFLAGS = ["-O2", "-fno-builtin", "-pthread"]
WARNFLAGS = ["-Wall", "-Wextra"]
DEFAULT_TIMEOUT = 120.0


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def warn(msg):
    log("warning: " + msg)


# --------------------------------------------------------------------------
# Allocators
# --------------------------------------------------------------------------

# name -> (Debian package, soname looked up in `dpkg -L package`)
PACKAGED_ALLOCATORS = {
    "jemalloc": ("libjemalloc2", "libjemalloc.so.2"),
    "tcmalloc": ("libtcmalloc-minimal4", "libtcmalloc_minimal.so.4"),
    "mimalloc": ("libmimalloc2.0", "libmimalloc.so.2"),
}
DEFAULT_ALLOCATORS = ["glibc", "buddy", "jemalloc", "tcmalloc", "mimalloc"]
BUDDY_BUILD_HINT = "swift build -c release --product BuddyMalloc"

COLORS = {
    "glibc": "#7f7f7f",
    "buddy": "#d62728",
    "jemalloc": "#1f77b4",
    "tcmalloc": "#2ca02c",
    "mimalloc": "#9467bd",
}
EXTRA_COLORS = ["#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]


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


# --------------------------------------------------------------------------
# Building the C programs
# --------------------------------------------------------------------------

def build_programs(build_dir):
    """Compiles workloads/*.c and support/*.c into build_dir when stale."""
    build_dir.mkdir(parents=True, exist_ok=True)
    flags = CFLAGS + WARNFLAGS + ["-I", str(WORKLOAD_DIR)]
    stamp = " ".join([CC] + flags)
    headers = list(WORKLOAD_DIR.glob("*.h"))
    newest_header = max((h.stat().st_mtime for h in headers), default=0)
    built = {}
    sources = sorted(WORKLOAD_DIR.glob("*.c")) + sorted(SUPPORT_DIR.glob("*.c"))
    for src in sources:
        out = build_dir / src.stem
        stampf = build_dir / (src.stem + ".flags")
        fresh = (out.exists()
                 and out.stat().st_mtime >= max(src.stat().st_mtime, newest_header)
                 and stampf.exists() and stampf.read_text() == stamp)
        if not fresh:
            tmp = build_dir / (src.stem + ".tmp")
            cmd = [CC] + flags + ["-o", str(tmp), str(src), "-ldl"]
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


# --------------------------------------------------------------------------
# Running one process
# --------------------------------------------------------------------------

class Proc:
    """Outcome of one child process."""

    def __init__(self):
        self.status = "ok"     # ok | FAIL | TIMEOUT
        self.exit = None       # exit code, or -signal
        self.wall = None       # seconds, fork to exit (measured by runproc)
        self.maxrss_kb = None  # ru_maxrss of the program
        self.utime = None
        self.stime = None
        self.stdout = b""
        self.stderr = b""
        self.reason = ""


PRELOAD_ERROR_RE = re.compile(rb"ld\.so: object .* (cannot be preloaded|"
                              rb"from LD_PRELOAD cannot)")

_running = set()  # pids of children (process-group leaders) still running


def _kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def describe_exit(code):
    if code is None:
        return "?"
    if code < 0:
        try:
            return "killed by %s" % signal.Signals(-code).name
        except ValueError:
            return "killed by signal %d" % -code
    return "exit %d" % code


RUNPROC = {"bin": None, "scratch": None}  # set up by Context


class Launched:
    """A program started through support/runproc.c (see there for why)."""

    def __init__(self, popen, result):
        self.popen = popen
        self.pid = popen.pid  # runproc's pid; also the process-group id
        self.result = result

    def child_pid(self):
        try:
            with open(self.result + ".pid") as f:
                return int(f.read().strip() or 0) or None
        except (OSError, ValueError):
            return None

    def parse_result(self):
        """Returns dict(exit=..., maxrss_kb=..., wall_s=..., ...) or None."""
        try:
            with open(self.result) as f:
                parts = f.read().split()
        except OSError:
            return None
        if len(parts) < 12:
            return None
        d = dict(zip(parts[0::2], parts[1::2]))
        try:
            sig = int(d["signal"])
            return {"exit": -sig if sig else int(d["exit"]),
                    "maxrss_kb": int(d["maxrss_kb"]),
                    "wall_s": float(d["wall_s"]),
                    "utime_s": float(d["utime_s"]),
                    "stime_s": float(d["stime_s"])}
        except (KeyError, ValueError):
            return None

    def cleanup(self):
        for f in (self.result, self.result + ".pid"):
            try:
                os.unlink(f)
            except FileNotFoundError:
                pass


def launch(argv, env, stdin=None, cwd=None, stdout=None, stderr=None):
    """Starts argv through runproc. The preload (LD_PRELOAD in env) is handed
    to runproc as BENCH_PRELOAD and applies to argv only, i.e. the program
    runs exactly as `env LD_PRELOAD=lib argv...`."""
    env = dict(env)
    pre = env.pop("LD_PRELOAD", None)
    env.pop("BENCH_PRELOAD", None)
    if pre:
        env["BENCH_PRELOAD"] = pre
    fd, result = tempfile.mkstemp(prefix="run-", dir=RUNPROC["scratch"])
    os.close(fd)
    os.unlink(result)
    p = subprocess.Popen([RUNPROC["bin"], result] + list(argv), env=env, cwd=cwd,
                         stdin=stdin if stdin is not None else subprocess.DEVNULL,
                         stdout=stdout, stderr=stderr, start_new_session=True)
    _running.add(p.pid)
    return Launched(p, result)


def reap(p, timeout):
    """Waits for Popen p (os.wait4, so it works after WNOHANG polling too).
    Returns (exit_code, timed_out). Kills the process group on timeout."""
    fired = threading.Event()

    def on_timeout():
        fired.set()
        _kill_group(p.pid)

    timer = threading.Timer(timeout, on_timeout)
    timer.daemon = True
    timer.start()
    try:
        _, status, _ru = os.wait4(p.pid, 0)
    except BaseException:
        _kill_group(p.pid)
        try:
            os.wait4(p.pid, 0)
        except ChildProcessError:
            pass
        _running.discard(p.pid)
        raise
    finally:
        timer.cancel()
    _running.discard(p.pid)
    code = os.waitstatus_to_exitcode(status)
    p.returncode = code  # we reaped it ourselves; keep Popen consistent
    return code, fired.is_set()


def finish(res, launched, helper_code, timed_out, timeout):
    """Fills Proc res from runproc's report."""
    r = launched.parse_result()
    launched.cleanup()
    if timed_out:
        res.status = "TIMEOUT"
        res.reason = "killed after %g s" % timeout
        return res
    if r is None or helper_code != 0:
        res.status = "FAIL"
        res.reason = "runproc failed (%s)" % describe_exit(helper_code)
        return res
    res.exit = r["exit"]
    res.maxrss_kb = r["maxrss_kb"]
    res.wall = r["wall_s"]
    res.utime = r["utime_s"]
    res.stime = r["stime_s"]
    if res.exit != 0:
        res.status = "FAIL"
        res.reason = describe_exit(res.exit)
    elif PRELOAD_ERROR_RE.search(res.stderr):
        res.status = "FAIL"
        res.reason = "ld.so could not preload the library"
    return res


def run_process(argv, env, timeout, stdin_path=None, cwd=None):
    """Runs argv with env (the preload applies to this program only), and
    returns its wall time (fork to exit, measured by runproc), peak RSS
    (ru_maxrss from wait4) and output."""
    res = Proc()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        fin = open(stdin_path, "rb") if stdin_path else None
        try:
            launched = launch(argv, env, stdin=fin, cwd=cwd, stdout=out, stderr=err)
            code, timed_out = reap(launched.popen, timeout)
        finally:
            if fin:
                fin.close()
        out.seek(0)
        err.seek(0)
        res.stdout = out.read()
        res.stderr = err.read()
    return finish(res, launched, code, timed_out, timeout)


def tail(b, n=400):
    s = b.decode("utf-8", "replace").strip()
    return s[-n:]


# --------------------------------------------------------------------------
# Workloads
# --------------------------------------------------------------------------

class Workload:
    kind = "c"
    check_digest = False  # compare stdout across allocators

    def __init__(self, name, desc, args=(), quick_args=(), program=None):
        self.name = name
        self.program = program or name  # the binary in workloads/ (one may serve several)
        self.desc = desc
        self.args = [str(a) for a in args]
        self.quick_args = [str(a) for a in quick_args]

    def requirements(self, ctx):
        return True

    def prepare(self, ctx):
        pass

    def argv(self, ctx):
        return [ctx.bins[self.program]] + (self.quick_args if ctx.quick else self.args)

    def env(self, ctx, alloc):
        return alloc.env(ctx.base_env)

    def command_line(self, ctx, alloc):
        env = self.env(ctx, alloc)
        pre = []
        for k in ("LD_PRELOAD", "PYTHONMALLOC"):
            if k in env:
                pre.append("%s=%s" % (k, env[k]))
        return shlex.join((["env"] + pre if pre else []) + self.argv(ctx))

    def run(self, ctx, alloc):
        return run_process(self.argv(ctx), self.env(ctx, alloc), ctx.timeout,
                           cwd=ctx.tmp)


class PythonWorkload(Workload):
    kind = "python"
    check_digest = True

    def argv(self, ctx):
        return [ctx.python, str(WORKLOAD_DIR / "pyalloc.py")] + (
            self.quick_args if ctx.quick else self.args)

    def env(self, ctx, alloc):
        env = alloc.env(ctx.base_env)
        env["PYTHONMALLOC"] = "malloc"
        env["PYTHONHASHSEED"] = "0"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env


def generate_sql(rows, seed=1):
    """A deterministic SQL script: bulk inserts, indexes, joins, aggregates,
    updates, deletes."""
    import random
    rng = random.Random(seed)
    out = ["PRAGMA journal_mode=MEMORY;", "PRAGMA synchronous=OFF;",
           "PRAGMA cache_size=-32768;",
           "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT, city TEXT, note TEXT);",
           "CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER, "
           "amount REAL, status TEXT, payload TEXT);",
           "BEGIN;"]
    cities = ["city%02d" % i for i in range(50)]
    ncust = max(10, rows // 10)
    for i in range(ncust):
        out.append("INSERT INTO customers VALUES(%d,'cust%d','%s','%s');"
                   % (i, i, rng.choice(cities), "n" * rng.randrange(0, 300)))
    for i in range(rows):
        out.append("INSERT INTO orders(customer,amount,status,payload) "
                   "VALUES(%d,%.2f,'%s','%s');"
                   % (rng.randrange(ncust), rng.random() * 1000,
                      rng.choice(["new", "paid", "shipped", "void"]),
                      ("p%x" % rng.getrandbits(64)) * rng.randrange(1, 40)))
    out.append("COMMIT;")
    out += [
        "CREATE INDEX orders_customer ON orders(customer);",
        "CREATE INDEX orders_status_amount ON orders(status, amount);",
        "CREATE INDEX customers_city ON customers(city);",
        "SELECT status, count(*), round(sum(amount),2) FROM orders GROUP BY status ORDER BY status;",
        "SELECT c.city, count(*), round(avg(o.amount),2) FROM orders o JOIN customers c "
        "ON c.id=o.customer GROUP BY c.city ORDER BY 2 DESC, 1 LIMIT 10;",
        "SELECT id, length(payload) FROM orders ORDER BY length(payload) DESC, id LIMIT 5;",
        "SELECT count(*) FROM orders WHERE payload LIKE '%p1%';",
        "SELECT group_concat(name, ',') FROM (SELECT name FROM customers "
        "WHERE city='city07' ORDER BY id LIMIT 50);",
        "BEGIN;",
        "UPDATE orders SET status='archived', payload=upper(payload) WHERE amount < 100;",
        "DELETE FROM orders WHERE status='void' AND amount > 500;",
        "INSERT INTO orders(customer,amount,status,payload) SELECT customer, amount*2, "
        "'copy', payload || payload FROM orders WHERE id % 7 = 0;",
        "COMMIT;",
        "SELECT status, count(*) FROM orders GROUP BY status ORDER BY status;",
        "SELECT customer, count(*) AS n FROM orders GROUP BY customer ORDER BY n DESC, customer LIMIT 5;",
        "SELECT count(DISTINCT payload) FROM orders;",
        "CREATE TEMP TABLE t AS SELECT customer, group_concat(status) AS s FROM orders GROUP BY customer;",
        "SELECT count(*), sum(length(s)) FROM t;",
    ]
    return "\n".join(out) + "\n"


class SqliteWorkload(Workload):
    kind = "sqlite"
    check_digest = True

    def requirements(self, ctx):
        self.exe = ctx.need_tool("sqlite3", "sqlite3")
        return self.exe is not None

    def prepare(self, ctx):
        rows = int((self.quick_args if ctx.quick else self.args)[0])
        self.sql = os.path.join(ctx.tmp, "sqlite-workload.sql")
        with open(self.sql, "w") as f:
            f.write(generate_sql(rows))
        self.db = os.path.join(ctx.tmp, "sqlite-workload.db")

    def argv(self, ctx):
        return [getattr(self, "exe", "sqlite3"), "-bail", "-batch",
                os.path.join(ctx.tmp, "sqlite-workload.db")]

    def command_line(self, ctx, alloc):
        return Workload.command_line(self, ctx, alloc) + " < sqlite-workload.sql"

    def run(self, ctx, alloc):
        for suffix in ("", "-journal", "-wal", "-shm"):
            try:
                os.unlink(self.db + suffix)
            except FileNotFoundError:
                pass
        return run_process(self.argv(ctx), self.env(ctx, alloc), ctx.timeout,
                           stdin_path=self.sql, cwd=ctx.tmp)


REDIS_RESULT_RE = re.compile(r"^\s*(.+?): ([0-9.]+) requests per second")


class RedisWorkload(Workload):
    """redis-server under the allocator, redis-benchmark (not preloaded)
    as the client on 127.0.0.1. Timed: the redis-benchmark run. RSS: the
    server's peak RSS."""
    kind = "redis"
    TESTS = "set,get,lpush,lpop,sadd,hset,zadd,lrange_100"

    def requirements(self, ctx):
        self.server = ctx.need_tool("redis-server", "redis-server")
        self.client = ctx.need_tool("redis-benchmark", "redis-tools")
        return self.server is not None and self.client is not None

    def bench_argv(self, ctx, port):
        n = (self.quick_args if ctx.quick else self.args)[0]
        return [self.client, "-h", "127.0.0.1", "-p", str(port), "-n", n,
                "-q", "-P", "16", "-c", "50", "-r", "100000", "-d", "256",
                "-t", self.TESTS]

    def server_argv(self, port, rdir):
        return [self.server, "--port", str(port), "--bind", "127.0.0.1",
                "--protected-mode", "yes", "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--dir", rdir, "--logfile", "",
                "--databases", "1"]

    def env(self, ctx, alloc):
        # Debian's redis-server is linked against libjemalloc.so.2. For the
        # glibc baseline we preload libc.so.6 so that malloc & co. resolve to
        # glibc rather than to the linked-in jemalloc.
        return alloc.env(ctx.base_env, force_libc=ctx.libc_path)

    def command_line(self, ctx, alloc):
        env = self.env(ctx, alloc)
        return "%s  +  %s" % (
            shlex.join(["env", "LD_PRELOAD=" + env.get("LD_PRELOAD", "")]
                       + self.server_argv("PORT", "DIR")),
            shlex.join(self.bench_argv(ctx, "PORT")))

    @staticmethod
    def free_port():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    @staticmethod
    def command(port, cmd, timeout=5.0):
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(cmd.encode() + b"\r\n")
            try:
                return s.recv(256)
            except (socket.timeout, ConnectionError):
                return b""

    def run(self, ctx, alloc):
        res = Proc()
        ctx.redis_seq += 1
        rdir = os.path.join(ctx.tmp, "redis-%d" % ctx.redis_seq)
        os.makedirs(rdir, exist_ok=True)
        logf = open(os.path.join(rdir, "server.log"), "w+b")
        port = self.free_port()
        server = launch(self.server_argv(port, rdir), self.env(ctx, alloc),
                        stdout=logf, stderr=subprocess.STDOUT, cwd=rdir)
        helper_code = None  # set once runproc (and so the server) has exited

        def server_gone():
            nonlocal helper_code
            if helper_code is not None:
                return True
            pid, status, _ = os.wait4(server.pid, os.WNOHANG)
            if pid == 0:
                return False
            _running.discard(server.pid)
            helper_code = os.waitstatus_to_exitcode(status)
            server.popen.returncode = helper_code
            return True

        def server_failure(what):
            r = server.parse_result() if helper_code is not None else None
            logf.seek(0)
            res.status = "FAIL"
            res.reason = "redis-server %s%s" % (
                what, (" (%s)" % describe_exit(r["exit"])) if r else "")
            res.stderr = logf.read()[-2000:]
            return res

        try:
            # Wait for the server to answer PING.
            deadline = time.monotonic() + 15
            while True:
                if server_gone():
                    return server_failure("exited during start-up")
                try:
                    if self.command(port, "PING", 1.0).startswith(b"+PONG"):
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    return server_failure("did not answer PING within 15 s")
                time.sleep(0.02)
            # Prove that the preload is mapped into the server process.
            if alloc.lib:
                maps = ""
                cpid = server.child_pid()
                if cpid:
                    try:
                        with open("/proc/%d/maps" % cpid) as f:
                            maps = f.read()
                    except OSError:
                        pass
                if os.path.realpath(alloc.lib) not in maps and alloc.lib not in maps:
                    return server_failure("does not have %s mapped" % alloc.lib)
            bench = run_process(self.bench_argv(ctx, port), ctx.base_env,
                                ctx.timeout, cwd=rdir)
            res.wall = bench.wall
            text = bench.stdout.decode("utf-8", "replace").replace("\r", "\n")
            rps = {}
            for line in text.splitlines():
                m = REDIS_RESULT_RE.match(line)
                if m:
                    rps[m.group(1)] = float(m.group(2))
            res.extra = {"rps": rps}
            if server_gone():
                return server_failure("died during the benchmark")
            if bench.status != "ok":
                res.status = bench.status
                res.reason = "redis-benchmark " + bench.reason
                res.stderr = bench.stderr + bench.stdout[-1000:]
            elif len(rps) < len(self.TESTS.split(",")):
                res.status = "FAIL"
                res.reason = "redis-benchmark reported %d results" % len(rps)
                res.stderr = bench.stdout[-1000:]
            # Shut the server down cleanly and collect its rusage.
            try:
                self.command(port, "SHUTDOWN NOSAVE", 5.0)
            except OSError:
                pass
            if helper_code is None:
                helper_code, timed_out = reap(server.popen, 30)
                if timed_out:
                    return server_failure("did not shut down within 30 s")
            r = server.parse_result()
            if r is None or helper_code != 0:
                return server_failure("runproc failed")
            res.maxrss_kb = r["maxrss_kb"]
            res.exit = r["exit"]
            if r["exit"] != 0 and res.status == "ok":
                return server_failure("exited abnormally on SHUTDOWN")
            return res
        finally:
            if helper_code is None:
                _kill_group(server.pid)
                try:
                    os.wait4(server.pid, 0)
                except ChildProcessError:
                    pass
                _running.discard(server.pid)
            server.cleanup()
            logf.close()


def make_workloads():
    W = Workload
    return [
        W("churn", "single thread, 16..512 B objects, working set, random replace",
          [20000, 6000000], [20000, 1500000]),
        W("realloc", "8 B..64 KiB log-uniform, realloc grow/shrink",
          [4000, 1500000], [4000, 400000]),
        W("larson", "4 threads, slot arrays rotate between threads: cross-thread frees",
          [4, 4000, 30, 25000], [4, 4000, 20, 20000]),
        W("prodcons", "2 producers malloc, 2 consumers free, bounded mutex/condvar queue",
          [2, 2, 400000, 1024], [2, 2, 150000, 1024]),
        W("threads", "8 threads (oversubscribed) private alloc/free, 16 B..8 KiB",
          [8, 2000, 1000000], [8, 2000, 400000]),
        W("large", "256 KiB..4 MiB blocks (many near 1 MiB), some realloc",
          [16, 8000], [16, 3000]),
        W("huge", "2..32 MiB blocks (many near the 8 MiB largest block), some realloc",
          [6, 300, 1, 8192], [6, 100, 1, 8192], program="large"),
        W("aligned", "posix_memalign/aligned_alloc, alignment 16 B..64 KiB",
          [2000, 600000], [2000, 250000]),
        W("steady", "phases of growth and shrink; final RSS after shrink",
          [16, 128], [8, 96]),
        PythonWorkload("python", "CPython with PYTHONMALLOC=malloc: dicts/lists/strings churn",
                       [0.5], [0.12]),
        SqliteWorkload("sqlite", "sqlite3 CLI: inserts, indexes, joins, aggregates on a temp db",
                       [60000], [15000]),
        RedisWorkload("redis", "redis-server under the allocator, redis-benchmark -P 16 on loopback",
                      [100000], [20000]),
    ]


# --------------------------------------------------------------------------
# Context
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# Preload probe
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# Statistics and reporting
# --------------------------------------------------------------------------

def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    if not xs:
        return None
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def fmt_time(s):
    if s is None:
        return "-"
    if s >= 100:
        return "%.0f s" % s
    if s >= 10:
        return "%.1f s" % s
    return "%.3f s" % s


def fmt_kb(kb):
    if kb is None:
        return "-"
    mib = kb / 1024.0
    if mib >= 1000:
        return "%.2fG" % (mib / 1024)
    if mib >= 100:
        return "%.0fM" % mib
    return "%.1fM" % mib


def fmt_ratio(r):
    return "-" if r is None else "%.2fx" % r


def summarize_cell(samples):
    n = len(samples)
    bad = [s for s in samples if s["status"] != "ok"]
    cell = {"runs": n, "ok": n - len(bad)}
    if bad:
        kinds = collections.Counter(s["status"] for s in bad)
        worst = "MISMATCH" if "MISMATCH" in kinds else (
            "TIMEOUT" if "TIMEOUT" in kinds and "FAIL" not in kinds else "FAIL")
        cell["status"] = worst
        cell["failures"] = ["rep %d: %s %s%s" % (
            s["rep"], s["status"], s.get("reason", ""),
            (": " + s["stderr_tail"].strip().splitlines()[-1][:200])
            if s.get("stderr_tail", "").strip() else "") for s in bad]
        return cell
    cell["status"] = "ok"
    walls = [s["wall_s"] for s in samples]
    rss = [s["maxrss_kb"] for s in samples if s.get("maxrss_kb") is not None]
    cell["median_wall_s"] = statistics.median(walls)
    cell["min_wall_s"] = min(walls)
    cell["max_wall_s"] = max(walls)
    cell["spread"] = (max(walls) - min(walls)) / cell["median_wall_s"] \
        if cell["median_wall_s"] else None
    cell["median_maxrss_kb"] = statistics.median(rss) if rss else None
    fr = [s["final_rss_kb"] for s in samples if s.get("final_rss_kb") is not None]
    if fr:
        cell["median_final_rss_kb"] = statistics.median(fr)
    rps = [s["extra"]["rps"] for s in samples if s.get("extra", {}).get("rps")]
    if rps:
        cell["median_rps"] = {k: statistics.median(r[k] for r in rps if k in r)
                              for k in rps[0]}
    return cell


def check_digests(results, baseline):
    """Marks runs whose output differs from the baseline's (or the majority)
    as MISMATCH."""
    msgs = []
    for wname, per_alloc in results.items():
        digests = collections.Counter()
        base = collections.Counter()
        for aname, samples in per_alloc.items():
            for s in samples:
                if s["status"] == "ok" and s.get("digest"):
                    digests[s["digest"]] += 1
                    if aname == baseline:
                        base[s["digest"]] += 1
        if not digests:
            continue
        ref = (base or digests).most_common(1)[0][0]
        for aname, samples in per_alloc.items():
            for s in samples:
                if s["status"] == "ok" and s.get("digest") and s["digest"] != ref:
                    s["status"] = "MISMATCH"
                    s["reason"] = "output differs from %s's" % (
                        baseline if base else "the majority")
                    msgs.append("%s / %s rep %d: output differs from the reference"
                                % (wname, aname, s["rep"]))
    return msgs


def render_table(title, rows, cols, width0=10, width=16):
    lines = [title]
    lines.append("".join([("%-" + str(width0) + "s") % rows[0][0]] +
                         [("%" + str(width) + "s") % c for c in rows[0][1:]]))
    for r in rows[1:]:
        lines.append("".join([("%-" + str(width0) + "s") % r[0]] +
                             [("%" + str(width) + "s") % c for c in r[1:]]))
    return "\n".join(lines)


def build_report(workloads, allocs, summary, baseline):
    """Returns the text tables (time and RSS)."""
    out = []
    names = [a.name for a in allocs]
    w0 = max(10, max(len(w) for w in workloads) + 2)
    for metric, key, fmt, title in (
            ("time", "median_wall_s", fmt_time,
             "Wall time: median over reps; ratio to %s (lower is better)" % baseline),
            ("rss", "median_maxrss_kb", fmt_kb,
             "Peak RSS: median over reps; ratio to %s (lower is better)" % baseline)):
        rows = [["workload"] + names]
        for w in workloads:
            row = [w]
            for a in names:
                c = summary[w].get(a)
                if c is None:
                    row.append("-")
                elif c["status"] != "ok":
                    row.append("%s %d/%d" % (c["status"], c["runs"] - c["ok"], c["runs"]))
                else:
                    r = c.get(metric + "_ratio")
                    if a == baseline or r is None:
                        row.append(fmt(c[key]))
                    else:
                        row.append("%s %s" % (fmt(c[key]), fmt_ratio(r)))
            rows.append(row)
        gm = ["geomean"]
        for a in names:
            g = summary["_geomean"].get(a, {}).get(metric)
            n = summary["_geomean"].get(a, {}).get("n", 0)
            if a == baseline:
                gm.append("1.00x")
            elif g is None:
                gm.append("-")
            else:
                gm.append(fmt_ratio(g) + ("" if n == len(workloads) else " (%d)" % n))
        rows.append(gm)
        out.append(render_table("== " + title + " ==", rows, names, w0))
        out.append("")
    # steady-state final RSS
    for w in workloads:
        if any(summary[w].get(a, {}).get("median_final_rss_kb") for a in names):
            parts = []
            for a in names:
                c = summary[w].get(a, {})
                v = c.get("median_final_rss_kb")
                if v is None:
                    parts.append("%s %s" % (a, c.get("status", "-")))
                else:
                    b = summary[w].get(baseline, {}).get("median_final_rss_kb")
                    parts.append("%s %s%s" % (a, fmt_kb(v), (" (%.2fx)" % (v / b))
                                              if b and a != baseline else ""))
            out.append("%s: RSS after the final shrink (final_rss_kb, median): %s"
                       % (w, ", ".join(parts)))
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------
# SVG
# --------------------------------------------------------------------------

def color_for(name, idx):
    return COLORS.get(name) or EXTRA_COLORS[idx % len(EXTRA_COLORS)]


def nice_step(span):
    for step in (0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000):
        if span / step <= 8:
            return step
    return span / 8


def svg_chart(x0, y0, title, ylabel, groups, series, values, statuses, cap=4.0,
              group_label_rot=0, fmt_val="%.2f", baseline_name="baseline",
              xlabel="workload"):
    """A grouped bar chart. values[(group, series)] -> float or None,
    statuses[(group, series)] -> status text shown when the value is None.
    Returns (svg elements, width, height)."""
    bar_w = 13
    gap = 20
    left, right, top, bottom = 64, 150, 34, 58
    plot_h = 260
    gw = bar_w * len(series) + gap
    plot_w = max(gw * len(groups), 200)
    width = left + plot_w + right
    height = top + plot_h + bottom
    finite = [v for v in values.values() if v is not None]
    vmax = max(finite + [1.0])
    ymax = min(max(vmax * 1.08, 1.2), cap)
    step = nice_step(ymax)
    ymax = math.ceil(ymax / step - 1e-9) * step
    X = lambda px: x0 + left + px  # noqa: E731
    Y = lambda v: y0 + top + plot_h - (min(v, ymax) / ymax) * plot_h  # noqa: E731
    e = []
    e.append('<g font-family="sans-serif" font-size="11">')
    e.append('<text x="%.1f" y="%.1f" font-size="14" font-weight="bold">%s</text>'
             % (x0 + left, y0 + 20, xml_escape(title)))
    # grid + y ticks
    t = 0.0
    while t <= ymax + 1e-9:
        y = Y(t)
        e.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e0e0e0"/>'
                 % (X(0), y, X(plot_w), y))
        e.append('<text x="%.1f" y="%.1f" text-anchor="end">%g</text>'
                 % (X(-6), y + 4, round(t, 3)))
        t += step
    # axes
    e.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000"/>'
             % (X(0), Y(0), X(plot_w), Y(0)))
    e.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000"/>'
             % (X(0), Y(0), X(0), Y(ymax)))
    e.append('<text transform="translate(%.1f,%.1f) rotate(-90)" '
             'text-anchor="middle" font-size="12">%s</text>'
             % (x0 + 16, y0 + top + plot_h / 2, xml_escape(ylabel)))
    # bars
    for gi, g in enumerate(groups):
        gx = gi * gw + gap / 2
        for si, s in enumerate(series):
            v = values.get((g, s))
            bx = X(gx + si * bar_w)
            if v is None:
                st = statuses.get((g, s))
                if st:
                    e.append('<text transform="translate(%.1f,%.1f) rotate(-90)" '
                             'font-size="9" fill="#c00000">%s</text>'
                             % (bx + bar_w * 0.75, Y(0) - 3, xml_escape(st)))
                continue
            yt = Y(v)
            e.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s">'
                     '<title>%s / %s: %s</title></rect>'
                     % (bx, yt, bar_w - 1, Y(0) - yt, color_for(s, si),
                        xml_escape(g), xml_escape(s), fmt_val % v))
            if v > ymax:
                e.append('<text x="%.1f" y="%.1f" font-size="9" text-anchor="middle" '
                         'fill="#000">%s</text>'
                         % (bx + bar_w / 2, yt - 3, (fmt_val % v) + "\u2191"))
        lx = X(gx + len(series) * bar_w / 2)
        if group_label_rot:
            e.append('<text transform="translate(%.1f,%.1f) rotate(%d)" '
                     'text-anchor="end">%s</text>'
                     % (lx, Y(0) + 14, group_label_rot, xml_escape(g)))
        else:
            e.append('<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>'
                     % (lx, Y(0) + 15, xml_escape(g)))
    # 1.0 reference line
    if ymax >= 1.0:
        e.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000" '
                 'stroke-width="1.5" stroke-dasharray="6,3"/>'
                 % (X(0), Y(1.0), X(plot_w), Y(1.0)))
    # separator before the summary group
    if "geomean" in groups:
        sx = X(groups.index("geomean") * gw)
        e.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999" '
                 'stroke-dasharray="2,3"/>' % (sx, Y(0), sx, Y(ymax)))
    # legend
    lx, ly = X(plot_w) + 14, y0 + top + 4
    e.append('<text x="%.1f" y="%.1f" font-weight="bold">allocator</text>' % (lx, ly + 10))
    for si, s in enumerate(series):
        yy = ly + 18 + si * 17
        e.append('<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/>'
                 % (lx, yy, color_for(s, si)))
        e.append('<text x="%.1f" y="%.1f">%s</text>' % (lx + 17, yy + 10, xml_escape(s)))
    yy = ly + 18 + len(series) * 17 + 6
    e.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000" '
             'stroke-width="1.5" stroke-dasharray="6,3"/>' % (lx, yy + 6, lx + 12, yy + 6))
    e.append('<text x="%.1f" y="%.1f">%s</text>'
             % (lx + 17, yy + 10, xml_escape("1.0 = " + baseline_name)))
    e.append('<text x="%.1f" y="%.1f" text-anchor="middle" font-size="12">%s</text>'
             % (X(plot_w / 2), y0 + height - 12, xml_escape(xlabel)))
    e.append("</g>")
    return e, width, height


def write_svg(path, charts, footer):
    """charts: list of dicts with svg_chart kwargs; stacks them vertically."""
    parts, w, y = [], 0, 0
    for c in charts:
        els, cw, ch = svg_chart(0, y, **c)
        parts += els
        w = max(w, cw)
        y += ch + 10
    y += 10
    parts.append('<text x="10" y="%d" font-family="sans-serif" font-size="10" '
                 'fill="#555">%s</text>' % (y, xml_escape(footer)))
    y += 10
    doc = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'viewBox="0 0 %d %d">' % (w, y, w, y),
           '<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>' % (w, y)]
    doc += parts
    doc.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(doc) + "\n")


# --------------------------------------------------------------------------
# Machine info
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# Main benchmark
# --------------------------------------------------------------------------

def progress(i, total, wname, aname, rep, reps, res_text):
    w = len(str(total))
    log("[%*d/%d] %-11s %-9s rep %d/%d  %s"
        % (w, i, total, wname, aname, rep, reps, res_text))


def sample_from(res, rep, check_digest):
    s = {"rep": rep, "status": res.status, "wall_s": res.wall,
         "maxrss_kb": res.maxrss_kb, "exit": res.exit,
         "utime_s": res.utime, "stime_s": res.stime}
    if res.status != "ok":
        s["reason"] = res.reason
        s["stderr_tail"] = tail(res.stderr, 1500)
        s["wall_s"] = None
    out = res.stdout.decode("utf-8", "replace")
    m = re.search(r"^final_rss_kb (\d+)", out, re.M)
    if m:
        s["final_rss_kb"] = int(m.group(1))
        for key in ("live_kb", "peak_rss_kb", "empty_rss_kb"):
            m2 = re.search(r"^%s (-?\d+)" % key, out, re.M)
            if m2:
                s[key] = int(m2.group(1))
    if check_digest and res.status == "ok":
        s["digest"] = hashlib.sha256(res.stdout).hexdigest()
    if getattr(res, "extra", None):
        s["extra"] = res.extra
    return s


def cmd_run(args):
    installer = Installer(not args.no_install)
    workloads = make_workloads()
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        known = {w.name for w in workloads}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            sys.exit("bench: unknown workload(s) %s; known: %s"
                     % (", ".join(unknown), ", ".join(w.name for w in workloads)))
        workloads = [w for w in workloads if w.name in wanted]
    anames = [a.strip() for a in args.allocators.split(",") if a.strip()]
    allocs = resolve_allocators(anames, args, installer)
    bins = build_programs(Path(args.build_dir))
    ctx = Context(args, installer, bins)
    try:
        return _cmd_run(args, ctx, workloads, allocs)
    finally:
        if args.keep_tmp:
            log("bench: temporary files kept in %s" % ctx.tmp)
        else:
            shutil.rmtree(ctx.tmp, ignore_errors=True)


def _cmd_run(args, ctx, workloads, allocs):
    load0 = os.getloadavg()
    allocs = probe_allocators(ctx, allocs)
    if not allocs:
        sys.exit("bench: no usable allocator")
    workloads = [w for w in workloads if w.requirements(ctx) or
                 warn("skipping workload %s: requirements missing" % w.name)]
    for w in workloads:
        w.prepare(ctx)
    reps = args.reps
    baseline = "glibc" if any(a.name == "glibc" for a in allocs) else allocs[0].name
    log("bench: %d workload(s) x %d allocator(s) x %d rep(s)%s; allocators: %s"
        % (len(workloads), len(allocs), reps, " (quick)" if args.quick else "",
           ", ".join("%s=%s" % (a.name, a.lib or "-") for a in allocs)))

    if args.warmup:
        base = next(a for a in allocs if a.name == baseline)
        for w in workloads:
            r = w.run(ctx, base)
            log("[warm-up] %-11s %-9s %s" % (w.name, base.name,
                "%.2f s" % r.wall if r.status == "ok" else r.status + " " + r.reason))

    results = {w.name: {a.name: [] for a in allocs} for w in workloads}
    total = reps * len(workloads) * len(allocs)
    i = 0
    t_start = time.monotonic()
    for rep in range(1, reps + 1):
        for w in workloads:
            for a in allocs:
                i += 1
                if a.lib and not os.path.isfile(a.lib):
                    # ld.so silently ignores a missing preload: refuse to time it.
                    res = Proc()
                    res.status = "FAIL"
                    res.reason = "preload library %s is missing" % a.lib
                else:
                    res = w.run(ctx, a)
                s = sample_from(res, rep, w.check_digest)
                results[w.name][a.name].append(s)
                if res.status == "ok":
                    txt = "%.2f s" % res.wall
                else:
                    txt = "%s (%s)" % (res.status, res.reason)
                    err = tail(res.stderr, 300)
                    if err:
                        txt += "\n        " + err.replace("\n", "\n        ")
                progress(i, total, w.name, a.name, rep, reps, txt)
    elapsed = time.monotonic() - t_start

    mismatches = check_digests(results, baseline)
    for m in mismatches:
        warn(m)

    # Summaries, ratios, geomeans
    summary = {}
    for w in workloads:
        summary[w.name] = {}
        for a in allocs:
            summary[w.name][a.name] = summarize_cell(results[w.name][a.name])
        b = summary[w.name].get(baseline)
        for a in allocs:
            c = summary[w.name][a.name]
            if c["status"] == "ok" and b and b["status"] == "ok":
                c["time_ratio"] = c["median_wall_s"] / b["median_wall_s"]
                if c.get("median_maxrss_kb") and b.get("median_maxrss_kb"):
                    c["rss_ratio"] = c["median_maxrss_kb"] / b["median_maxrss_kb"]
                if c.get("median_final_rss_kb") and b.get("median_final_rss_kb"):
                    c["final_rss_ratio"] = (c["median_final_rss_kb"]
                                            / b["median_final_rss_kb"])
    gms = {}
    for a in allocs:
        tr = [summary[w.name][a.name].get("time_ratio") for w in workloads]
        rr = [summary[w.name][a.name].get("rss_ratio") for w in workloads]
        tr = [x for x in tr if x]
        rr = [x for x in rr if x]
        gms[a.name] = {"time": geomean(tr), "rss": geomean(rr), "n": len(tr)}
    summary["_geomean"] = gms

    wnames = [w.name for w in workloads]
    report = build_report(wnames, allocs, summary, baseline)
    print()
    print(report, end="")
    failed = [(w, a, c) for w in wnames for a, c in summary[w].items()
              if c["status"] != "ok"]
    if failed:
        print()
        print("Failures:")
        for w, a, c in failed:
            for f in c["failures"]:
                print("  %s / %s: %s" % (w, a, f))
    for a in allocs:
        if a.sha256 and a.lib and os.path.isfile(a.lib) and file_sha256(a.lib) != a.sha256:
            warn("%s changed on disk during the run (%s); results may mix builds"
                 % (a.lib, a.name))

    minfo = machine_info(load0)
    minfo["loadavg_end"] = os.getloadavg()
    doc = {
        "suite": "BuddyMalloc bench",
        "mode": "quick" if args.quick else "full",
        "machine": minfo,
        "config": {
            "reps": reps, "timeout_s": args.timeout, "baseline": baseline,
            "cflags": CFLAGS, "elapsed_s": round(elapsed, 1),
            "order": "for each rep: for each workload: for each allocator",
        },
        "allocators": {a.name: alloc_info(a) for a in allocs},
        "workloads": {w.name: {"description": w.desc, "kind": w.kind,
                               "command": {a.name: w.command_line(ctx, a) for a in allocs}}
                      for w in workloads},
        "results": {w: {a: {"samples": results[w][a], **summary[w][a]}
                        for a in results[w]} for w in wnames},
        "geomean": gms,
    }
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=1)
    log("bench: wrote %s" % args.json)

    series = [a.name for a in allocs if a.name != baseline]
    groups = wnames + ["geomean"]
    tv, rv, st = {}, {}, {}
    for w in wnames:
        for a in series:
            c = summary[w][a]
            tv[(w, a)] = c.get("time_ratio")
            rv[(w, a)] = c.get("rss_ratio")
            if c["status"] != "ok":
                st[(w, a)] = c["status"]
            elif summary[w][baseline]["status"] != "ok":
                st[(w, a)] = "no base"
    for a in series:
        tv[("geomean", a)] = gms[a]["time"]
        rv[("geomean", a)] = gms[a]["rss"]
    footer = ("%s, %s reps, %s; nproc=%s, kernel %s; %s"
              % ("quick run" if args.quick else "full run", reps,
                 "median of runs, ratio to %s" % baseline, minfo["nproc"],
                 minfo["kernel"], minfo["date"]))
    if series:
        write_svg(args.svg, [
            dict(title="Wall time relative to %s (lower is better)" % baseline,
                 ylabel="median wall time / %s" % baseline, groups=groups,
                 series=series, values=tv, statuses=st, baseline_name=baseline),
            dict(title="Peak RSS relative to %s (lower is better)" % baseline,
                 ylabel="median peak RSS / %s" % baseline, groups=groups,
                 series=series, values=rv, statuses=st, baseline_name=baseline),
        ], footer)
        log("bench: wrote %s" % args.svg)
    else:
        log("bench: only the baseline ran; no chart written")
    log("bench: done in %.0f s" % elapsed)
    return 1 if failed else 0


# --------------------------------------------------------------------------
# Micro mode
# --------------------------------------------------------------------------

MICRO_MODES = ["pair", "batch64"]


def cmd_micro(args):
    installer = Installer(not args.no_install)
    anames = [a.strip() for a in args.allocators.split(",") if a.strip()]
    allocs = resolve_allocators(anames, args, installer)
    bins = build_programs(Path(args.build_dir))
    ctx = Context(args, installer, bins)
    load0 = os.getloadavg()
    try:
        allocs = probe_allocators(ctx, allocs)
        if not allocs:
            sys.exit("bench: no usable allocator")
        baseline = "glibc" if any(a.name == "glibc" for a in allocs) else allocs[0].name
        iters = "300000" if args.quick else "2000000"
        reps = args.reps
        total = reps * len(MICRO_MODES) * len(allocs)
        raw = {m: {a.name: [] for a in allocs} for m in MICRO_MODES}
        i = 0
        for rep in range(1, reps + 1):
            for mode in MICRO_MODES:
                for a in allocs:
                    i += 1
                    argv = [bins["micro"], mode, iters, "3"]
                    if a.lib and not os.path.isfile(a.lib):
                        res = Proc()
                        res.status, res.reason = "FAIL", "preload library missing"
                    else:
                        res = run_process(argv, a.env(ctx.base_env), args.timeout)
                    vals = {}
                    for line in res.stdout.decode(errors="replace").splitlines():
                        p = line.split()
                        if len(p) == 2:
                            vals[int(p[0])] = float(p[1])
                    s = {"rep": rep, "status": res.status, "ns": vals,
                         "wall_s": res.wall if res.status == "ok" else None}
                    if res.status != "ok":
                        s["reason"] = res.reason
                        s["stderr_tail"] = tail(res.stderr, 1500)
                    raw[mode][a.name].append(s)
                    txt = ("%.2f s" % res.wall) if res.status == "ok" else \
                        "%s (%s) %s" % (res.status, res.reason, tail(res.stderr, 200))
                    progress(i, total, "micro-" + mode, a.name, rep, reps, txt)
        summary = {}
        out = []
        names = [a.name for a in allocs]
        for mode in MICRO_MODES:
            summary[mode] = {}
            sizes = sorted({sz for a in names for s in raw[mode][a] for sz in s["ns"]})
            for a in names:
                ok = [s for s in raw[mode][a] if s["status"] == "ok"]
                bad = len(raw[mode][a]) - len(ok)
                summary[mode][a] = {
                    "status": "ok" if not bad else "FAIL",
                    "median_ns": {sz: statistics.median(s["ns"][sz] for s in ok
                                                        if sz in s["ns"])
                                  for sz in sizes if not bad and ok},
                }
            rows = [["size"] + names]
            for sz in sizes:
                row = [str(sz)]
                b = summary[mode][baseline]["median_ns"].get(sz)
                for a in names:
                    c = summary[mode][a]
                    v = c["median_ns"].get(sz)
                    if c["status"] != "ok" or v is None:
                        row.append(c["status"])
                        continue
                    r = v / b if b else None
                    c.setdefault("ratio", {})[sz] = r
                    row.append("%.1f ns" % v if a == baseline or r is None
                               else "%.1f ns %s" % (v, fmt_ratio(r)))
                rows.append(row)
            gm = ["geomean"]
            for a in names:
                g = geomean(list(summary[mode][a].get("ratio", {}).values()))
                summary[mode][a]["geomean_ratio"] = g
                gm.append("1.00x" if a == baseline else fmt_ratio(g))
            rows.append(gm)
            out.append(render_table(
                "== micro %s: ns per malloc+free pair (median of %d runs, best of 3 "
                "trials each); ratio to %s ==" % (mode, reps, baseline), rows, names, 10))
            out.append("")
        print()
        print("\n".join(out).rstrip())
        minfo = machine_info(load0)
        minfo["loadavg_end"] = os.getloadavg()
        doc = {"suite": "BuddyMalloc bench micro", "machine": minfo,
               "config": {"reps": reps, "iters": int(iters), "baseline": baseline},
               "allocators": {a.name: alloc_info(a) for a in allocs},
               "results": {m: {a: {"samples": raw[m][a], **summary[m][a]} for a in names}
                           for m in MICRO_MODES}}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
        log("bench: wrote %s" % args.json)
        series = [a for a in names if a != baseline]
        if series:
            charts = []
            for mode in MICRO_MODES:
                vals, st = {}, {}
                sizes = sorted({sz for a in names
                                for sz in summary[mode][a]["median_ns"]})
                for sz in sizes:
                    for a in series:
                        vals[(str(sz), a)] = summary[mode][a].get("ratio", {}).get(sz)
                        if summary[mode][a]["status"] != "ok":
                            st[(str(sz), a)] = "FAIL"
                charts.append(dict(
                    title="micro %s: ns per malloc+free relative to %s" % (mode, baseline),
                    ylabel="ns per pair / %s" % baseline, groups=[str(s) for s in sizes],
                    series=series, values=vals, statuses=st,
                    baseline_name=baseline, xlabel="allocation size (bytes)"))
            write_svg(args.svg, charts, "micro mode, %d reps; x axis: size in bytes; %s"
                      % (reps, minfo["date"]))
            log("bench: wrote %s" % args.svg)
        return 0 if all(summary[m][a]["status"] == "ok" for m in MICRO_MODES
                        for a in names) else 1
    finally:
        shutil.rmtree(ctx.tmp, ignore_errors=True)


# --------------------------------------------------------------------------

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


if __name__ == "__main__":
    sys.exit(main())
