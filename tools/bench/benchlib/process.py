"""Running one process through support/runproc.c: the preload on the program only, wall time
and peak RSS measured by the helper, process groups killed on timeout or interrupt."""

import os
import re
import signal
import subprocess
import tempfile
import threading


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
