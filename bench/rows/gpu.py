"""gpu: `nerveseg train --device cuda` (also --amp) beside torch_unet.py train, the whole
fit loop: first and median epoch, the total of the epochs, wall, best val Dice and peak
GPU memory (nvidia-smi). Runs only where the reference Python sees CUDA."""

import csv
import os
import shutil
import tempfile
import unittest

from lib.fmt import Line, fmt_mib, fmt_ratio, fmt_s, median, ratio
from lib.inputs import offers
from lib.runner import RowResult, Variant, cell, clear_dir, log, med, run_interleaved

NEEDS = "x96"


def read_history(path):
    """nerveseg's history.csv: epoch seconds and val_dice_coef per epoch."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path} has no epochs")
    return [float(r["seconds"]) for r in rows], [float(r["val_dice_coef"]) for r in rows]


def run(args, setup):
    N, R, E, ref = args.nerveseg, args.python, args.epochs, args.ref_dir
    w = args.work
    data = ["--images", setup.x96, "--masks", setup.y96, "--epochs", E]
    out_a, out_amp = os.path.join(w, "gpu_ns"), os.path.join(w, "gpu_ns_amp")
    a = Variant("ns", "nerveseg fp32", [N, "--quiet", "train"] + data +
                ["--device", "cuda", "--out-dir", out_a],
                expect_json=False, before=clear_dir(out_a), gpu=True)
    amp_missing = None if offers(args, ["train"], "--amp") else \
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


class Tests(unittest.TestCase):
    def test_history(self):
        d = tempfile.mkdtemp()
        p = os.path.join(d, "history.csv")
        with open(p, "w") as f:
            f.write("epoch,dice_coef,loss,val_dice_coef,val_loss,seconds\n"
                    "1,0.1,-0.1,0.2,-0.2,5.0\n2,0.3,-0.3,0.4,-0.4,3.0\n")
        self.assertEqual(read_history(p), ([5.0, 3.0], [0.2, 0.4]))
        shutil.rmtree(d)
