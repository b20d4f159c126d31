#!/usr/bin/env python3
"""The driver of `make bench`: nerveseg beside the reference scripts on the same inputs.

Each table row runs nerveseg (A) and one or more references (B, C) in the same
invocation, interleaved (A B A B ...), takes medians over the reps and prints the ratio
B / A of the times, so a ratio above 1 means nerveseg is faster. The same table, with a
header (machine, versions, reps) and the exact commands, is written to bench/results.md.

Every child prints its result as one JSON object on the LAST line of stdout; stderr is a
log, kept under WORK/logs/. A failed run fails its row (with the log's tail shown) and
the other rows go on. Standard library and NumPy only.
"""

import argparse
import csv
import datetime
import filecmp
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

ROWS = ["prepare", "resize", "train-step", "infer", "encode", "gpu"]

# Sizes of the synthetic data set (nerveseg synth): the full Kaggle-like one, and the
# hidden --small one for smoke tests.
FULL = {"subjects": 47, "per_subject": 120, "test": 5508}
SMALL = {"subjects": 2, "per_subject": 20, "test": 40}

BATCH = 32
VALIDATION_SPLIT = 0.2
ENCODE_MASKS = 5508
STDERR_TAIL_LINES = 15


# ---------------------------------------------------------------- formatting helpers


def median(values):
    return float(statistics.median(values)) if values else None


def fmt_s(seconds):
    """Seconds with about three significant digits: 0.0123 s, 0.812 s, 12.3 s, 123 s."""
    if seconds is None:
        return "-"
    if seconds < 0.1:
        return f"{seconds:.3g} s"
    if seconds < 1:
        return f"{seconds:.3f} s"
    if seconds < 100:
        return f"{seconds:.1f} s" if seconds >= 10 else f"{seconds:.2f} s"
    return f"{seconds:.0f} s"


def fmt_ratio(ratio):
    """B / A as '12.3x' (two decimals below 10, so 1.15x targets read well)."""
    if ratio is None or not math.isfinite(ratio):
        return "-"
    return f"{ratio:.1f}x" if ratio >= 10 else f"{ratio:.2f}x"


def fmt_mib(mib):
    return "-" if mib is None else f"{mib:,.0f} MiB"


def fmt_rate(images_per_s):
    return "-" if images_per_s is None else f"{images_per_s:,.1f} img/s"


def ratio(b, a):
    """Reference / nerveseg, or None when either is missing or A is zero."""
    if a is None or b is None or a == 0:
        return None
    return b / a


def met(value, target):
    """'yes'/'no' for a ratio against a minimum, '-' when there is nothing to judge."""
    if value is None or target is None:
        return "-"
    return "yes" if value >= target else "no"


class Line:
    """One line of the table: A beside B, their ratio, the target and whether it is met."""

    def __init__(self, row, measure, a, b, ratio="-", target="-", met="-"):
        self.cells = [row, measure, a, b, ratio, target, met]


HEADER = ["Row", "Measure", "A", "B", "B/A", "Target", "Met"]


