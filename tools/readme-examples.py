#!/usr/bin/env python3
"""readme-examples.py: regenerate README.md's sample outputs and report charts from real runs.

    tools/readme-examples.py              # build, run every example, rewrite README.md and the images
    tools/readme-examples.py --no-build   # use the release build as it is
    tools/readme-examples.py --only leaks-sites,collapsed-sites
    tools/readme-examples.py --list       # the examples, one per line: NAME  what it runs

It builds the release library and buddy-report (`swift build -c release --product BuddyMalloc`,
then `--product buddy-report`: SwiftPM builds only the last --product of one command), runs the
commands the README's examples come from with today's defaults (no BUDDY_* variable of the
caller's reaches them), and puts each output between its markers in README.md:

    <!-- generated: NAME -->
    ```
    ...the output...
    ```
    <!-- /generated -->

Only the text between the markers changes (and the TLS figure in "How it works", and the images
docs/images/per-order.svg and docs/images/usage.svg). A marker that is missing, or a README
command the script runs that the README no longer shows as written, stops it before anything is
written. Pids, times, addresses and a sampled profile differ from run to run; the shape does not.

Every report goes to a file in a private temporary folder (never a device or a system file),
removed at the end. One progress line per example on stderr. Exit status 0, or 1 with the
reason.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
LIB = ".build/release/libBuddyMalloc.so"
TOOL = ".build/release/buddy-report"

# The commands as the README shows them (its /tmp paths become the private folder's).
PYTHON_SUM = "python3 -c 'print(sum(range(10**6)))'"
SITES_BUILD = "cc -g -O1 -o /tmp/sites Tests/Fixtures/programs/sites.c"
SITES_RUN = ("BUDDY_REPORT=/tmp/sites.json BUDDY_REPORT_FORMAT=json BUDDY_PROFILE_SAMPLE=16K \\\n"
             "  LD_PRELOAD=$PWD/.build/release/libBuddyMalloc.so /tmp/sites > /dev/null")
SITES_LEAKS = ".build/release/buddy-report leaks /tmp/sites.json"
SITES_COLLAPSED = ".build/release/buddy-report collapsed /tmp/sites.json"
SIGNAL_SAFE = ("tools/check-malloc-path.py --signal-safe --roots buddy_report_signal_handler "
               ".build/release/libBuddyMalloc.so")
SERIES_RUN = """.build/release/buddy-report run --interval 0.25 --keep /tmp/r -- python3 -c '
import time
rows = []
for step in range(10):
    rows += [bytes(1000) + str(i).encode() for i in range(3000)]
    time.sleep(0.2)
del rows[::2]
time.sleep(1)'"""
SERIES_PLOT = ".build/release/buddy-report plot /tmp/r/series.*.jsonl -o /tmp/charts"

EXAMPLES = [
    ("build", "swift build -c release --product BuddyMalloc; swift build -c release --product buddy-report"),
    ("report-text", f"BUDDY_REPORT=FILE {PYTHON_SUM} (the text report)"),
    ("report-json", f"BUDDY_REPORT=FILE BUDDY_REPORT_FORMAT=json {PYTHON_SUM} (abridged)"),
    ("per-order-svg", "buddy-report plot REPORT-JSON -o docs/images/per-order.svg --chart per-order"),
    ("leaks-sites", f"{SITES_BUILD}; the profiled run; {SITES_LEAKS}"),
    ("collapsed-sites", SITES_COLLAPSED),
    ("usage-svg", "the README's buddy-report run --interval example, then plot -> docs/images/usage.svg"),
    ("signal-safe", SIGNAL_SAFE),
    ("tls", f"readelf -lW {LIB}: the TLS segment's size, into 'How it works'"),
]


class Failure(Exception):
    pass


def progress(message):
    print(f"readme-examples: {message}", file=sys.stderr, flush=True)


