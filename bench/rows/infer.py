"""infer: forward passes of nerveseg beside PyTorch eager and tf-keras, CPU, batch 32,
in images/s; also nerveseg's oneDNN fast path (--fast) where the binary has it, and bf16
(nerveseg --bf16, torch --amp) on a CPU with bf16 instructions. The float32 ceiling
beside them: oneDNN's 3x3 convolution alone at each of the U-Net's levels on this CPU
(bench/ref/torch_unet.py peak) and the U-Net's convolution FLOPs at each level, so the table shows how near float32 inference is
to what the arithmetic allows, and whether 1.2x tf-keras is within reach at all."""

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
    pk = Variant("peak", "oneDNN's lone 3x3 convs, level by level (float32)",
                 [R, os.path.join(ref, "torch_unet.py"), "peak", "--images", setup.x96,
                  "--warmup", 1, "--batches", 4, "--threads", T])
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
    variants = [v for v in (a, fast, a16, b, b16, c, pk) if v]
    if not run_row(res, variants, args, args.work):
        return res

    def rate(v):
        if v is pk:  # images/s if every convolution ran at the ceiling
            s = med(v, lambda r: r.result["gflop_per_image"] / r.result["peak_gflops"])
            return None if s is None else 1.0 / s
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
    ceiling(res, pk, fast or a, c, rate)
    if a16:
        line(a16, b16)
        line(a16, b)
        line(a16, c)
    return res


def ceiling(res, pk, a, keras, rate):
    """Two lines on the float32 ceiling: nerveseg's convolution GFLOP/s beside those of a
    forward pass whose convolutions each ran at the rate oneDNN reaches alone at their
    level, with nothing else costing time, and tf-keras beside that forward pass (the
    most a float32 direct-convolution path on oneDNN could give)."""
    gflop = med(pk, lambda r: r.result["gflop_per_image"])
    if gflop is None or rate(pk) is None:
        return
    measure = f"float32 conv GFLOP/s ({gflop:.2f} GFLOP an image)"
    gf = None if rate(a) is None else rate(a) * gflop
    res.lines.append(Line("infer", measure, cell(a, f"{gf:.0f} GFLOP/s" if gf else "-"),
                          cell(pk, f"{rate(pk) * gflop:.0f} GFLOP/s"),
                          fmt_ratio(ratio(rate(a), rate(pk))), "ceiling", "-"))
    r = ratio(rate(pk), rate(keras))
    res.lines.append(Line("infer", "CPU img/s, batch 32",
                          f"every conv at its level's lone rate: {fmt_rate(rate(pk))}",
                          cell(keras, fmt_rate(rate(keras))), fmt_ratio(r), "report", "-"))
    res.notes.append("infer: the float32 ceiling line sets tf-keras beside a forward pass whose "
                     "convolutions each ran at the rate oneDNN reaches alone at their level "
                     "and nothing else took time; the 1.2x float32 target is within reach "
                     f"only where it is above 1.2x (here {fmt_ratio(r)})")
