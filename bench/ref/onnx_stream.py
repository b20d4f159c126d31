"""The graph of `nerveseg export --onnx` in onnxruntime, one frame at a time (batch 1), as
a live stream runs it: raw uint8 frames in, masks and probabilities out, the resize,
standardising and mask rule inside the graph (the same work as `nerveseg stream`). Per-frame
latency over --frames frames of the raw clip, cycling; frames/s over the whole loop. One
JSON line on stdout, as the other references print."""

import argparse
import math
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import emit  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True, help="model.onnx from nerveseg export --onnx")
    ap.add_argument("--clip", required=True, help="raw uint8 frames, one after another")
    ap.add_argument("--frame-size", required=True, help="HxW of the frames")
    ap.add_argument("--frames", type=int, default=300, help="timed frames (default: 300)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed frames first (default: 10)")
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads (default: 2)")
    args = ap.parse_args()
    import onnxruntime as ort

    h, w = (int(v) for v in args.frame_size.lower().split("x"))
    clip = np.fromfile(args.clip, dtype=np.uint8)
    clip = clip[: len(clip) // (h * w) * h * w].reshape(-1, h, w)
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    session = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    latencies = []
    for k in range(args.warmup + args.frames):
        frame = clip[k % len(clip)][None]
        t0 = time.perf_counter()
        session.run(None, {"frames": frame})
        if k >= args.warmup:
            latencies.append(time.perf_counter() - t0)
    lat = sorted(latencies)
    p99 = lat[max(0, math.ceil(0.99 * len(lat)) - 1)]
    emit({"stage": "stream", "framework": "onnxruntime", "version": ort.__version__,
          "threads": args.threads, "frames": len(lat), "fps": len(lat) / sum(lat),
          "latency_median_ms": 1e3 * float(statistics.median(lat)), "latency_p99_ms": 1e3 * p99})


if __name__ == "__main__":
    main()