class Runner:
    def __init__(self, temp):
        self.temp = temp
        env = {k: v for k, v in os.environ.items() if not k.startswith("BUDDY_") and k not in ("LD_PRELOAD", "LD_LIBRARY_PATH")}
        env["TMPDIR"] = temp
        env["PWD"] = ROOT
        # python3 must be the interpreter itself, not a wrapper script (pyenv's shims run bash and
        # readlink first, each of which would write a report of its own).
        found = shutil.which("python3", path=env.get("PATH"))
        if found and not is_elf(os.path.realpath(found)) and os.path.exists("/usr/bin/python3"):
            env["PATH"] = "/usr/bin:" + env.get("PATH", "")
            progress(f"python3 on PATH is a wrapper ({found}): running /usr/bin/python3")
        self.env = env

    def path(self, name):
        return os.path.join(self.temp, name)

    def readme_command(self, command):
        """A README command with its /tmp paths in the private folder."""
        command = re.sub(r"(?<![\w.$/-])/tmp/", self.temp + "/", command)
        for target in re.findall(r"BUDDY_REPORT=(\S+)", command):
            if not target.startswith(self.temp + "/"):
                raise Failure(f"refusing BUDDY_REPORT={target}: reports go to the private folder only")
        return command

    def shell(self, command, extra_env=None, check=True):
        env = dict(self.env)
        for key, value in (extra_env or {}).items():
            if key == "BUDDY_REPORT" and not os.path.abspath(value).startswith(self.temp + "/"):
                raise Failure(f"refusing BUDDY_REPORT={value}: reports go to the private folder only")
            env[key] = value
        result = subprocess.run(["bash", "-c", "set -o pipefail\n" + command], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
        if check and result.returncode != 0:
            raise Failure(f"`{command}` exited with {result.returncode}:\n{result.stdout}{result.stderr}")
        return result

    def report(self, program, name, json_format=False):
        """Runs `program` (a shell command) under the library; returns its exit report's file."""
        target = self.path(name)
        settings = {"BUDDY_REPORT": target, "LD_PRELOAD": os.path.join(ROOT, LIB)}
        if json_format:
            settings["BUDDY_REPORT_FORMAT"] = "json"
        if not target.startswith(self.temp + "/"):
            raise Failure(f"refusing BUDDY_REPORT={target}: reports go to the private folder only")
        # exec env: the variables reach the program alone (not the shell, whose own exit report
        # would replace the program's).
        self.shell("exec env " + " ".join(f"{k}={v}" for k, v in settings.items()) + " " + program)
        if not os.path.isfile(target):
            raise Failure(f"no report from `{program}` at {target}")
        return target


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


# MARK: the JSON example, abridged

class Raw(str):
    """A number as the library wrote it (2.000 stays 2.000)."""


def compact(value):
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)}: {compact(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, list):
        return "[ " + ", ".join(compact(v) for v in value) + " ]" if value else "[]"
    return json.dumps(value)


def wrapped(key, value, width=100):
    """`"key": { a, b, ... }` on as many lines as it needs, continuation lines under the first field."""
    head = f'  {json.dumps(key)}: '
    one = head + compact(value)
    if len(one) <= width or not isinstance(value, dict):
        return [one]
    fields = [f"{json.dumps(k)}: {compact(v)}" for k, v in value.items()]
    lines, current = [], head + "{ "
    indent = " " * len(current)
    for i, field in enumerate(fields):
        piece = field + (", " if i < len(fields) - 1 else " }")
        if len(current) + len(piece.rstrip()) > width and current.strip() not in ("", "{"):
            lines.append(current.rstrip())
            current = indent
        current += piece
    lines.append(current)
    return lines


def abridged_json(text):
    """The report with every array cut to its first element and the per-entry tables cut short."""
    report = json.loads(text, parse_float=Raw, parse_int=Raw)
    lines, scalars = ["{"], []
    items = list(report.items())
    for key, value in items:
        if isinstance(value, (dict, list)):
            if scalars:
                lines.append("  " + ", ".join(scalars) + ",")
                scalars = []
            if isinstance(value, list) and len(value) > 1:
                body = f'  {json.dumps(key)}: [ {compact(value[0])}, ... ]'
                lines.append(body + ",")
                continue
            if key in ("calls", "failures") and len(value) > 4:
                shown = list(value.items())[:4]
                lines.append(f'  {json.dumps(key)}: {{ ' + ", ".join(f"{json.dumps(k)}: {compact(v)}" for k, v in shown) + ", ... },")
                continue
            block = wrapped(key, value)
            block[-1] += ","
            lines += block
        else:
            field = f"{json.dumps(key)}: {compact(value)}"
            if scalars and len("  " + ", ".join(scalars + [field])) > 100:
                lines.append("  " + ", ".join(scalars) + ",")
                scalars = []
            scalars.append(field)
    if scalars:
        lines.append("  " + ", ".join(scalars) + ",")
    lines[-1] = lines[-1].rstrip(",")
    lines.append("}")
    return "\n".join(lines) + "\n"


# MARK: README

def splice(readme, name, body, lang=""):
    start = f"<!-- generated: {name} -->\n"
    end = "<!-- /generated -->"
    i = readme.find(start)
    if i < 0:
        raise Failure(f"README.md has no marker `<!-- generated: {name} -->`")
    j = readme.find(end, i)
    if j < 0:
        raise Failure(f"README.md: the marker `<!-- generated: {name} -->` has no `{end}` after it")
    if not body.endswith("\n"):
        body += "\n"
    return readme[: i + len(start)] + f"```{lang}\n{body}```\n" + readme[j:]


def require_in_readme(readme, command, where):
    if command not in readme:
        raise Failure(f"README.md no longer shows the command this script runs for {where}:\n  {command}\n"
                      f"update {os.path.relpath(__file__, ROOT)} and the README together")


def clean(text):
    return "\n".join(line.rstrip() for line in text.rstrip("\n").split("\n")) + "\n"


def build():
    for product in ("BuddyMalloc", "buddy-report"):
        started = time.monotonic()
        result = subprocess.run(["swift", "build", "-c", "release", "--product", product], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        if result.returncode != 0:
            raise Failure(f"swift build -c release --product {product} failed:\n{result.stdout[-4000:]}")
        progress(f"  built {product} ({time.monotonic() - started:.0f} s)")
    for path in (LIB, TOOL):
        if not os.path.isfile(os.path.join(ROOT, path)):
            raise Failure(f"{path} is missing after the build")


def tls_figures():
    """The TLS segment's memory size, and its symbols (name -> size), of the release library."""
    segments = subprocess.run(["readelf", "-lW", LIB], cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True).stdout
    tls = [line.split() for line in segments.splitlines() if line.split()[:1] == ["TLS"]]
    if len(tls) != 1:
        raise Failure(f"{LIB}: expected one TLS segment, found {len(tls)}")
    size = int(tls[0][5], 16)  # Type Offset VirtAddr PhysAddr FileSiz MemSiz Flg Align
    symbols = {}
    table = subprocess.run(["readelf", "-sW", LIB], cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True).stdout
    for line in table.splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[3] == "TLS":
            symbols[fields[7]] = int(fields[2])
    return size, symbols


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-build", action="store_true", help="use the release build as it is")
    parser.add_argument("--only", help="comma-separated examples to regenerate (see --list)")
    parser.add_argument("--list", action="store_true", help="list the examples and exit")
    args = parser.parse_args()
    if args.list:
        for name, what in EXAMPLES:
            print(f"{name:16} {what}")
        return 0
    names = [name for name, _ in EXAMPLES]
    only = set(args.only.split(",")) if args.only else set(names)
    unknown = only - set(names)
    if unknown:
        raise Failure(f"unknown example(s): {', '.join(sorted(unknown))} (see --list)")
    selected = [name for name in names if name in only]
    if "per-order-svg" in only:
        only.add("report-json")
    total = len(selected)
    step = 0

    def begin(name):
        nonlocal step
        step += 1
        progress(f"[{step}/{total}] {name}: {dict(EXAMPLES)[name]}")
        return time.monotonic()

    def done(started, note=""):
        progress(f"  done ({time.monotonic() - started:.1f} s){': ' + note if note else ''}")

    readme = open(README, encoding="utf-8").read()
    original = readme
    for command, where in [(PYTHON_SUM, "report-text"), (SITES_BUILD, "leaks-sites"), (SITES_RUN, "leaks-sites"),
                           (SITES_LEAKS, "leaks-sites"), (SERIES_RUN, "usage-svg"), (SERIES_PLOT, "usage-svg")]:
        if where in only:
            require_in_readme(readme, command, where)

    if "build" in only and not args.no_build:
        started = begin("build")
        build()
        done(started)
    elif "build" in selected:
        begin("build")
        progress("  skipped (--no-build)")
    for path in (LIB, TOOL):
        if not os.path.isfile(os.path.join(ROOT, path)):
            raise Failure(f"{path} does not exist: build it (run without --no-build)")

    temp = tempfile.mkdtemp(prefix="readme-examples.")
    try:
        run = Runner(temp)
        images = {}
        if "report-text" in only:
            started = begin("report-text")
            path = run.report(PYTHON_SUM + " > /dev/null", "python.txt")
            text = clean(open(path, encoding="utf-8").read())
            readme = splice(readme, "report-text", text)
            done(started, f"{text.count(chr(10))} lines")
        if "report-json" in only:
            started = begin("report-json") if "report-json" in selected else time.monotonic()
            json_report = run.report(PYTHON_SUM + " > /dev/null", "python.json", json_format=True)
            if "report-json" in selected:
                readme = splice(readme, "report-json", abridged_json(open(json_report, encoding="utf-8").read()), "json")
                done(started)
        if "per-order-svg" in only:
            started = begin("per-order-svg")
            out = run.path("per-order.svg")
            run.shell(f"{TOOL} plot {json_report} -o {out} --chart per-order")
            images["docs/images/per-order.svg"] = open(out, encoding="utf-8").read()
            done(started)
        if "leaks-sites" in only or "collapsed-sites" in only:
            started = begin("leaks-sites") if "leaks-sites" in selected else time.monotonic()
            run.shell(run.readme_command(SITES_BUILD))
            run.shell(run.readme_command(SITES_RUN), {"BUDDY_REPORT": run.path("sites.json")})
            if "leaks-sites" in selected:
                leaks = run.shell(run.readme_command(SITES_LEAKS))
                readme = splice(readme, "leaks-sites", clean(leaks.stdout))
                sites = len(re.findall(r"^ *\d+\. ", leaks.stdout, re.M))
                done(started, f"{sites} sites")
        if "collapsed-sites" in only:
            started = begin("collapsed-sites")
            collapsed = run.shell(run.readme_command(SITES_COLLAPSED))
            readme = splice(readme, "collapsed-sites", clean("$ " + SITES_COLLAPSED + "\n" + collapsed.stdout))
            done(started)
        if "usage-svg" in only:
            started = begin("usage-svg")
            ran = run.shell(run.readme_command(SERIES_RUN))
            plotted = run.shell(run.readme_command(SERIES_PLOT))
            charts = run.path("charts")
            usage = os.path.join(charts, "usage.svg")
            if not os.path.isfile(usage):
                raise Failure(f"plot drew no usage chart:\n{plotted.stdout}{plotted.stderr}\n{ran.stderr[-2000:]}")
            images["docs/images/usage.svg"] = open(usage, encoding="utf-8").read()
            series = [f for f in os.listdir(run.path("r")) if f.startswith("series.")]
            done(started, f"{len(series)} series, {sum(1 for f in os.listdir(run.path('r')) if f.startswith('report.'))} reports")
        if "signal-safe" in only:
            started = begin("signal-safe")
            checked = run.shell(SIGNAL_SAFE, check=False)
            if checked.returncode != 0:
                raise Failure(f"{SIGNAL_SAFE} exited with {checked.returncode}:\n{checked.stdout}{checked.stderr}")
            readme = splice(readme, "signal-safe", clean("$ " + SIGNAL_SAFE + "\n" + checked.stdout))
            done(started)
        if "tls" in only:
            started = begin("tls")
            size, symbols = tls_figures()
            pattern = r"(one initial-exec TLS block of )(\d+)( bytes)"
            if len(re.findall(pattern, readme)) != 1:
                raise Failure("README.md: expected one 'one initial-exec TLS block of N bytes' in 'How it works'")
            readme = re.sub(pattern, lambda m: f"{m.group(1)}{size}{m.group(3)}", readme)
            own = {name: s for name, s in symbols.items() if name.startswith("buddy_")}
            runtime = sum(s for name, s in symbols.items() if not name.startswith("buddy_"))
            pattern = r"(and )(\d+)(\s+bytes of the static Swift runtime's)"
            if len(re.findall(pattern, readme)) != 1:
                raise Failure("README.md: expected one 'and N bytes of the static Swift runtime's' in 'How it works'")
            else:
                readme = re.sub(pattern, lambda m: f"{m.group(1)}{runtime}{m.group(3)}", readme)
            done(started, f"TLS segment {size} bytes; " + ", ".join(f"{n} {s}" for n, s in sorted(own.items()))
                 + f"; Swift runtime {runtime}")

        for path, svg in images.items():
            with open(os.path.join(ROOT, path), "w", encoding="utf-8") as f:
                f.write(svg)
            progress(f"wrote {path}")
        if readme != original:
            partial = README + ".tmp"
            with open(partial, "w", encoding="utf-8") as f:
                f.write(readme)
            os.replace(partial, README)
            progress("wrote README.md")
        else:
            progress("README.md unchanged")
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as failure:
        progress(f"error: {failure}")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
