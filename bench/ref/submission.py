"""The original submission.py with its two bugs corrected: predicted masks -> Kaggle CSV.

Sort by id; for each 96 x 96 probability map: threshold at 0.5 (uint8 0/1), enlarge with
skimage.transform.resize(img, (420, 580), preserve_range=True), threshold the enlarged
mask at 0.5 (nerveseg's default; --above-zero keeps the original's "> 0"), write masks
with fewer than 10 pixels as empty, and run-length encode (1-based, column-major).

Corrected (as nerveseg does): the original resized to (580, 420), a transposed mask,
and read row 0 of each channels-last mask (imgs_test[i, 0]) instead of the mask.

Only the per-mask loop (threshold, resize, encode) is timed.
Last stdout line: {"stage": "encode", "masks": N, "seconds": S}.
"""

import argparse
import time
from itertools import chain

import numpy as np
from skimage.transform import resize

from common import emit, log

IMAGE_ROWS = 420
IMAGE_COLS = 580


def prep(img, above_zero):
    """96 x 96 probabilities -> full-size 0/1 mask."""
    img = img.astype("float32")
    img = (img > 0.5).astype(np.uint8)
    img = resize(img, (IMAGE_ROWS, IMAGE_COLS), preserve_range=True)
    return img > 0 if above_zero else img > 0.5


def run_length_enc(label):
    """Kaggle RLE: pixels numbered from 1 down each column; '' below 10 pixels."""
    x = label.transpose().flatten()
    y = np.where(x > 0)[0]
    if len(y) < 10:  # consider as empty
        return ""
    z = np.where(np.diff(y) > 1)[0]
    start = np.insert(y[z + 1], 0, y[0])
    end = np.append(y[z], y[-1])
    length = end - start
    res = [[s + 1, l + 1] for s, l in zip(list(start), list(length))]
    res = list(chain.from_iterable(res))
    return " ".join([str(r) for r in res])


def load(pred_path, ids_path):
    preds = np.load(pred_path)
    ids = np.load(ids_path)
    if preds.dtype != np.float32 or preds.ndim != 4 or preds.shape[1:] not in (
        (96, 96, 1), (1, 96, 96)
    ):
        raise SystemExit(f"{pred_path}: expected float32 (N, 96, 96, 1) or (N, 1, 96, 96), "
                         f"found {preds.dtype} {preds.shape}")
    if ids.dtype != np.int32 or ids.ndim != 1 or len(ids) != len(preds):
        raise SystemExit(f"{ids_path}: expected int32 ({len(preds)},), "
                         f"found {ids.dtype} {ids.shape}")
    return preds.reshape(len(preds), 96, 96), ids


def main():
    ap = argparse.ArgumentParser(
        description="The original submission.py, corrected: threshold, resize to "
                    "420 x 580, run-length encode, write the CSV."
    )
    ap.add_argument("--predictions", required=True, metavar="F",
                    help="float32 (N, 96, 96, 1) or (N, 1, 96, 96) probabilities")
    ap.add_argument("--ids", required=True, metavar="F", help="int32 (N,) test ids")
    ap.add_argument("--out", required=True, metavar="CSV", help="the submission to write")
    ap.add_argument("--above-zero", action="store_true",
                    help="keep every enlarged pixel above 0 (the original's dilation) "
                         "instead of thresholding at 0.5 again")
    args = ap.parse_args()

    imgs_test, imgs_id_test = load(args.predictions, args.ids)
    argsort = np.argsort(imgs_id_test, kind="stable")
    imgs_id_test = imgs_id_test[argsort]
    imgs_test = imgs_test[argsort]
    total = imgs_test.shape[0]
    log(f"encoding {total} masks")

    t0 = time.perf_counter()
    rles = []
    for i in range(total):
        rles.append(run_length_enc(prep(imgs_test[i], args.above_zero)))
    seconds = time.perf_counter() - t0
    log(f"encoded in {seconds:.2f} s; {sum(1 for r in rles if r)} non-empty")

    with open(args.out, "w") as f:
        f.write("img,pixels\n")
        for img_id, rle in zip(imgs_id_test, rles):
            f.write(f"{img_id},{rle}\n")
    emit({"stage": "encode", "masks": total, "seconds": seconds})


if __name__ == "__main__":
    main()
