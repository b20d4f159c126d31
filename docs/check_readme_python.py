"""Runs every ```python block of the README verbatim, as a user would, in docs/.venv
(`make docs-test`), and checks what the TorchScript example computes against
`nerveseg predict` on the same frame. Also runs docs/usgra_dice.py, which the README
tells users to run, on the committed usgra-seg test frames.

    docs/.venv/bin/python docs/check_readme_python.py --nerveseg target/release/nerveseg

In a temporary folder it trains a tiny model (synthetic frames, one epoch), exports it
(model.pt and model.json; model.onnx for the frame's size) and copies a real usgra-seg
frame to frame.png: the files the README's examples open. Exit status 1 on any failure.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
FRAMES = ROOT / "tests/fixtures/frames/usgra"


def blocks(readme):
    """The README's ```python blocks, in order."""
    return re.findall(r"^```python\n(.*?)^```", readme.read_text(), re.S | re.M)


def run(ns, *args):
    subprocess.run([ns, *map(str, args)], check=True, stdout=subprocess.DEVNULL)


def setup(ns, work):
    """A tiny trained model exported beside a real frame, and nerveseg's own mask of it."""
    run(ns, "synth", "-q", "--subjects", "2", "--per-subject", "6", "--test", "0", "--out", work / "raw")
    run(ns, "prepare", "-q", "--raw", work / "raw", "--out", work, "--train-only")
    run(ns, "train", "-q", "--epochs", "1", "--base-width", "2", "--batch-size", "4", "--device", "cpu",
        "--images", work / "imgs_train.npy", "--masks", work / "imgs_mask_train.npy", "--out-dir", work / "w")
    run(ns, "export", "-q", "--torchscript", work / "model.pt", "--weights", work / "w/weights.h5")
    shutil.copy(FRAMES / "images/0000.png", work / "frame.png")
    h, w = np.asarray(Image.open(work / "frame.png")).shape[:2]
    run(ns, "export", "-q", "--onnx", work / "model.onnx", "--weights", work / "w/weights.h5",
        "--frame-size", f"{h}x{w}")
    run(ns, "predict", "-q", "--weights", work / "w/weights.h5", "--device", "cpu",
        "--images", work / "frame.png", "--out-dir", work / "pred")


def check_mask(ns_vars, work):
    """The example's `mask` against nerveseg's: the same shape, at most 0.1% of pixels
    apart (a tiny model's probabilities sit near the threshold, where float rounding
    between PyTorch and libtorch can flip a pixel)."""
    mask = np.asarray(ns_vars["mask"]) > 0  # bool, or 0/255
    ours = np.asarray(Image.open(work / "pred/frame_mask.png")) > 127
    assert mask.shape == ours.shape, f"mask {mask.shape}, nerveseg {ours.shape}"
    differ = int((mask != ours).sum())
    print(f"  mask: {mask.shape}, {int(mask.sum())} pixels set; {differ} differ from nerveseg predict")
    assert differ <= ours.size // 1000, f"{differ} of {ours.size} pixels differ"


def usgra_dice(ns, work):
    """docs/usgra_dice.py as the README runs it, on the committed test frames."""
    test = FRAMES / "test"
    run(ns, "predict", "-q", "--weights", work / "w/weights.h5", "--device", "cpu",
        "--images", test / "images", "--out-dir", work / "usgra")
    out = subprocess.run([sys.executable, ROOT / "docs/usgra_dice.py", test, work / "usgra"],
                         check=True, capture_output=True, text=True).stdout
    print("  usgra_dice.py:", out.strip().splitlines()[-1] if out.strip() else "(no output)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nerveseg", required=True, type=Path)
    ns = str(ap.parse_args().nerveseg.resolve())
    found = blocks(ROOT / "README.md")
    assert found, "no ```python block in README.md"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        setup(ns, work)
        here = os.getcwd()
        os.chdir(work)
        try:
            for k, code in enumerate(found, 1):
                print(f"README python block {k} ({len(code.splitlines())} lines)")
                ns_vars = {"__name__": "__readme__"}
                exec(compile(code, f"README.md python block {k}", "exec"), ns_vars)
                if "mask" in ns_vars:
                    check_mask(ns_vars, work)
        finally:
            os.chdir(here)
        usgra_dice(ns, work)
    print(f"ok: {len(found)} README python block(s) ran")


if __name__ == "__main__":
    main()
