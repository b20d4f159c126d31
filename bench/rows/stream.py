"""stream: `nerveseg stream` on a clip of raw 420 x 580 frames, one frame at a time
(batch 1: each mask written before the next frame is read), with a width-32 checkpoint at
96 x 96, beside the same network in PyTorch eager at batch 1 (the forward pass alone, on
frames already resized and standardised: less work than nerveseg's whole path) and
beside the checkpoint's `export --onnx` graph in onnxruntime (the same work as nerveseg's:
frames in, masks out). By frames/s and the latency's median and 99th percentile; the
target is 30 frames/s with the 99th percentile under 50 ms; with --bf16 too on a CPU with
bf16 instructions."""

import os
import re
import unittest

import numpy as np

from lib.fmt import Line, fmt_ratio, met, ratio
from lib.inputs import help_has
from lib.machine import bf16_skip_reason
from lib.runner import RowResult, Variant, cell, log, med, run_child, run_row

NEEDS = "x96"
FRAMES = 300  # frames in the clip
TRAIN = 64  # frames the checkpoint is trained on (one epoch: its speed is what counts)
REPORT = re.compile(r"stream: (\d+) frames? of .* \(([\d.]+) frames/s\); latency median "
                    r"([\d.]+) ms, 99th percentile ([\d.]+) ms")


def parse_report(text):
    """nerveseg stream's summary line -> {frames, fps, median_ms, p99_ms}, or None."""
    m = None
    for m in REPORT.finditer(text):
        pass
    if not m:
        return None
    return {"frames": int(m.group(1)), "fps": float(m.group(2)),
            "latency_median_ms": float(m.group(3)), "latency_p99_ms": float(m.group(4))}


def make_inputs(args, setup, d):
    """The clip (the first FRAMES test frames, raw) and a width-32 checkpoint trained for
    one epoch on the first TRAIN training frames, in `d`; made once."""
    os.makedirs(d, exist_ok=True)
    clip, weights = os.path.join(d, "clip.raw"), os.path.join(d, "w", "weights.h5")
    if not os.path.exists(clip):
        frames = np.load(os.path.join(setup.prep, "imgs_test.npy"), mmap_mode="r")[:FRAMES]
        np.ascontiguousarray(frames).tofile(clip + ".part")
        os.replace(clip + ".part", clip)
    if not os.path.exists(weights):
        for name in ("imgs_train.npy", "imgs_mask_train.npy"):
            a = np.load(os.path.join(setup.prep, name), mmap_mode="r")[:TRAIN]
            np.save(os.path.join(d, name), np.ascontiguousarray(a))
        cmd = [args.nerveseg, "train", "-q", "--images", os.path.join(d, "imgs_train.npy"),
               "--masks", os.path.join(d, "imgs_mask_train.npy"), "--out-dir",
               os.path.join(d, "w"), "--epochs", "1", "--base-width", "32", "--device", "cpu",
               "--overwrite"]
        log("[stream set-up] " + " ".join(cmd))
        run_child(cmd, os.path.join(args.work, "logs", "stream.setup"), expect_json=False)
    return clip, weights


def export_onnx(args, d, weights):
    """`nerveseg export --onnx` of the checkpoint for 420 x 580 frames, in `d`; made once."""
    model = os.path.join(d, "model.onnx")
    if not os.path.exists(model):
        cmd = [args.nerveseg, "export", "-q", "--onnx", model, "--weights", weights,
               "--frame-size", "420x580"]
        log("[stream set-up] " + " ".join(cmd))
        run_child(cmd, os.path.join(args.work, "logs", "stream.onnx"), expect_json=False)
    return model


def onnx_variant(args, d, weights, dry):
    """onnxruntime running the exported graph, or a reason it cannot run."""
    model = os.path.join(d, "model.onnx")
    why = None if dry or help_has(args.nerveseg, ["export"], "--onnx") else (
        "this nerveseg has no `export --onnx`")
    if why is None and not dry:
        model = export_onnx(args, d, weights)
    return Variant("ort", "onnxruntime, batch 1 (model.onnx)",
                   [args.python, os.path.join(args.ref_dir, "onnx_stream.py"), "--model", model,
                    "--clip", os.path.join(d, "clip.raw"), "--frame-size", "420x580",
                    "--frames", FRAMES, "--threads", args.threads], unavailable=why)


