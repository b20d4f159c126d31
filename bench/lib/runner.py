"""Running the children of a row: one Run per child, Variants run interleaved, and the
RowResult a row hands back to the driver.

Every child prints its result as one JSON object on the LAST line of stdout; stderr is a
log, kept under WORK/logs/. A variant that fails once is dropped for the remaining reps
and its error goes to the notes; the other variants and rows go on."""

import contextlib
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from lib.fmt import Line, median
from lib.gpupoll import GpuPoller

STDERR_TAIL_LINES = 15


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def tail(path, n=STDERR_TAIL_LINES):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:]).rstrip()
    except OSError:
        return "(no log)"


def last_json_line(text):
    """The JSON object on the last non-empty line of a child's stdout."""
    lines = [l for l in text.splitlines() if l.strip()]
    if not lines:
        raise ValueError("no output on stdout (expected a JSON line)")
    obj = json.loads(lines[-1])
    if not isinstance(obj, dict):
        raise ValueError(f"last stdout line is not a JSON object: {lines[-1][:200]}")
    return obj


class RunFailed(Exception):
    """A child that failed: `summary` is one line (exit code, last stderr line, log path);
    `detail` adds the tail of its stderr."""

    def __init__(self, summary, detail=""):
        super().__init__(summary)
        self.summary = summary
        self.detail = detail

    def __str__(self):
        return self.summary + ("\n" + self.detail if self.detail else "")


class Run:
    """One finished child: wall seconds, peak RSS (MiB), exit code, its JSON result."""

    def __init__(self, wall, rss_mib, result, gpu_mib=None, gpu_how=None):
        self.wall = wall
        self.rss_mib = rss_mib
        self.result = result
        self.gpu_mib = gpu_mib
        self.gpu_how = gpu_how


def run_child(cmd, log_base, expect_json=True, gpu=False):
    """Run `cmd`, stdout and stderr to LOG_BASE.out/.err; raise RunFailed on failure.

    Wall time is perf_counter around Popen..wait; peak RSS comes from os.wait4
    (ru_maxrss, KiB on Linux) of the child itself."""
    os.makedirs(os.path.dirname(log_base), exist_ok=True)
    out_path, err_path = log_base + ".out", log_base + ".err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        try:
            p = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        except OSError as e:
            raise RunFailed(f"could not start {cmd[0]}: {e}")
        poller = GpuPoller(p.pid) if gpu else None
        if poller:
            poller.start()
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        if poller:
            poller.stop()
    code = os.waitstatus_to_exitcode(status)
    p.returncode = code  # reaped by wait4; tell Popen so it does not wait again
    if code != 0:
        t = tail(err_path)
        last = t.splitlines()[-1].strip() if t.strip() else "(empty stderr)"
        raise RunFailed(f"exit {code}: {last} (log: {err_path})", t)
    result = None
    if expect_json:
        try:
            with open(out_path, errors="replace") as f:
                result = last_json_line(f.read())
        except ValueError as e:
            raise RunFailed(f"no JSON result on the last stdout line of {out_path}: {e}",
                            tail(err_path))
    gpu_mib, gpu_how = poller.peak() if poller else (None, None)
    return Run(wall, usage.ru_maxrss / 1024.0, result, gpu_mib, gpu_how)


class Variant:
    """One program of a row (nerveseg, a reference, a lever), run once per rep."""

    def __init__(self, key, label, cmd, expect_json=True, before=None, after=None,
                 unavailable=None, gpu=False):
        self.key = key
        self.label = label
        self.cmd = [str(c) for c in cmd]
        self.expect_json = expect_json
        # Called before each run (untimed), e.g. clearing the out dir; may raise RunFailed.
        self.before = before
        self.after = after  # called after each run, failed or not, e.g. deleting its file
        self.unavailable = unavailable  # a reason not to run it at all, or None
        self.gpu = gpu
        self.runs = []
        self.error = None  # one-line reason
        self.detail = ""  # stderr tail of a failed run

    @property
    def ok(self):
        return self.error is None and bool(self.runs)


def run_row(res, variants, args, work, warmup=False):
    """Runs a row's variants interleaved (not on --dry-run) and lists them in `res`;
    returns whether they ran."""
    if not args.dry_run:
        run_interleaved(res.name, variants, args.reps, work, warmup=warmup)
    res.add_variants(variants)
    return not args.dry_run


def run_interleaved(row, variants, reps, work, warmup=False):
    """A B C A B C ...: one run of each variant per rep. A variant that fails once is
    dropped for the remaining reps; its error is kept for the notes."""
    for v in variants:
        if v.unavailable:
            v.error = v.unavailable
            log(f"[{row}] {v.label}: not run: {v.unavailable}")
    logs = os.path.join(work, "logs")
    if os.path.isdir(logs):
        for name in os.listdir(logs):
            if name.startswith(row + "."):
                os.remove(os.path.join(logs, name))
    passes = ([("warm-up", False)] if warmup else []) + [
        (f"rep {r + 1}/{reps}", True) for r in range(reps)]
    for tag, keep in passes:
        for v in variants:
            if v.error:
                continue
            try:
                run = run_one(row, v, tag, work)
            except RunFailed as e:
                v.error, v.detail = f"{tag}: {e.summary}", e.detail
                log(f"[{row} {tag}] {v.label} FAILED: {e}")
                continue
            log(f"[{row} {tag}] {v.label}: {run.wall:.2f} s wall, {run.rss_mib:,.0f} MiB RSS")
            if keep:
                v.runs.append(run)


