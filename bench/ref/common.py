"""Small helpers shared by the reference scripts in bench/ref/.

The benchmark driver (bench/bench.py) runs each script as a subprocess and parses the
LAST line of stdout as one JSON object, so results go through `emit` and everything
else through `log` (stderr).
"""

import json
import statistics
import sys


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
