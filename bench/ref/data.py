"""The original data.py: read the Kaggle TIFFs with scikit-image and write the .npy files.

Writes imgs_train.npy, imgs_mask_train.npy (uint8 (N, 420, 580)), imgs_test.npy
(uint8 (M, 420, 580)) and imgs_id_test.npy (int32 (M,)) into --out, like the tutorial
(preallocated arrays filled one image at a time). One change: the tutorial takes files
in os.listdir order; we sort naturally (subject, then image number; test by id), as
nerveseg does, so both write the same bytes. The sort costs nothing measurable.

Last stdout line: {"stage": "prepare", "train": N, "test": M, "seconds": S}, where S is
the whole job (listing, reading and saving).
"""

import argparse
import os
import re
import time

import numpy as np
from skimage.io import imread

from common import emit, log

IMAGE_ROWS = 420
IMAGE_COLS = 580
TRAIN_NAME = re.compile(r"^(\d+)_(\d+)\.tif$")
TEST_NAME = re.compile(r"^(\d+)\.tif$")


def train_names(train_dir):
    """Image file names (not masks) of train/, by subject then image number."""
    keyed = []
    for name in os.listdir(train_dir):
        m = TRAIN_NAME.match(name)
        if m:
            keyed.append(((int(m.group(1)), int(m.group(2))), name))
    return [name for _, name in sorted(keyed)]


def test_names(test_dir):
    """(id, file name) of test/, by id."""
    keyed = []
    for name in os.listdir(test_dir):
        m = TEST_NAME.match(name)
        if m:
            keyed.append((int(m.group(1)), name))
    return sorted(keyed)


def create_train_data(raw, out):
    train_dir = os.path.join(raw, "train")
    names = train_names(train_dir)
    total = len(names)
    imgs = np.ndarray((total, IMAGE_ROWS, IMAGE_COLS), dtype=np.uint8)
    imgs_mask = np.ndarray((total, IMAGE_ROWS, IMAGE_COLS), dtype=np.uint8)
    log(f"creating training images: {total}")
    for i, image_name in enumerate(names):
        mask_name = image_name.split(".")[0] + "_mask.tif"
        # as_gray (the tutorial's as_grey) leaves 2-D grayscale frames as they are.
        imgs[i] = imread(os.path.join(train_dir, image_name), as_gray=True)
        imgs_mask[i] = imread(os.path.join(train_dir, mask_name), as_gray=True)
        if (i + 1) % 1000 == 0:
            log(f"  done: {i + 1}/{total} images")
    np.save(os.path.join(out, "imgs_train.npy"), imgs)
    np.save(os.path.join(out, "imgs_mask_train.npy"), imgs_mask)
    return total


def create_test_data(raw, out):
    test_dir = os.path.join(raw, "test")
    entries = test_names(test_dir)
    total = len(entries)
    imgs = np.ndarray((total, IMAGE_ROWS, IMAGE_COLS), dtype=np.uint8)
    imgs_id = np.ndarray((total,), dtype=np.int32)
    log(f"creating test images: {total}")
    for i, (img_id, image_name) in enumerate(entries):
        imgs[i] = imread(os.path.join(test_dir, image_name), as_gray=True)
        imgs_id[i] = img_id
        if (i + 1) % 1000 == 0:
            log(f"  done: {i + 1}/{total} images")
    np.save(os.path.join(out, "imgs_test.npy"), imgs)
    np.save(os.path.join(out, "imgs_id_test.npy"), imgs_id)
    return total


def main():
    ap = argparse.ArgumentParser(
        description="The original data.py (scikit-image imread, np.save), naturally sorted."
    )
    ap.add_argument("--raw", required=True, metavar="DIR",
                    help="Kaggle layout: DIR/train/{subject}_{n}[_mask].tif, DIR/test/{id}.tif")
    ap.add_argument("--out", required=True, metavar="DIR",
                    help="folder for imgs_train.npy, imgs_mask_train.npy, imgs_test.npy, "
                         "imgs_id_test.npy (created if missing)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    n_train = create_train_data(args.raw, args.out)
    n_test = create_test_data(args.raw, args.out)
    seconds = time.perf_counter() - t0
    log(f"prepared {n_train} train and {n_test} test images in {seconds:.2f} s")
    emit({"stage": "prepare", "train": n_train, "test": n_test, "seconds": seconds})


if __name__ == "__main__":
    main()