def run_one(row, v, tag, work):
    """One run of `v` between its before and after hooks; raises RunFailed."""
    try:
        if v.before:
            v.before()
        base = os.path.join(work, "logs", f"{row}.{v.key}.{tag.split('/')[0].replace(' ', '')}")
        log(f"[{row} {tag}] {v.label}: {shlex.join(v.cmd)}")
        return run_child(v.cmd, base, expect_json=v.expect_json, gpu=v.gpu)
    finally:
        if v.after:
            v.after()


def clear_dir(path):
    """A `before` hook: an empty folder at `path`."""
    def before():
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
    return before


def med(variant, get):
    """Median over the variant's runs of get(run); None when the variant failed."""
    if not variant.ok:
        return None
    values = [get(r) for r in variant.runs]
    values = [x for x in values if x is not None]
    return median(values) if values else None


def cell(variant, text):
    """'label: text', or 'label: FAILED' / 'label: not run'."""
    if variant.ok:
        return f"{variant.label}: {text}"
    return f"{variant.label}: {'not run' if variant.unavailable else 'FAILED'}"


class RowResult:
    """What a row hands the driver: its table lines, notes, commands and failures."""

    def __init__(self, name):
        self.name = name
        self.lines = []
        self.notes = []
        self.commands = []  # (label, command string)
        self.failures = []  # (title, stderr tail)
        self.failed = False

    def add_variants(self, variants):
        for v in variants:
            self.commands.append((v.label, shlex.join(v.cmd)))
            if v.error:
                self.failed = True
                what = "not run" if v.unavailable else "FAILED"
                self.notes.append(f"{self.name}: {v.label} {what}: {v.error}")
                if v.detail:
                    self.failures.append((f"{self.name}: {v.label}", v.detail))


def failed_row(name, why, detail=""):
    r = RowResult(name)
    r.failed = True
    r.lines.append(Line(name, "-", "FAILED", "FAILED", "-", "-", "-"))
    r.notes.append(f"{name}: FAILED before running: {why}")
    if detail:
        r.failures.append((name, detail))
    return r


class Tests(unittest.TestCase):
    def test_median_of_runs(self):
        v = Variant("x", "x", ["x"])
        v.runs = [Run(3.0, 10, {"median_s": 0.3}), Run(1.0, 30, {"median_s": 0.1}),
                  Run(2.0, 20, {"median_s": 0.2})]
        self.assertEqual(med(v, lambda r: r.wall), 2.0)
        self.assertEqual(med(v, lambda r: r.result["median_s"]), 0.2)
        v.error = "boom"
        self.assertIsNone(med(v, lambda r: r.wall))
        self.assertEqual(cell(v, "1 s"), "x: FAILED")

    def test_last_json_line(self):
        self.assertEqual(last_json_line('log\n{"a": 1}\n\n'), {"a": 1})
        with self.assertRaises(ValueError):
            last_json_line("")
        with self.assertRaises(ValueError):
            last_json_line("[1, 2]")
        with self.assertRaises(ValueError):
            last_json_line("not json")

    def test_run_child(self):
        d = tempfile.mkdtemp()
        r = run_child([sys.executable, "-c", "import sys; print('x', file=sys.stderr); "
                       "print('{\"seconds\": 1.5}')"], os.path.join(d, "ok"))
        self.assertEqual(r.result, {"seconds": 1.5})
        self.assertGreater(r.rss_mib, 1)
        with self.assertRaises(RunFailed) as e:
            run_child([sys.executable, "-c", "import sys; print('bad thing', file=sys.stderr); "
                       "sys.exit(3)"], os.path.join(d, "bad"))
        self.assertIn("exit 3", str(e.exception))
        self.assertIn("bad thing", str(e.exception))
        shutil.rmtree(d)

    def test_interleaved_hooks(self):
        """before/after run around every run in A B A B order; a before that raises
        drops its variant without stopping the other."""
        d = tempfile.mkdtemp()
        order = []
        ok = [sys.executable, "-c", "print('{}')"]
        a = Variant("a", "a", ok, before=lambda: order.append("a<"),
                    after=lambda: order.append("a>"))

        def refuse():
            raise RunFailed("nothing to size the run by")

        b = Variant("b", "b", ok, before=refuse, after=lambda: order.append("b>"))
        with contextlib.redirect_stderr(io.StringIO()):
            run_interleaved("t", [a, b], 2, d, warmup=True)
        self.assertEqual(order, ["a<", "a>", "b>", "a<", "a>", "a<", "a>"])
        self.assertEqual(len(a.runs), 2)
        self.assertIn("nothing to size", b.error)
        self.assertFalse(b.ok)
        shutil.rmtree(d)
