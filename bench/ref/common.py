"""Small helpers shared by the reference scripts in bench/ref/.

The benchmark driver (bench/bench.py) runs each script as a subprocess and parses the
LAST line of stdout as one JSON object, so results go through `emit` and everything
else through `log` (stderr).
"""

import json
import statistics
import sys
import time

import numpy as np


def log(*parts):
    """Progress for humans: stderr, so stdout keeps only the JSON result."""
    print(*parts, file=sys.stderr, flush=True)


def emit(result):
    """Print the result as the last line of stdout (one JSON object)."""
    print(json.dumps(result), flush=True)


def median(values):
    return float(statistics.median(values))


def cycling_batch(k, batch_size, n):
    """Indices of batch k when batches are taken in file order and wrap around the
    n samples (so any n works with any batch size)."""
    start = (k * batch_size) % n
    return [(start + i) % n for i in range(batch_size)]


def timing_summary(stage, framework, batch_size, threads, device, key, seconds):
    """The JSON of the train-step and infer rows (same keys for every framework)."""
    m = median(seconds)
    return {
        "stage": stage,
        "framework": framework,
        "batch_size": batch_size,
        "threads": threads,
        "device": device,
        key: seconds,
        "median_s": m,
        "images_per_s": batch_size / m,
    }


def load_model_ready(path, what):
    """A model-ready float32 (N, 96, 96, 1) .npy array, or exit naming the file."""
    arr = np.load(path)
    if arr.dtype != np.float32 or arr.ndim != 4 or arr.shape[1:] != (96, 96, 1):
        raise SystemExit(f"{path}: expected float32 (N, 96, 96, 1) {what}, "
                         f"found {arr.dtype} {arr.shape}")
    return arr


def time_runs(warmup, runs, batch, run, unit):
    """Times run(batch(k)) for k in 0..warmup+runs (batch(k) is made before the clock
    starts); returns the seconds of the runs after the warm-up. `run` may return a text
    to log beside the time."""
    seconds = []
    for k in range(warmup + runs):
        inputs = batch(k)
        t0 = time.perf_counter()
        note = run(inputs)
        dt = time.perf_counter() - t0
        if k >= warmup:
            seconds.append(dt)
        log(f"{unit} {k + 1}/{warmup + runs}{' (warmup)' if k < warmup else ''}: "
            f"{dt:.4f} s{', ' + note if note else ''}")
    return seconds


def add_inputs(p, masks=True):
    """--images (and --masks): the model-ready arrays every network subcommand reads."""
    p.add_argument("--images", required=True, metavar="F",
                   help="float32 (N, 96, 96, 1) standardised images")
    if masks:
        p.add_argument("--masks", required=True, metavar="F",
                       help="float32 (N, 96, 96, 1) masks in [0, 1]")


def add_timing_subcommands(sub, add_common, train_step, infer, step_help, infer_help):
    """The train-step and infer subcommands, with the same flags in every reference."""
    p = sub.add_parser("train-step", help=step_help)
    add_inputs(p)
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (default: 2)")
    p.add_argument("--steps", type=int, default=10, help="timed steps (default: 10)")
    add_common(p)
    p.set_defaults(func=train_step)

    p = sub.add_parser("infer", help=infer_help)
    add_inputs(p, masks=False)
    p.add_argument("--warmup", type=int, default=1, help="untimed batches first (default: 1)")
    p.add_argument("--batches", type=int, default=10, help="timed batches (default: 10)")
    add_common(p)
    p.set_defaults(func=infer)
