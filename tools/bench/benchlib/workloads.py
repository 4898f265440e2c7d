"""The workloads: the C programs, CPython, sqlite3 and redis-server, and the list of them."""

import os
import re
import shlex
import socket
import subprocess
import time

from .common import WORKLOAD_DIR
from .process import Proc, _kill_group, _running, describe_exit, launch, reap, run_process


class Workload:
    kind = "c"
    check_digest = False  # compare stdout across allocators

    def __init__(self, name, desc, args=(), quick_args=(), program=None, check_digest=None):
        self.name = name
        if check_digest is not None:
            self.check_digest = check_digest
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
        W("pairs", "4 producer/consumer pairs (8 threads), one lock-free ring each; "
          "the consumer frees", ["pipeline", 8, 0, 800000], ["pipeline", 8, 0, 250000],
          program="scaling"),
        W("threads", "8 threads (oversubscribed) private alloc/free, 16 B..8 KiB",
          [8, 2000, 1000000], [8, 2000, 400000]),
        W("batches", "n blocks of one size allocated, then all freed; 16 B..32 KiB, n 10..10000",
          [1, 1500, 32768], [1, 500, 32768]),
        W("smallbatch", "2 threads, each: n blocks of one size then all freed; 16 B..1 KiB",
          [2, 1000, 1024], [2, 300, 1024], program="batches"),
        W("bignum", "cfrac-like bignum arithmetic: short-lived 8..200 B numbers, a few long-lived",
          [4000000], [1000000], check_digest=True),
        W("objects", "C++ objects through operator new and delete: nodes, arrays, strings, "
          "vectors of 16 B..1 KiB, random lifetimes", [1, 4000, 6000000], [1, 4000, 2000000],
          check_digest=True),
        W("trees", "binary-trees: build, walk and free trees of 24 B nodes, depth 4..15",
          [1, 15], [1, 13], check_digest=True),
        W("large", "256 KiB..4 MiB blocks (many near 1 MiB), some realloc",
          [16, 8000], [16, 3000]),
        W("huge", "2..32 MiB blocks (many near the 8 MiB largest block), some realloc",
          [6, 300, 1, 8192], [6, 100, 1, 8192], program="large"),
        W("aligned", "posix_memalign/aligned_alloc, alignment 16 B..64 KiB",
          [2000, 600000], [2000, 250000]),
        W("zeroed", "calloc (1/2), memalign 8 or 16 (1/4), malloc: 16 B..4 KiB churn, zeroes checked",
          [4000, 2000000], [4000, 600000]),
        W("steady", "phases of growth and shrink; final RSS after shrink",
          [16, 128], [8, 96]),
        W("spawn", "400 short-lived processes in turn, each allocating 200 blocks of 16 B..4 KiB",
          [400, 200], [100, 200]),
        PythonWorkload("python", "CPython with PYTHONMALLOC=malloc: dicts/lists/strings churn",
                       [0.5], [0.12]),
        SqliteWorkload("sqlite", "sqlite3 CLI: inserts, indexes, joins, aggregates on a temp db",
                       [60000], [15000]),
        RedisWorkload("redis", "redis-server under the allocator, redis-benchmark -P 16 on loopback",
                      [100000], [20000]),
    ]
