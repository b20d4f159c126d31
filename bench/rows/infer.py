"""infer: forward passes of nerveseg beside PyTorch eager and tf-keras, CPU, batch 32,
in images/s; also nerveseg's oneDNN fast path (--fast) where the binary has it, and bf16
(nerveseg --bf16, torch --amp) on a CPU with bf16 instructions."""

import os

from lib.fmt import Line, fmt_rate, fmt_ratio, met, ratio
from lib.inputs import BATCH, no_bench_reason, offers
from lib.machine import bf16_skip_reason
from lib.runner import RowResult, Variant, cell, med, run_row

NEEDS = "x96"


def run(args, setup):
    N, R, T, ref = args.nerveseg, args.python, args.threads, args.ref_dir
    tail_args = ["--images", setup.x96, "--batch-size", BATCH, "--warmup", 1,
                 "--batches", args.batches]
    nb = no_bench_reason(args)
    res = RowResult("infer")
    a = Variant("ns", "nerveseg", [N, "bench", "infer"] + tail_args + ["--device", "cpu", "--threads", T],
                unavailable=nb)
    b = Variant("torch", "torch eager",
                [R, os.path.join(ref, "torch_unet.py"), "infer"] + tail_args + ["--threads", T])
    c = Variant("keras", "tf-keras",
                [R, os.path.join(ref, "keras_unet.py"), "infer"] + tail_args + ["--threads", T])
    fast = a16 = b16 = None
    if offers(args, ["bench", "infer"], "--fast"):
        fast = Variant("ns-fast", "nerveseg --fast", a.cmd + ["--fast"], unavailable=nb)
    else:
        res.notes.append("infer: nerveseg --fast not run: this nerveseg's `bench infer --help` "
                         "lists no --fast")
    skip = bf16_skip_reason(args, "infer")
    if skip:
        res.notes.append(skip)
    else:
        a16 = Variant("ns-bf16", "nerveseg --bf16", a.cmd + ["--bf16"], unavailable=nb)
        # bf16 beside bf16: PyTorch's own autocast to bfloat16 on the CPU.
        b16 = Variant("torch-bf16", "torch eager --amp (bf16)", b.cmd + ["--amp"])
    variants = [v for v in (a, fast, a16, b, b16, c) if v]
    if not run_row(res, variants, args, args.work):
        return res

    def rate(v):
        s = med(v, lambda r: r.result["median_s"])
        return None if s is None else BATCH / s

    def line(x, y, target="report", minimum=None):
        # Time ratio B / A = A's images/s over B's.
        r = ratio(rate(x), rate(y))
        res.lines.append(Line("infer", "CPU img/s, batch 32", cell(x, fmt_rate(rate(x))),
                              cell(y, fmt_rate(rate(y))), fmt_ratio(r), target, met(r, minimum)))

    line(a, b)
    # The float32 target (>= 1.2x tf-keras) is the default path's unless a fast path exists.
    if fast:
        line(a, c)
    else:
        line(a, c, ">= 1.2x", 1.2)
    if fast:
        line(fast, c, ">= 1.2x", 1.2)
        line(fast, b)
    if a16:
        line(a16, b16)
        line(a16, b)
        line(a16, c)
    return res
