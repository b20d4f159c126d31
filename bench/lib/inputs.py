"""The inputs every row shares, made once and cached in WORK (a stamp file per step),
and what this nerveseg binary offers (its `bench` subcommand, its options)."""

import json
import os
import re
import shlex
import shutil
import subprocess
import time
import unittest

import numpy as np

from lib.runner import log, run_child

# Sizes of the synthetic data set (nerveseg synth): the full Kaggle-like one, and the
# hidden --small one for smoke tests.
FULL = {"subjects": 47, "per_subject": 120, "test": 5508}
SMALL = {"subjects": 2, "per_subject": 20, "test": 40}

BATCH = 32
VALIDATION_SPLIT = 0.2
ENCODE_MASKS = 5508

# The four files of `nerveseg prepare` (and of the tutorial's data.py).
PREPARED = ["imgs_train.npy", "imgs_mask_train.npy", "imgs_test.npy", "imgs_id_test.npy"]


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


# ---------------------------------------------------------------- what nerveseg offers

_HAS_BENCH = {}
_HELP = {}


def has_bench(nerveseg):
    if nerveseg not in _HAS_BENCH:
        try:
            r = subprocess.run([nerveseg, "bench", "--help"], capture_output=True, timeout=60)
            _HAS_BENCH[nerveseg] = r.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _HAS_BENCH[nerveseg] = False
    return _HAS_BENCH[nerveseg]


def help_lists(text, flag):
    """Whether clap's help text offers `flag`: as an option (a line starting with it,
    after an optional short form) or as an alias of one ("[alias: --amp]"). A flag that is
    only named in another option's prose ("as `train --amp`") does not count."""
    options = re.findall(r"^\s+(?:-\w, )?(--[\w-]+)", text, re.M)
    for names in re.findall(r"\[alias(?:es)?: ([^\]]*)\]", text):
        options += [n.strip() for n in names.split(",")]
    return flag in options


def help_has(nerveseg, sub, flag):
    """Whether `nerveseg SUB --help` offers `flag` (cached per subcommand)."""
    key = (nerveseg, tuple(sub))
    if key not in _HELP:
        try:
            r = subprocess.run([nerveseg] + sub + ["--help"], capture_output=True, text=True,
                               timeout=60)
            _HELP[key] = r.stdout if r.returncode == 0 else ""
        except (OSError, subprocess.TimeoutExpired):
            _HELP[key] = ""
    return help_lists(_HELP[key], flag)


def offers(args, sub, flag):
    """help_has, except that --dry-run without a runnable binary assumes yes, so the
    command is still shown."""
    if args.dry_run and not (os.path.isfile(args.nerveseg) and os.access(args.nerveseg, os.X_OK)):
        return True
    return help_has(args.nerveseg, sub, flag)


def no_bench_reason(args):
    if args.dry_run or has_bench(args.nerveseg):
        return None
    return "this nerveseg has no `bench` subcommand (rebuild: make build)"


class Tests(unittest.TestCase):
    HELP = """Forward passes of the U-Net without gradients

Usage: nerveseg bench infer [OPTIONS] --images <FILE>

Options:
      --images <FILE>     Model-ready float32 (N, 96, 96, 1) images
  -q, --quiet             Print no progress bars
      --bf16              bfloat16 convolutions (train-step: mixed precision as `train --amp`) [alias: --amp]
      --no-channels-last  Keep activations in NCHW
  -h, --help              Print help
"""

    def test_help_lists(self):
        self.assertTrue(help_lists(self.HELP, "--bf16"))
        self.assertTrue(help_lists(self.HELP, "--quiet"))
        self.assertTrue(help_lists(self.HELP, "--amp"))  # the alias
        self.assertTrue(help_lists(self.HELP, "--no-channels-last"))
        self.assertFalse(help_lists(self.HELP, "--channels-last"))
        self.assertFalse(help_lists(self.HELP, "--fast"))
        prose_only = self.HELP.replace(" [alias: --amp]", "")
        self.assertFalse(help_lists(prose_only, "--amp"))
        self.assertTrue(help_lists("  --x  a\n      --fast  b [aliases: --quick, --f]\n", "--f"))
        self.assertFalse(help_lists("", "--fast"))
