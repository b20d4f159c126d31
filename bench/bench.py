#!/usr/bin/env python3
"""The driver of `make bench`: nerveseg beside the reference scripts on the same inputs.

Each table row runs nerveseg (A) and one or more references (B, C) in the same
invocation, interleaved (A B A B ...), takes medians over the reps and prints the ratio
B / A of the times, so a ratio above 1 means nerveseg is faster. The same table, with a
header (machine, versions, reps) and the exact commands, is written to bench/results.md.

This file parses the options, runs the rows (one module each in rows/) and writes the
document; the helpers they share are in lib/. Standard library and NumPy only.
"""

import argparse
import contextlib
import datetime
import io
import os
import shlex
import sys
import unittest

from lib import fmt, gpupoll, inputs, machine, runner
from lib.fmt import Line, render_table
from lib.inputs import ENCODE_MASKS, Setup
from lib.runner import RunFailed, failed_row, log
from rows import MODULES, ROWS

# Every module whose Tests --self-test runs.
TESTED = [fmt, runner, gpupoll, inputs, machine] + list(MODULES.values())


def document(header, results, setup_notes):
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


def header_lines(args, started, versions, sizes):
    ref_v = ", ".join(f"{k} {versions.get(k, '?')}" for k in
                      ("torch", "tensorflow", "tf-keras", "numpy", "scikit-image"))
    return [
        ("date", started.strftime("%Y-%m-%d %H:%M %Z")),
        ("machine", machine.machine_info()),
        ("cpu flags", machine.describe_flags(machine.cpu_flags())),
        ("nerveseg", f"`{machine.nerveseg_version(args.nerveseg)}` ({args.nerveseg})"),
        ("reference", f"python {versions.get('python', '?')} ({args.python}); {ref_v}"),
        ("reps", f"{args.reps} (gpu row: {args.gpu_reps}); threads {args.threads}; "
                 f"train-step {args.steps} steps after 2 warm-up; infer {args.batches} batches "
                 f"after 1 warm-up; gpu {args.epochs} epochs"
                 + ("; --bf16-anyway" if args.bf16_anyway else "")),
        ("data", f"nerveseg synth: {sizes['subjects']} subjects x {sizes['per_subject']} = "
                 f"{sizes['subjects'] * sizes['per_subject']:,} train pairs, {sizes['test']:,} "
                 f"test images" + (" (--small: a smoke test, not a benchmark)" if args.small else "")),
    ]


def parse_args(argv=None):
    here = os.path.dirname(sys.argv[0]) or "."
    ap = argparse.ArgumentParser(
        description="Benchmark nerveseg beside the reference scripts (bench/ref/) on the same "
                    "inputs, interleaved; print the table and write it to --out.")
    ap.add_argument("--nerveseg", metavar="PATH", help="the nerveseg binary (required)")
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
    ap.add_argument("--bf16-anyway", action="store_true",
                    help="run the bf16 variants of train-step and infer even on a CPU without "
                         "bf16 instructions (avx512_bf16, amx_bf16), where they are emulated")
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
    if args.nerveseg is None and not args.self_test:
        ap.error("the following arguments are required: --nerveseg")
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


def print_dry_run(args, setup, results):
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
        for note in res.notes:
            print(f"  note: {note}")


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
    versions = machine.reference_versions(args.python, "gpu" in args.rows and not args.dry_run)
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
        row = MODULES[name]
        if args.dry_run:
            results.append(row.run(args, setup))
            continue
        try:
            setup.ensure(row.NEEDS)
        except RunFailed as e:
            log(f"[set-up] FAILED: {e}")
            results.append(failed_row(name, f"set-up failed: {e.summary}", e.detail))
            continue
        try:
            results.append(row.run(args, setup))
        except Exception as e:  # one broken row must not lose the others
            log(f"[{name}] FAILED: {e!r}")
            results.append(failed_row(name, repr(e)))
    if args.dry_run:
        print_dry_run(args, setup, results)
        return 0
    doc = document(header_lines(args, started, versions, setup.sizes), results,
                   skipped + setup.notes)
    print(doc)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(doc)
    log(f"wrote {args.out}")
    return 1 if any(r.failed for r in results) else 0


def self_test():
    """The unit tests of every module (python bench.py --self-test): formatting, medians,
    ratios, the table, running children, help parsing, CPU flags, the rows' helpers."""
    loader = unittest.defaultTestLoader
    suite = unittest.TestSuite(loader.loadTestsFromModule(m) for m in TESTED)
    suite.addTests(loader.loadTestsFromTestCase(DriverTests))
    ok = unittest.TextTestRunner(verbosity=2).run(suite).wasSuccessful()
    return 0 if ok else 1


class DriverTests(unittest.TestCase):
    def test_every_row_has_tests_run(self):
        self.assertEqual(ROWS, ["prepare", "resize", "train-step", "infer", "profile", "stream", "encode", "gpu"])
        for name, m in MODULES.items():
            self.assertIn(m.NEEDS, Setup.STEPS, name)

    def test_document(self):
        res = runner.RowResult("resize")
        res.lines.append(Line("resize", "s", "nerveseg: 1.00 s", "preprocess.py: 2.00 s",
                              "2.00x", ">= 10x", "no"))
        res.notes.append("resize: a note")
        res.commands.append(("nerveseg", "nerveseg bench resize"))
        doc = document([("date", "today")], [res], ["set-up: a note"])
        self.assertTrue(doc.startswith("# nerveseg benchmark\n\n- date: today\n\n| Row"))
        self.assertIn("- set-up: a note\n- resize: a note\n", doc)
        self.assertTrue(doc.endswith("## Commands\n\nresize:\n- nerveseg: `nerveseg bench resize`\n"))

    def test_nerveseg_required(self):
        with self.assertRaises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
            parse_args(["--dry-run"])
        self.assertTrue(parse_args(["--self-test"]).self_test)
        self.assertFalse(parse_args(["--nerveseg", "x"]).bf16_anyway)


if __name__ == "__main__":
    sys.exit(main())
