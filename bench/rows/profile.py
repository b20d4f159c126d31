"""profile: where one training step's time goes, float32 and bfloat16, in nerveseg and in
PyTorch's own CPU autocast (torch_unet.py --amp), from oneDNN's own log
(ONEDNN_VERBOSE=1): the time in convolutions by direction, the reorders (layout changes)
and among them the casts (a reorder whose source and destination types differ), the
rest of the step (libtorch's own kernels: ReLU, pooling, concatenation, the loss, Adam,
and the weight casts nerveseg makes before each convolution), and the slowest
implementations oneDNN chose. A bfloat16 step that is slower than float32 shows here
which part grew: a reference ("ref:") or gemm fallback, more reorders, or casts."""

import os
import unittest
from collections import defaultdict

from lib.fmt import Line, fmt_ratio, fmt_s, ratio
from lib.inputs import BATCH, no_bench_reason
from lib.machine import bf16_skip_reason
from lib.runner import RowResult, Variant, cell, med, run_row

NEEDS = "x96"
# One warm-up step and one measured step; the measured step is the second half of the
# log (a step executes the same primitives each time).
STEPS = 2


def parse(text):
    """oneDNN's exec lines -> [(kind, implementation, prop, memory descriptors, ms)]."""
    out = []
    for line in text.splitlines():
        f = line.split(",")
        if len(f) < 13 or f[0] != "onednn_verbose" or "exec" not in f[2:4]:
            continue
        # v1 format: onednn_verbose,v1,primitive,exec,cpu,kind,impl,prop,mds,attr,aux,problem,ms
        i = f.index("exec")
        try:
            ms = float(f[-1])
        except ValueError:
            continue
        out.append((f[i + 2], f[i + 3], f[i + 4], f[i + 5], ms))
    return out


def is_cast(mds):
    """A reorder between data types: 'src:f32::... dst:bf16::...'."""
    types = [d.split(":")[1] for d in mds.split() if ":" in d and d.split(":")[0] in ("src", "dst")]
    return len(set(types)) > 1


def summarise(events):
    """Totals of one step's events (ms): by convolution direction, reorders, casts, and
    the three slowest implementation/direction pairs."""
    s = defaultdict(float)
    by_impl = defaultdict(float)
    for kind, impl, prop, mds, ms in events:
        s["onednn"] += ms
        if kind == "reorder":
            s["reorders"] += ms
            s["reorder_n"] += 1
            if is_cast(mds):
                s["casts"] += ms
                s["cast_n"] += 1
        else:
            s[f"{kind} {prop}"] += ms
            by_impl[f"{kind} {prop} {impl}"] += ms
    s["top"] = sorted(by_impl.items(), key=lambda kv: -kv[1])[:3]
    return s


def read_step(path):
    with open(path, errors="replace") as f:
        events = parse(f.read())
    return summarise(events[len(events) // 2:])


def describe(s, step_s):
    conv = sum(v for k, v in s.items() if k.startswith(("convolution", "deconvolution")))
    other = step_s * 1e3 - s["onednn"]
    return (f"conv {conv:.0f} ms, reorders {int(s['reorder_n'])} ({s['reorders']:.0f} ms; oneDNN "
            f"casts {int(s['cast_n'])}, {s['casts']:.0f} ms), rest {max(other, 0):.0f} ms")


def run(args, setup):
    N, R, ref = args.nerveseg, args.python, args.ref_dir
    common = ["--images", setup.x96, "--masks", setup.y96, "--batch-size", BATCH,
              "--warmup", STEPS - 1, "--steps", 1, "--device", "cpu", "--threads", args.threads]
    env = ["env", "ONEDNN_VERBOSE=1"]
    nb = no_bench_reason(args)
    a = Variant("ns", "nerveseg", env + [N, "bench", "train-step"] + common, unavailable=nb)
    b = Variant("torch", "torch eager", env + [R, os.path.join(ref, "torch_unet.py"),
                                                "train-step", "--channels-last"] + common)
    res = RowResult("profile")
    variants = [a, b]
    skip = bf16_skip_reason(args, "profile")
    if skip:
        res.notes.append(skip)
    else:
        variants += [Variant("ns-amp", "nerveseg --amp", a.cmd + ["--amp"], unavailable=nb),
                     Variant("torch-amp", "torch eager --amp", b.cmd + ["--amp"])]
    saved = args.reps
    args.reps = 1  # a profile, not a timing: one run each
    try:
        ran = run_row(res, variants, args, args.work)
    finally:
        args.reps = saved
    if not ran:
        return res

    def text(v):
        if not v.ok:
            return cell(v, "")
        step = med(v, lambda r: r.result["median_s"])
        s = read_step(os.path.join(args.work, "logs", f"profile.{v.key}.rep1.out"))
        top = "; ".join(f"{k} {ms:.0f} ms" for k, ms in s["top"])
        res.notes.append(f"profile: {v.label}, the slowest oneDNN primitives of a step: {top}")
        return cell(v, f"step {fmt_s(step)}: {describe(s, step)}")

    pairs = [(variants[i], variants[i + 1]) for i in range(0, len(variants), 2)]
    for x, y in pairs:
        r = ratio(med(y, lambda r: r.result["median_s"]), med(x, lambda r: r.result["median_s"]))
        res.lines.append(Line("profile", "one training step, by oneDNN's log", text(x), text(y),
                              fmt_ratio(r), "info", "-"))
    res.notes.append("profile: ONEDNN_VERBOSE=1 adds its own cost to each primitive, so the "
                     "step times of this row are above the train-step row's; the rest is the "
                     "step's time outside oneDNN")
    return res


class Tests(unittest.TestCase):
    LOG = """onednn_verbose,v1,info,oneDNN v3.7.1
onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx512_core,forward_inference,src:f32::blocked:acdb::f0 dst:f32::blocked:acdb::f0,attr-scratchpad:user,,mb32_ic32oc32,27.5
onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:f32::blocked:abcd::f0 dst:bf16::blocked:acdb::f0,attr-scratchpad:user,,32x32x3x3,1.5
onednn_verbose,v1,primitive,exec,cpu,reorder,jit:blk,undef,src:f32::blocked:abcd::f0 dst:f32::blocked:Acdb16a::f0,attr-scratchpad:user,,32x1x3x3,0.5
onednn_verbose,v1,primitive,exec,cpu,convolution,ref:any,backward_weights,src:bf16::blocked:acdb::f0 dst:bf16::blocked:acdb::f0,,,mb32_ic32oc32,40
{"median_s": 0.1}
"""

    def test_parse_and_summarise(self):
        ev = parse(self.LOG)
        self.assertEqual(len(ev), 4)
        s = summarise(ev)
        self.assertEqual((s["reorder_n"], s["cast_n"]), (2, 1))
        self.assertAlmostEqual(s["reorders"], 2.0)
        self.assertAlmostEqual(s["casts"], 1.5)
        self.assertAlmostEqual(s["convolution backward_weights"], 40)
        self.assertEqual(s["top"][0], ("convolution backward_weights ref:any", 40))
        self.assertIn("conv 68 ms, reorders 2 (2 ms; oneDNN casts 1, 2 ms), rest 30 ms", describe(s, 0.1))

    def test_is_cast(self):
        self.assertTrue(is_cast("src:f32::blocked:abcd::f0 dst:bf16::blocked:acdb::f0"))
        self.assertFalse(is_cast("src:f32::blocked:abcd::f0 dst:f32::blocked:Acdb16a::f0"))
