"""train-step: one training step (forward, Dice loss, backward, Adam) of nerveseg beside
PyTorch eager and tf-keras, CPU, batch 32, by the median seconds a step; with the
channels-last levers, the network of `--recipe modern` (BatchNorm after every 3x3
convolution) beside its PyTorch twin, and, on a CPU with bf16 instructions, bf16 mixed
precision."""

import math
import os
import unittest

from lib.fmt import Line, fmt_rate, fmt_ratio, fmt_s, met, ratio
from lib.inputs import BATCH, VALIDATION_SPLIT, no_bench_reason, offers
from lib.machine import bf16_skip_reason
from lib.runner import RowResult, Variant, cell, med, run_row

NEEDS = "x96"


def steps_per_epoch(n_samples, batch=BATCH):
    """Keras: the first int(n * (1 - split)) samples train, in ceil(n_train / batch) steps."""
    n_train = int(n_samples * (1 - VALIDATION_SPLIT))
    return n_train, max(1, math.ceil(n_train / batch))


def run(args, setup):
    N, R, T, ref = args.nerveseg, args.python, args.threads, args.ref_dir
    common = ["--images", setup.x96, "--masks", setup.y96, "--batch-size", BATCH,
              "--warmup", 2, "--steps", args.steps, "--device", "cpu", "--threads", T]
    nb = no_bench_reason(args)
    a = Variant("ns", "nerveseg", [N, "bench", "train-step"] + common, unavailable=nb)
    b = Variant("torch", "torch eager", [R, os.path.join(ref, "torch_unet.py"), "train-step"] + common)
    c = Variant("keras", "tf-keras", [R, os.path.join(ref, "keras_unet.py"), "train-step"] + common)
    # The network of --recipe modern: BatchNorm (Keras's epsilon and momentum) after
    # every 3x3 convolution, in both.
    modern = ["--norm", "batch"]
    am = Variant("ns-modern", "nerveseg --recipe modern's network", a.cmd + modern, unavailable=nb)
    bm = Variant("torch-modern", "torch eager, the same network", b.cmd + modern)
    variants = [a, b, c, am, bm]
    res = RowResult("train-step")
    if args.levers:
        a2 = Variant("ns-nocl", "nerveseg --no-channels-last",
                     a.cmd + ["--no-channels-last"], unavailable=nb)
        b2 = Variant("torch-cl", "torch eager --channels-last", b.cmd + ["--channels-last"])
        variants += [a2, b2]
    a16 = b16 = None
    skip = bf16_skip_reason(args, "train-step")
    if skip:
        res.notes.append(skip)
    else:
        if offers(args, ["bench", "train-step"], "--amp"):
            a16 = Variant("ns-amp", "nerveseg --amp (bf16)", a.cmd + ["--amp"], unavailable=nb)
            variants.append(a16)
        else:
            res.notes.append("train-step: nerveseg --amp (bf16) not run: this nerveseg's "
                             "`bench train-step --help` lists no --amp")
        # bf16 beside bf16: torch_unet.py autocasts the forward to bfloat16.
        b16 = Variant("torch-amp", "torch eager --amp (bf16)", b.cmd + ["--amp"])
        variants.append(b16)
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

    def line(measure, x, y, target="report", minimum=None):
        """x (A) beside y (B): y's seconds a step over x's."""
        r = ratio(step_s(y), step_s(x))
        res.lines.append(Line("train-step", measure, cell(x, txt(x)), cell(y, txt(y)),
                              fmt_ratio(r), target, met(r, minimum)))

    measure = "s/step, batch 32 (img/s; train part of an epoch)"
    line(measure, a, b, ">= 1.15x", 1.15)
    line(measure, a, c, ">= 1.2x", 1.2)
    line("--recipe modern's network (BatchNorm)", am, bm, ">= 1.0x", 1.0)
    if args.levers:
        line("what channels-last buys nerveseg", a, a2, "info")
        line("what channels-last buys torch", b2, b, "info")
    if a16:
        line("what --amp (bf16) buys nerveseg", a16, a, ">= 1.5x", 1.5)
        line("bf16 beside bf16", a16, b16)
    if b16:
        line("what --amp (bf16) buys torch", b16, b, "info")
    if steps:
        res.notes.append(f"train-step: the epoch figure is {steps} step{'s' if steps != 1 else ''} x the median step "
                         f"({n_train:,} training images, batch {BATCH}); validation is not included.")
    return res


class Tests(unittest.TestCase):
    def test_steps_per_epoch(self):
        self.assertEqual(steps_per_epoch(5640), (4512, 141))
        self.assertEqual(steps_per_epoch(40), (32, 1))