def run(args, setup):
    d = os.path.join(args.work, "stream")
    res = RowResult("stream")
    # Needs `nerveseg stream` (not `bench`); the set-up's training needs only `train`.
    nb = None if args.dry_run or help_has(args.nerveseg, ["stream"], "--input") else (
        "this nerveseg has no `stream --input`")
    clip, weights = os.path.join(d, "clip.raw"), os.path.join(d, "w", "weights.h5")
    if not args.dry_run and nb is None:
        clip, weights = make_inputs(args, setup, d)
    ns_cmd = ["env", f"OMP_NUM_THREADS={args.threads}", args.nerveseg, "stream", "--weights",
              weights, "--frame-size", "420x580", "--input", clip, "--output", os.devnull,
              "--overwrite", "--device", "cpu"]
    a = Variant("ns", "nerveseg stream", ns_cmd, expect_json=False, unavailable=nb)
    b = Variant("torch", "torch eager, batch 1",
                [args.python, os.path.join(args.ref_dir, "torch_unet.py"), "stream", "--images",
                 setup.x96, "--frames", FRAMES, "--threads", args.threads, "--channels-last"])
    c = onnx_variant(args, d, weights, args.dry_run or nb is not None)
    variants = [a, b, c]
    a16 = None
    skip = bf16_skip_reason(args, "stream")
    if skip:
        res.notes.append(skip)
    else:
        a16 = Variant("ns-bf16", "nerveseg stream --bf16", ns_cmd + ["--bf16"],
                      expect_json=False, unavailable=nb)
        variants.append(a16)
    if not run_row(res, variants, args, args.work):
        return res
    for v in (a, a16):
        for k, r in enumerate(v.runs if v else []):
            with open(os.path.join(args.work, "logs", f"stream.{v.key}.rep{k + 1}.err")) as f:
                r.result = parse_report(f.read())

    def get(v, key):
        return med(v, lambda r: r.result[key] if r.result else None) if v and v.ok else None

    def text(v):
        fps = get(v, "fps")
        if fps is None:
            return cell(v, "-")
        return cell(v, f"{fps:.1f} frames/s; latency median {get(v, 'latency_median_ms'):.1f} "
                       f"ms, p99 {get(v, 'latency_p99_ms'):.1f} ms")

    measure = "frames/s, batch 1 (420 x 580 frames, width 32 at 96 x 96)"
    r = ratio(get(a, "fps"), get(b, "fps"))
    res.lines.append(Line("stream", measure, text(a), text(b), fmt_ratio(r), "report", "-"))
    res.lines.append(Line("stream", "beside its own graph in onnxruntime (frames to masks)",
                          text(a), text(c), fmt_ratio(ratio(get(a, "fps"), get(c, "fps"))),
                          "report", "-"))
    fps, p99 = get(a, "fps"), get(a, "latency_p99_ms")
    ok = fps is not None and fps >= 30 and p99 < 50
    res.lines.append(Line("stream", "the live-stream target", text(a),
                          "30 frames/s, p99 under 50 ms", fmt_ratio(ratio(fps, 30.0)),
                          ">= 30 fps, p99 < 50 ms", "yes" if ok else "no"))
    if a16:
        res.lines.append(Line("stream", "what --bf16 buys", text(a16), text(a),
                              fmt_ratio(ratio(get(a16, "fps"), fps)), "report", "-"))
    res.notes.append(f"stream: the clip is the first {FRAMES} test frames (raw, 420 x 580) and "
                     f"the checkpoint a width-32 network trained one epoch on {TRAIN} frames "
                     "(its weights do not change the speed); nerveseg's figures are its own "
                     "summary line (each frame from its last byte read to its mask flushed, "
                     "resize, standardising and enlarging included); PyTorch's are the forward "
                     "pass alone; onnxruntime's are the exported graph's whole run (resize, "
                     "standardising, network and mask rule), at the same number of threads")
    return res


class Tests(unittest.TestCase):
    def test_parse_report(self):
        line = ("stream: 200 frames of 420 x 580 in 4.68 s (42.8 frames/s); latency median "
                "22.4 ms, 99th percentile 33.6 ms\n")
        self.assertEqual(parse_report("warning: x\n" + line),
                         {"frames": 200, "fps": 42.8, "latency_median_ms": 22.4,
                          "latency_p99_ms": 33.6})
        self.assertIsNone(parse_report("nerveseg: error: something\n"))