def render_table(lines):
    """A Markdown table, padded so it also reads in a terminal."""
    rows = [HEADER] + [[str(c) for c in line.cells] for line in lines]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]

    def fmt(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    out = [fmt(rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [fmt(r) for r in rows[1:]]
    return "\n".join(out)


def last_json_line(text):
    """The JSON object on the last non-empty line of a child's stdout."""
    lines = [l for l in text.splitlines() if l.strip()]
    if not lines:
        raise ValueError("no output on stdout (expected a JSON line)")
    obj = json.loads(lines[-1])
    if not isinstance(obj, dict):
        raise ValueError(f"last stdout line is not a JSON object: {lines[-1][:200]}")
    return obj


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def tail(path, n=STDERR_TAIL_LINES):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:]).rstrip()
    except OSError:
        return "(no log)"


# ---------------------------------------------------------------- running children


class RunFailed(Exception):
    """A child that failed: `summary` is one line (exit code, last stderr line, log path);
    `detail` adds the tail of its stderr."""

    def __init__(self, summary, detail=""):
        super().__init__(summary)
        self.summary = summary
        self.detail = detail

    def __str__(self):
        return self.summary + ("\n" + self.detail if self.detail else "")


class GpuPoller:
    """Peak GPU memory of one process: nvidia-smi every 0.2 s while it runs.

    Uses the per-process figure when the child's pid shows up in --query-compute-apps;
    inside some containers the pids differ, so it also keeps the whole GPU's used memory
    above what was in use before the child started, and falls back to that."""

    def __init__(self, pid, interval=0.2):
        self.pid = pid
        self.interval = interval
        self.peak_pid = None
        self.peak_total = None
        self.baseline = self._total()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    @staticmethod
    def _query(args):
        try:
            return subprocess.run(["nvidia-smi"] + args, capture_output=True, text=True,
                                  timeout=5).stdout
        except (OSError, subprocess.TimeoutExpired):
            return ""

    def _total(self):
        out = self._query(["--query-gpu=memory.used", "--format=csv,noheader,nounits"])
        try:
            return float(out.split()[0])
        except (IndexError, ValueError):
            return None

    def _loop(self):
        while not self._stop.is_set():
            out = self._query(["--query-compute-apps=pid,used_memory",
                               "--format=csv,noheader,nounits"])
            for line in out.splitlines():
                parts = [p.strip() for p in line.split(",")]
                if len(parts) == 2 and parts[0] == str(self.pid):
                    try:
                        mib = float(parts[1])
                    except ValueError:
                        continue
                    self.peak_pid = max(self.peak_pid or 0.0, mib)
            total = self._total()
            if total is not None and self.baseline is not None:
                self.peak_total = max(self.peak_total or 0.0, total - self.baseline)
            self._stop.wait(self.interval)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()

    def peak(self):
        """(MiB, how it was measured)."""
        if self.peak_pid is not None:
            return self.peak_pid, "process"
        if self.peak_total is not None:
            return self.peak_total, "whole GPU minus baseline"
        return None, "nvidia-smi gave nothing"


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

    def __init__(self, key, label, cmd, expect_json=True, before=None, unavailable=None,
                 gpu=False):
        self.key = key
        self.label = label
        self.cmd = [str(c) for c in cmd]
        self.expect_json = expect_json
        self.before = before  # called before each run (untimed), e.g. clearing the out dir
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
            if v.before:
                v.before()
            base = os.path.join(work, "logs", f"{row}.{v.key}.{tag.split('/')[0].replace(' ', '')}")
            log(f"[{row} {tag}] {v.label}: {shlex.join(v.cmd)}")
            try:
                run = run_child(v.cmd, base, expect_json=v.expect_json, gpu=v.gpu)
            except RunFailed as e:
                v.error, v.detail = f"{tag}: {e.summary}", e.detail
                log(f"[{row} {tag}] {v.label} FAILED: {e}")
                continue
            log(f"[{row} {tag}] {v.label}: {run.wall:.2f} s wall, {run.rss_mib:,.0f} MiB RSS")
            if keep:
                v.runs.append(run)


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


# ---------------------------------------------------------------- the set-up


class Setup:
    """The inputs, made once and cached in WORK with one stamp per step."""

    STEPS = ["raw", "prep", "x96", "pred"]

    def __init__(self, args):
        self.args = args
        self.work = args.work
        self.sizes = SMALL if args.small else FULL
        w = self.work
        self.raw = os.path.join(w, "raw")
        self.prep = os.path.join(w, "prep")
        self.x96 = os.path.join(w, "x96.npy")
        self.y96 = os.path.join(w, "y96.npy")
        self.pred96 = os.path.join(w, "pred96.npy")
        self.ids = os.path.join(w, "ids.npy")
        self.done = {}
        self.notes = []

    def stamp_path(self, step):
        return os.path.join(self.work, f".stamp-{step}")

    def stamp_text(self, step):
        """What a valid stamp holds: the data sizes, and for x96 who wrote it (arrays
        written by the reference stand-in are redone once nerveseg has `bench`)."""
        key = dict(self.sizes)
        if step in ("x96", "pred"):
            key["x96_by"] = "nerveseg" if has_bench(self.args.nerveseg) else "reference"
        return json.dumps(key, sort_keys=True)

    def valid(self, step):
        try:
            with open(self.stamp_path(step)) as f:
                return f.read().strip() == self.stamp_text(step)
        except OSError:
            return False

    def commands(self):
        a, N = self.args, self.args.nerveseg
        s = self.sizes
        synth = [N, "synth", "--out", self.raw]
        if a.small:
            synth += ["--subjects", s["subjects"], "--per-subject", s["per_subject"],
                      "--test", s["test"]]
        return {
            "raw": [synth],
            "prep": [[N, "prepare", "--raw", self.raw, "--out", self.prep]],
            "x96": [[N, "bench", "resize", "--images", self.img_train, "--masks", self.mask_train,
                     "--save-images", self.x96, "--save-masks", self.y96]],
            "pred": [],
        }

    @property
    def img_train(self):
        return os.path.join(self.prep, "imgs_train.npy")

    @property
    def mask_train(self):
        return os.path.join(self.prep, "imgs_mask_train.npy")

    def ensure(self, step):
        """Make `step` (and what it needs) unless its stamp is valid. Raises RunFailed."""
        if step in self.done:
            return
        if self.valid(step):
            self.done[step] = "cached"
            return
        i = self.STEPS.index(step)
        if i > 0:
            self.ensure(self.STEPS[i - 1])
        for later in self.STEPS[i:]:  # anything built on an older input is stale
            try:
                os.remove(self.stamp_path(later))
            except FileNotFoundError:
                pass
        t0 = time.perf_counter()
        getattr(self, "make_" + step)()
        with open(self.stamp_path(step), "w") as f:
            f.write(self.stamp_text(step) + "\n")
        self.done[step] = "made"
        log(f"[set-up] {step} done in {time.perf_counter() - t0:.1f} s")

    def _run(self, name, cmd, expect_json=False):
        log(f"[set-up] {shlex.join(str(c) for c in cmd)}")
        return run_child([str(c) for c in cmd], os.path.join(self.work, "logs", f"setup.{name}"),
                         expect_json=expect_json)

    def make_raw(self):
        shutil.rmtree(self.raw, ignore_errors=True)
        self._run("synth", self.commands()["raw"][0])

    def make_prep(self):
        shutil.rmtree(self.prep, ignore_errors=True)
        self._run("prepare", self.commands()["prep"][0])

    def make_x96(self):
        cmd = self.commands()["x96"][0]
        if not has_bench(self.args.nerveseg):
            # Until nerveseg has its `bench` subcommand, the reference writes the same arrays.
            cmd = [self.args.python, os.path.join(self.args.ref_dir, "preprocess.py"),
                   "--images", self.img_train, "--masks", self.mask_train,
                   "--save-images", self.x96, "--save-masks", self.y96]
            self.notes.append("set-up: x96.npy/y96.npy were written by bench/ref/preprocess.py "
                              "(this nerveseg has no `bench` subcommand)")
        self._run("resize", cmd, expect_json=True)

    def make_pred(self):
        # Stand-in predictions for the encode row: the first rows of the resized masks.
        y = np.load(self.y96, mmap_mode="r")
        n = min(ENCODE_MASKS, y.shape[0])
        np.save(self.pred96, np.ascontiguousarray(y[:n], dtype=np.float32))
        np.save(self.ids, np.arange(1, n + 1, dtype=np.int32))
        log(f"[set-up] wrote {self.pred96} ({n} masks) and {self.ids}")

    def n_train(self):
        return int(np.load(self.x96, mmap_mode="r").shape[0])


_HAS_BENCH = {}


def has_bench(nerveseg):
    if nerveseg not in _HAS_BENCH:
        try:
            r = subprocess.run([nerveseg, "bench", "--help"], capture_output=True, timeout=60)
            _HAS_BENCH[nerveseg] = r.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _HAS_BENCH[nerveseg] = False
    return _HAS_BENCH[nerveseg]


def help_has(nerveseg, sub, flag):
    try:
        r = subprocess.run([nerveseg] + sub + ["--help"], capture_output=True, text=True,
                           timeout=60)
        return flag in r.stdout
    except (OSError, subprocess.TimeoutExpired):
        return False


def no_bench_reason(args):
    if args.dry_run or has_bench(args.nerveseg):
        return None
    return "this nerveseg has no `bench` subcommand (rebuild: make build)"


# ---------------------------------------------------------------- the rows


def clear_dir(path):
    def before():
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
    return before


def row_prepare(args, setup):
    N, R, ref = args.nerveseg, args.python, args.ref_dir
    w = args.work
    out_a, out_b = os.path.join(w, "prep_ns"), os.path.join(w, "prep_ref")
    a = Variant("ns", "nerveseg", [N, "prepare", "--raw", setup.raw, "--out", out_a],
                expect_json=False, before=clear_dir(out_a))
    b = Variant("ref", "data.py", [R, os.path.join(ref, "data.py"), "--raw", setup.raw,
                                   "--out", out_b], before=clear_dir(out_b))
    res = RowResult("prepare")
    if not run_row(res, [a, b], args, w, warmup=True):
        return res
    wa, wb = med(a, lambda r: r.wall), med(b, lambda r: r.wall)
    ma, mb = med(a, lambda r: r.rss_mib), med(b, lambda r: r.rss_mib)
    r_wall = ratio(wb, wa)
    res.lines.append(Line("prepare", "wall", cell(a, fmt_s(wa)), cell(b, fmt_s(wb)),
                          fmt_ratio(r_wall), ">= 10x", met(r_wall, 10)))
    res.lines.append(Line("prepare", "peak RSS", cell(a, fmt_mib(ma)), cell(b, fmt_mib(mb)),
                          fmt_ratio(ratio(mb, ma)), "report", "-"))
    if a.ok and b.ok:
        names = ["imgs_train.npy", "imgs_mask_train.npy", "imgs_test.npy", "imgs_id_test.npy"]
        diff = [n for n in names
                if not (os.path.exists(os.path.join(out_a, n)) and os.path.exists(os.path.join(out_b, n))
                        and filecmp.cmp(os.path.join(out_a, n), os.path.join(out_b, n), shallow=False))]
        res.notes.append("prepare: outputs identical: " +
                         ("yes (all four .npy files byte for byte)" if not diff
                          else "no (" + ", ".join(diff) + " differ)"))
        if diff:
            res.failed = True
    if not args.keep_outputs:
        for d in (out_a, out_b):
            shutil.rmtree(d, ignore_errors=True)
    return res


def row_resize(args, setup):
    N, R = args.nerveseg, args.python
    common = ["--images", setup.img_train, "--masks", setup.mask_train]
    a = Variant("ns", "nerveseg", [N, "bench", "resize"] + common,
                unavailable=no_bench_reason(args))
    b = Variant("ref", "preprocess.py", [R, os.path.join(args.ref_dir, "preprocess.py")] + common)
    res = RowResult("resize")
    if not run_row(res, [a, b], args, args.work):
        return res
    sa, sb = med(a, lambda r: r.result["seconds"]), med(b, lambda r: r.result["seconds"])
    n = None
    for v in (a, b):
        if v.ok:
            n = v.runs[0].result.get("images")
            break
    r_s = ratio(sb, sa)
    what = f"in-process s ({n:,} images + masks)" if n else "in-process s"
    res.lines.append(Line("resize", what, cell(a, fmt_s(sa)), cell(b, fmt_s(sb)),
                          fmt_ratio(r_s), ">= 10x", met(r_s, 10)))
    wa, wb = med(a, lambda r: r.wall), med(b, lambda r: r.wall)
    res.lines.append(Line("resize", "wall (incl. start-up, loading)", cell(a, fmt_s(wa)),
                          cell(b, fmt_s(wb)), fmt_ratio(ratio(wb, wa)), "report", "-"))
    return res


def steps_per_epoch(n_samples, batch=BATCH):
    """Keras: the first int(n * (1 - split)) samples train, in ceil(n_train / batch) steps."""
    n_train = int(n_samples * (1 - VALIDATION_SPLIT))
    return n_train, max(1, math.ceil(n_train / batch))


def row_train_step(args, setup):
    N, R, T, ref = args.nerveseg, args.python, args.threads, args.ref_dir
    common = ["--images", setup.x96, "--masks", setup.y96, "--batch-size", BATCH,
              "--warmup", 2, "--steps", args.steps, "--device", "cpu", "--threads", T]
    nb = no_bench_reason(args)
    a = Variant("ns", "nerveseg", [N, "bench", "train-step"] + common, unavailable=nb)
    b = Variant("torch", "torch eager", [R, os.path.join(ref, "torch_unet.py"), "train-step"] + common)
    c = Variant("keras", "tf-keras", [R, os.path.join(ref, "keras_unet.py"), "train-step"] + common)
    variants = [a, b, c]
    if args.levers:
        a2 = Variant("ns-nocl", "nerveseg --no-channels-last",
                     a.cmd + ["--no-channels-last"], unavailable=nb)
        b2 = Variant("torch-cl", "torch eager --channels-last", b.cmd + ["--channels-last"])
        variants += [a2, b2]
    res = RowResult("train-step")
    if not run_row(res, variants, args, args.work):
        return res
    try:
        n_train, steps = steps_per_epoch(setup.n_train())
    except (OSError, ValueError):
        n_train, steps = None, None

    def step_s(v):
        return med(v, lambda r: r.result["median_s"])

    def txt(v):
        s = step_s(v)
        if s is None:
            return "-"
        epoch = f"; {fmt_s(s * steps)}/epoch" if steps else ""
        return f"{fmt_s(s)} ({fmt_rate(BATCH / s)}{epoch})"

    sa = step_s(a)
    measure = "s/step, batch 32 (img/s; train part of an epoch)"
    rb, rc = ratio(step_s(b), sa), ratio(step_s(c), sa)
    res.lines.append(Line("train-step", measure, cell(a, txt(a)), cell(b, txt(b)),
                          fmt_ratio(rb), ">= 1.15x", met(rb, 1.15)))
    res.lines.append(Line("train-step", measure, cell(a, txt(a)), cell(c, txt(c)),
                          fmt_ratio(rc), ">= 1.2x", met(rc, 1.2)))
    if args.levers:
        r2 = ratio(step_s(a2), sa)
        res.lines.append(Line("train-step", "what channels-last buys nerveseg",
                              cell(a, txt(a)), cell(a2, txt(a2)), fmt_ratio(r2), "info", "-"))
        r3 = ratio(step_s(b), step_s(b2))
        res.lines.append(Line("train-step", "what channels-last buys torch",
                              cell(b2, txt(b2)), cell(b, txt(b)), fmt_ratio(r3), "info", "-"))
    if steps:
        res.notes.append(f"train-step: the epoch figure is {steps} step{'s' if steps != 1 else ''} x the median step "
                         f"({n_train:,} training images, batch {BATCH}); validation is not included.")
    return res


def row_infer(args, setup):
    N, R, T, ref = args.nerveseg, args.python, args.threads, args.ref_dir
    tail_args = ["--images", setup.x96, "--batch-size", BATCH, "--warmup", 1,
                 "--batches", args.batches]
    nb = no_bench_reason(args)
    a = Variant("ns", "nerveseg", [N, "bench", "infer"] + tail_args + ["--device", "cpu", "--threads", T],
                unavailable=nb)
    a16 = Variant("ns-bf16", "nerveseg --bf16", a.cmd + ["--bf16"], unavailable=nb)
    b = Variant("torch", "torch eager",
                [R, os.path.join(ref, "torch_unet.py"), "infer"] + tail_args + ["--threads", T])
    c = Variant("keras", "tf-keras",
                [R, os.path.join(ref, "keras_unet.py"), "infer"] + tail_args + ["--threads", T])
    # bf16 beside bf16: PyTorch's own autocast to bfloat16 on the CPU.
    b16 = Variant("torch-bf16", "torch eager --amp (bf16)", b.cmd + ["--amp"])
    variants = [a, a16, b, b16, c]
    res = RowResult("infer")
    if not run_row(res, variants, args, args.work):
        return res

    def rate(v):
        s = med(v, lambda r: r.result["median_s"])
        return None if s is None else BATCH / s

    def txt(v):
        return fmt_rate(rate(v))

    for x, y in ((a, b), (a, c), (a16, b16), (a16, b), (a16, c)):
        # Time ratio B / A = A's images/s over B's.
        r = ratio(rate(x), rate(y))
        res.lines.append(Line("infer", "CPU img/s, batch 32", cell(x, txt(x)), cell(y, txt(y)),
                              fmt_ratio(r), "none (report)", "-"))
    return res


def row_encode(args, setup):
    N, R = args.nerveseg, args.python
    w = args.work
    sub_ref, sub_ns = os.path.join(w, "sub_ref.csv"), os.path.join(w, "sub_ns.csv")
    a = Variant("ns", "nerveseg", [N, "bench", "encode", "--masks", setup.pred96],
                unavailable=no_bench_reason(args))
    b = Variant("ref", "submission.py", [R, os.path.join(args.ref_dir, "submission.py"),
                                         "--predictions", setup.pred96, "--ids", setup.ids,
                                         "--out", sub_ref])
    submit = [N, "submit", "--masks", setup.pred96, "--ids", setup.ids, "--out", sub_ns]
    res = RowResult("encode")
    ran = run_row(res, [a, b], args, w)
    res.commands.append(("nerveseg submit (once, for the CSV check)", shlex.join(submit)))
    if not ran:
        return res
    sa, sb = med(a, lambda r: r.result["seconds"]), med(b, lambda r: r.result["seconds"])
    n = next((v.runs[0].result.get("masks") for v in (a, b) if v.ok), None)
    r_s = ratio(sb, sa)
    res.lines.append(Line("encode", f"in-process s ({n:,} masks)" if n else "in-process s",
                          cell(a, fmt_s(sa)), cell(b, fmt_s(sb)), fmt_ratio(r_s), "report", "-"))
    if b.ok:
        try:
            if os.path.exists(sub_ns):
                os.remove(sub_ns)
            run_child(submit, os.path.join(w, "logs", "encode.submit"), expect_json=False)
            same = compare_csv(sub_ns, sub_ref)
            res.notes.append("encode: submission CSVs identical: " + same)
            res.failed = res.failed or not same.startswith("yes")
        except RunFailed as e:
            res.failed = True
            res.notes.append(f"encode: nerveseg submit FAILED: {e.summary}")
            res.failures.append(("encode: nerveseg submit", e.detail))
            log(f"[encode] nerveseg submit FAILED: {e}")
    return res


def compare_csv(a, b):
    with open(a) as fa, open(b) as fb:
        la, lb = fa.read().splitlines(), fb.read().splitlines()
    if la == lb:
        return f"yes ({len(la) - 1:,} rows)"
    for i, (x, y) in enumerate(zip(la, lb)):
        if x != y:
            return f"no (first difference on line {i + 1}: {x[:60]!r} vs {y[:60]!r})"
    return f"no ({len(la)} vs {len(lb)} lines)"


def read_history(path):
    """nerveseg's history.csv: epoch seconds and val_dice_coef per epoch."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path} has no epochs")
    return [float(r["seconds"]) for r in rows], [float(r["val_dice_coef"]) for r in rows]


def row_gpu(args, setup):
    N, R, E, ref = args.nerveseg, args.python, args.epochs, args.ref_dir
    w = args.work
    data = ["--images", setup.x96, "--masks", setup.y96, "--epochs", E]
    out_a, out_amp = os.path.join(w, "gpu_ns"), os.path.join(w, "gpu_ns_amp")
    a = Variant("ns", "nerveseg fp32", [N, "--quiet", "train"] + data +
                ["--device", "cuda", "--out-dir", out_a],
                expect_json=False, before=clear_dir(out_a), gpu=True)
    amp_missing = None if args.dry_run or help_has(N, ["train"], "--amp") else \
        "this nerveseg's train has no --amp"
    a_amp = Variant("ns-amp", "nerveseg --amp", [N, "--quiet", "train"] + data +
                    ["--device", "cuda", "--out-dir", out_amp, "--amp"],
                    expect_json=False, before=clear_dir(out_amp), gpu=True, unavailable=amp_missing)
    b = Variant("torch", "torch eager fp32", [R, os.path.join(ref, "torch_unet.py"), "train"] + data +
                ["--device", "cuda"], gpu=True)
    b_best = Variant("torch-best", "torch --amp --channels-last --cudnn-benchmark",
                     b.cmd + ["--amp", "--channels-last", "--cudnn-benchmark"], gpu=True)
    variants = [a, a_amp, b, b_best]
    res = RowResult("gpu")
    if args.dry_run:
        res.add_variants(variants)
        return res
    # nerveseg's figures come from history.csv, written again by each rep: read it after
    # each run by wrapping the next run's clearing step.
    hist = {a.key: [], a_amp.key: []}

    def grab(v, out):
        def before():
            if len(v.runs) > len(hist[v.key]):
                try:
                    hist[v.key].append(read_history(os.path.join(out, "history.csv")))
                except (OSError, ValueError, KeyError) as e:
                    v.runs.pop()
                    log(f"[gpu] {v.label}: cannot read {out}/history.csv: {e}")
            clear_dir(out)()
        return before

    a.before, a_amp.before = grab(a, out_a), grab(a_amp, out_amp)
    run_interleaved("gpu", variants, args.gpu_reps, w)
    for v, out in ((a, out_a), (a_amp, out_amp)):
        if v.ok and len(v.runs) > len(hist[v.key]):
            try:
                hist[v.key].append(read_history(os.path.join(out, "history.csv")))
            except (OSError, ValueError, KeyError) as e:
                v.error = f"cannot read {out}/history.csv: {e}"
    res.add_variants(variants)

    def figures(v):
        """first epoch, median epoch, total (sum of epochs), wall, best val Dice, GPU MiB."""
        if not v.ok:
            return None
        if v.key in hist:
            per = hist[v.key]
            epochs = [e for e, _ in per]
            dice = [d for _, d in per]
        else:
            epochs = [r.result["epoch_seconds"] for r in v.runs]
            dice = [r.result["val_dice_coef"] for r in v.runs]
        return {
            "first": median([e[0] for e in epochs]),
            "median": median([median(e) for e in epochs]),
            "total": median([sum(e) for e in epochs]),
            "wall": med(v, lambda r: r.wall),
            "dice": median([max(d) for d in dice]),
            "mib": med(v, lambda r: r.gpu_mib),
        }

    f = {v.key: figures(v) for v in variants}

    def get(v, k):
        return f[v.key][k] if f[v.key] else None

    def pair(x, y, main):
        for k, name in (("first", "first epoch"), ("median", "median epoch"),
                        ("total", f"{E}-epoch total (sum of epochs)"), ("wall", "wall of the command")):
            r = ratio(get(y, k), get(x, k))
            target, ok = "info", "-"
            if main and k == "total":
                t = get(x, k)
                target = "< 60 s and >= 1.5x"
                ok = "-" if t is None or r is None else ("yes" if t < 60 and r >= 1.5 else "no")
            res.lines.append(Line("gpu", name, cell(x, fmt_s(get(x, k))), cell(y, fmt_s(get(y, k))),
                                  fmt_ratio(r), target, ok))
        dx, dy = get(x, "dice"), get(y, "dice")
        diff = "-" if dx is None or dy is None else f"{dx - dy:+.3f}"
        ok = "-" if diff == "-" or not main else ("yes" if dx >= dy - args.dice_tolerance else "no")
        res.lines.append(Line("gpu", "best val_dice_coef (A-B)",
                              cell(x, "-" if dx is None else f"{dx:.3f}"),
                              cell(y, "-" if dy is None else f"{dy:.3f}"), diff,
                              f"no worse (-{args.dice_tolerance})" if main else "info", ok))
        mx, my = get(x, "mib"), get(y, "mib")
        res.lines.append(Line("gpu", "peak GPU memory (nvidia-smi)", cell(x, fmt_mib(mx)),
                              cell(y, fmt_mib(my)), fmt_ratio(ratio(my, mx)), "report", "-"))

    pair(a, b, True)
    pair(a_amp, b_best, False)
    hows = sorted({r.gpu_how for v in variants for r in v.runs if r.gpu_how})
    if hows:
        res.notes.append("gpu: peak memory measured as: " + "; ".join(hows) +
                         " (polled every 0.2 s, the same way for every run)")
    for v in (b, b_best):
        if v.ok:
            torch_mib = med(v, lambda r: r.result.get("peak_gpu_mem_mib"))
            if torch_mib is not None:
                res.notes.append(f"gpu: {v.label}: torch's own peak allocation "
                                 f"{fmt_mib(torch_mib)} (max_memory_allocated; nvidia-smi also "
                                 f"counts the CUDA context and the cache)")
    res.notes.append(f"gpu: reps {args.gpu_reps}; the val Dice target allows "
                     f"{args.dice_tolerance} below PyTorch, since seeds and shuffles differ.")
    return res


ROW_FUNCS = {"prepare": row_prepare, "resize": row_resize, "train-step": row_train_step,
             "infer": row_infer, "encode": row_encode, "gpu": row_gpu}
ROW_NEEDS = {"prepare": "raw", "resize": "prep", "train-step": "x96", "infer": "x96",
             "encode": "pred", "gpu": "x96"}


# ---------------------------------------------------------------- the header


def read_file(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def machine_info():
    cpu = next((l.split(":", 1)[1].strip() for l in read_file("/proc/cpuinfo").splitlines()
                if l.startswith("model name")), platform.processor() or "unknown CPU")
    ram = next((int(l.split()[1]) for l in read_file("/proc/meminfo").splitlines()
                if l.startswith("MemTotal:")), None)
    gpu = "none"
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total",
                                  "--format=csv,noheader"], capture_output=True, text=True,
                                 timeout=20).stdout.strip()
            gpu = "; ".join(out.splitlines()) or "none (nvidia-smi found no GPU)"
        except (OSError, subprocess.TimeoutExpired):
            gpu = "unknown (nvidia-smi failed)"
    ram_txt = f"{ram / 1024 / 1024:.0f} GiB RAM" if ram else "RAM unknown"
    return f"{cpu}, {os.cpu_count()} cores, {ram_txt}; GPU: {gpu}"


VERSIONS_SNIPPET = r"""
import json, sys
from importlib import metadata
out = {"python": sys.version.split()[0]}
for label, dists in [("torch", ["torch"]), ("tensorflow", ["tensorflow-cpu", "tensorflow"]),
                     ("tf-keras", ["tf-keras"]), ("numpy", ["numpy"]),
                     ("scikit-image", ["scikit-image"])]:
    v = None
    for d in dists:
        try:
            v = metadata.version(d); break
        except metadata.PackageNotFoundError:
            pass
    out[label] = v or "not installed"
if "--cuda" in sys.argv:
    try:
        import torch
        out["cuda"] = bool(torch.cuda.is_available())
    except Exception as e:
        out["cuda"] = False
        out["cuda_error"] = str(e)
print(json.dumps(out))
"""


def reference_versions(python, want_cuda):
    cmd = [python, "-c", VERSIONS_SNIPPET] + (["--cuda"] if want_cuda else [])
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        return last_json_line(r.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired) as e:
        return {"python": f"unknown ({e})", "cuda": False}


def nerveseg_version(nerveseg):
    try:
        r = subprocess.run([nerveseg, "--version"], capture_output=True, text=True, timeout=60)
        return r.stdout.strip() or r.stderr.strip()
    except OSError as e:
        return f"cannot run {nerveseg}: {e}"


def document(args, header, results, setup_notes):
    lines = [r for res in results for r in res.lines]
    notes = setup_notes + [n for res in results for n in res.notes]
    out = ["# nerveseg benchmark", ""]
    out += [f"- {k}: {v}" for k, v in header]
    out += ["", render_table(lines), "",
            "A is nerveseg unless the cell names another run; B is the reference it is "
            "compared with. B/A = B's time / A's time (memory: B's / A's), so above 1 means A "
            "is faster (or smaller). Figures are medians over the reps."]
    if notes:
        out += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    failures = [f for res in results for f in res.failures]
    if failures:
        out += ["", "## Failures (stderr tails)", ""]
        for title, detail in failures:
            out += [f"{title}:", "", "```", detail, "```", ""]
    if out[-1] != "":
        out.append("")
    out += ["## Commands", ""]
    for res in results:
        out.append(f"{res.name}:")
        out += [f"- {label}: `{cmd}`" for label, cmd in res.commands]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------- main


def parse_args(argv=None):
    here = os.path.dirname(sys.argv[0]) or "."
    ap = argparse.ArgumentParser(
        description="Benchmark nerveseg beside the reference scripts (bench/ref/) on the same "
                    "inputs, interleaved; print the table and write it to --out.")
    ap.add_argument("--nerveseg", required=True, metavar="PATH", help="the nerveseg binary")
    ap.add_argument("--work", metavar="DIR",
                    help="data and scratch folder (default bench/work; bench/work/small with --small)")
    ap.add_argument("--rows", default=",".join(ROWS), metavar="LIST",
                    help=f"comma list from {','.join(ROWS)} (default all; gpu is skipped "
                         "when the reference python sees no CUDA)")
    ap.add_argument("--reps", type=int, default=3, metavar="N", help="timed runs of each program (default 3)")
    ap.add_argument("--gpu-reps", type=int, default=1, metavar="N", help="reps of the gpu row (default 1)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), metavar="T",
                    help="CPU threads for train-step and infer (default: all cores)")
    ap.add_argument("--steps", type=int, metavar="N", help="timed steps of train-step (default 10)")
    ap.add_argument("--batches", type=int, metavar="N", help="timed batches of infer (default 10)")
    ap.add_argument("--epochs", type=int, metavar="N", help="epochs of the gpu row (default 20)")
    ap.add_argument("--levers", action=argparse.BooleanOptionalAction, default=True,
                    help="also time train-step with channels-last switched (default on)")
    ap.add_argument("--out", default=os.path.join(here, "results.md"), metavar="FILE",
                    help="where to write the table (default bench/results.md)")
    ap.add_argument("--python", default=sys.executable, metavar="PATH",
                    help="the python that runs the reference scripts (default: this one)")
    ap.add_argument("--ref-dir", default=os.path.join(here, "ref"), metavar="DIR",
                    help="the reference scripts (default bench/ref)")
    ap.add_argument("--dice-tolerance", type=float, default=0.01, metavar="D",
                    help="gpu row: nerveseg's best val Dice may be this much below PyTorch's")
    ap.add_argument("--keep-outputs", action="store_true",
                    help="keep WORK/prep_ns and WORK/prep_ref (8 GB) after the prepare row")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    ap.add_argument("--small", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--self-test", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    small = args.small
    if args.work is None:
        args.work = os.path.join(here, "work", "small") if small else os.path.join(here, "work")
    args.steps = args.steps or (2 if small else 10)
    args.batches = args.batches or (2 if small else 10)
    args.epochs = args.epochs or (2 if small else 20)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    bad = [r for r in rows if r not in ROWS]
    if bad:
        ap.error(f"unknown row(s) {', '.join(bad)}; choose from {', '.join(ROWS)}")
    args.rows = [r for r in ROWS if r in rows]
    for name in ("reps", "gpu_reps", "threads", "steps", "batches", "epochs"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.self_test:
        return self_test()
    if not args.dry_run and not (os.path.isfile(args.nerveseg) and os.access(args.nerveseg, os.X_OK)):
        print(f"bench.py: {args.nerveseg} is not an executable; build it first (make build)",
              file=sys.stderr)
        return 2
    os.makedirs(args.work, exist_ok=True)
    started = datetime.datetime.now().astimezone()
    versions = reference_versions(args.python, "gpu" in args.rows and not args.dry_run)
    setup = Setup(args)
    skipped = []
    rows = list(args.rows)
    if "gpu" in rows and not args.dry_run and not versions.get("cuda"):
        rows.remove("gpu")
        skipped.append("gpu: skipped: torch.cuda.is_available() is false in "
                       f"{args.python} (run it on a GPU machine: see bench/README.md)")
    results = []
    for name in rows:
        log(f"===== {name}")
        if args.dry_run:
            results.append(ROW_FUNCS[name](args, setup))
            continue
        try:
            setup.ensure(ROW_NEEDS[name])
        except RunFailed as e:
            log(f"[set-up] FAILED: {e}")
            results.append(failed_row(name, f"set-up failed: {e.summary}", e.detail))
            continue
        try:
            results.append(ROW_FUNCS[name](args, setup))
        except Exception as e:  # one broken row must not lose the others
            log(f"[{name}] FAILED: {e!r}")
            results.append(failed_row(name, repr(e)))
    if args.dry_run:
        s = setup.commands()
        print("set-up (cached in", args.work + "):")
        for step in Setup.STEPS:
            for c in s[step]:
                print("  " + shlex.join(str(x) for x in c))
        print(f"  {setup.pred96}, {setup.ids}: the first min({ENCODE_MASKS}, N) rows of y96.npy, ids 1..n")
        for res in results:
            print(f"{res.name}:")
            for label, cmd in res.commands:
                print(f"  [{label}] {cmd}")
        return 0
    ref_v = ", ".join(f"{k} {versions.get(k, '?')}" for k in
                      ("torch", "tensorflow", "tf-keras", "numpy", "scikit-image"))
    sizes = setup.sizes
    header = [
        ("date", started.strftime("%Y-%m-%d %H:%M %Z")),
        ("machine", machine_info()),
        ("nerveseg", f"`{nerveseg_version(args.nerveseg)}` ({args.nerveseg})"),
        ("reference", f"python {versions.get('python', '?')} ({args.python}); {ref_v}"),
        ("reps", f"{args.reps} (gpu row: {args.gpu_reps}); threads {args.threads}; "
                 f"train-step {args.steps} steps after 2 warm-up; infer {args.batches} batches "
                 f"after 1 warm-up; gpu {args.epochs} epochs"),
        ("data", f"nerveseg synth: {sizes['subjects']} subjects x {sizes['per_subject']} = "
                 f"{sizes['subjects'] * sizes['per_subject']:,} train pairs, {sizes['test']:,} "
                 f"test images" + (" (--small: a smoke test, not a benchmark)" if args.small else "")),
    ]
    doc = document(args, header, results, skipped + setup.notes)
    print(doc)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(doc)
    log(f"wrote {args.out}")
    return 1 if any(r.failed for r in results) else 0


# ---------------------------------------------------------------- self-test


def self_test():
    """Checks of the formatting, medians, ratios and the table (python bench.py --self-test
    --nerveseg x)."""
    import unittest

    class T(unittest.TestCase):
        def test_formats(self):
            self.assertEqual(fmt_ratio(12.345), "12.3x")
            self.assertEqual(fmt_ratio(1.15), "1.15x")
            self.assertEqual(fmt_ratio(None), "-")
            self.assertEqual(fmt_s(0.8123), "0.812 s")
            self.assertEqual(fmt_s(0.5), "0.500 s")
            self.assertEqual(fmt_s(0.0394), "0.0394 s")
            self.assertEqual(fmt_s(2.345), "2.35 s")
            self.assertEqual(fmt_s(12.34), "12.3 s")
            self.assertEqual(fmt_s(1234.4), "1234 s")
            self.assertEqual(fmt_mib(1234.4), "1,234 MiB")
            self.assertEqual(fmt_rate(39.44), "39.4 img/s")

        def test_ratio_and_met(self):
            self.assertAlmostEqual(ratio(10.0, 2.0), 5.0)
            self.assertIsNone(ratio(1.0, 0.0))
            self.assertIsNone(ratio(None, 1.0))
            self.assertEqual(met(1.15, 1.15), "yes")
            self.assertEqual(met(1.149, 1.15), "no")
            self.assertEqual(met(None, 1.15), "-")

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

        def test_steps_per_epoch(self):
            self.assertEqual(steps_per_epoch(5640), (4512, 141))
            self.assertEqual(steps_per_epoch(40), (32, 1))

        def test_table(self):
            t = render_table([Line("resize", "s", "nerveseg: 1.00 s", "preprocess.py: 50.0 s",
                                   fmt_ratio(50.0), ">= 10x", met(50.0, 10))])
            rows = t.splitlines()
            self.assertEqual(len(rows), 3)
            self.assertTrue(rows[1].startswith("|--"))
            self.assertIn("| 50.0x |", rows[2])
            self.assertEqual(len({len(r) for r in rows}), 1)  # padded to one width

        def test_run_child(self):
            import tempfile
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

        def test_history(self):
            import tempfile
            d = tempfile.mkdtemp()
            p = os.path.join(d, "history.csv")
            with open(p, "w") as f:
                f.write("epoch,dice_coef,loss,val_dice_coef,val_loss,seconds\n"
                        "1,0.1,-0.1,0.2,-0.2,5.0\n2,0.3,-0.3,0.4,-0.4,3.0\n")
            self.assertEqual(read_history(p), ([5.0, 3.0], [0.2, 0.4]))
            shutil.rmtree(d)

    suite = unittest.defaultTestLoader.loadTestsFromTestCase(T)
    ok = unittest.TextTestRunner(verbosity=2).run(suite).wasSuccessful()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
