"""The original train.py preprocessing: resize every image and mask to 96 x 96.

Each frame goes through skimage.transform.resize(img, (96, 96), preserve_range=True)
with today's defaults (bilinear, mode 'reflect', anti-aliasing) and is stored into a
uint8 (N, 96, 96) array, which truncates, exactly as the tutorial's preprocess().
Only the two resize loops (images, then masks) are timed.

Optionally writes the model-ready float32 (N, 96, 96, 1) arrays as train.py builds them:
images standardised with the mean and std of all preprocessed pixels (float32 NumPy
reductions, as in the tutorial), masks / 255. Writing them is not timed.

Last stdout line: {"stage": "resize", "images": N, "seconds": S}.
"""

import argparse
import time

import numpy as np
from skimage.transform import resize

from common import emit, log

IMG_ROWS = 96
IMG_COLS = 96


def preprocess(imgs):
    """The tutorial's preprocess(): uint8 (N, 96, 96, 1)."""
    imgs_p = np.ndarray((imgs.shape[0], IMG_ROWS, IMG_COLS), dtype=np.uint8)
    for i in range(imgs.shape[0]):
        imgs_p[i] = resize(imgs[i], (IMG_COLS, IMG_ROWS), preserve_range=True)
    return imgs_p[..., np.newaxis]


def load_frames(path, limit):
    arr = np.load(path, mmap_mode="r")
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[1:] != (420, 580):
        raise SystemExit(f"{path}: expected uint8 (N, 420, 580), found {arr.dtype} {arr.shape}")
    if limit is not None:
        arr = arr[:limit]
    return np.ascontiguousarray(arr)  # read fully before the clock starts


def main():
    ap = argparse.ArgumentParser(
        description="The tutorial's resize to 96 x 96 (skimage), timed; optionally "
                    "writes the standardised model inputs."
    )
    ap.add_argument("--images", required=True, metavar="F", help="uint8 (N, 420, 580) .npy")
    ap.add_argument("--masks", required=True, metavar="F", help="uint8 (N, 420, 580) .npy")
    ap.add_argument("--limit", type=int, metavar="N", help="only the first N images and masks")
    ap.add_argument("--save-images", metavar="F",
                    help="write float32 (N, 96, 96, 1) (x - mean) / std here (not timed)")
    ap.add_argument("--save-masks", metavar="F",
                    help="write float32 (N, 96, 96, 1) masks / 255 here (not timed)")
    args = ap.parse_args()

    imgs = load_frames(args.images, args.limit)
    masks = load_frames(args.masks, args.limit)
    if len(imgs) != len(masks):
        raise SystemExit(f"{len(imgs)} images but {len(masks)} masks")
    log(f"resizing {len(imgs)} images and {len(masks)} masks to 96 x 96")

    t0 = time.perf_counter()
    imgs_train = preprocess(imgs)
    imgs_mask_train = preprocess(masks)
    seconds = time.perf_counter() - t0
    log(f"resized in {seconds:.2f} s")

    if args.save_images:
        imgs_train = imgs_train.astype("float32")
        mean = np.mean(imgs_train)
        std = np.std(imgs_train)
        imgs_train -= mean
        imgs_train /= std
        log(f"mean {mean:.4f}, std {std:.4f}")
        np.save(args.save_images, imgs_train)
    if args.save_masks:
        imgs_mask_train = imgs_mask_train.astype("float32")
        imgs_mask_train /= 255.0
        np.save(args.save_masks, imgs_mask_train)

    emit({"stage": "resize", "images": len(imgs), "seconds": seconds})


if __name__ == "__main__":
    main()
