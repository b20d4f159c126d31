"""Mean per-image Dice of `nerveseg predict --images DIR --out-dir OUT` masks against
usgra-seg's palette masks (class 1 = nerve), at each frame's own size, and two overlays
(predicted outline red, true outline green) for the README.

    python docs/usgra_dice.py ../shared/data/usgra-seg/test OUT [docs/usgra_0004.png ...]

Needs numpy and Pillow: docs/.venv, made by `make py`.
"""
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def outline(m):
    inner = m.copy()
    inner[1:-1, 1:-1] = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    return m & ~inner


def main():
    test, out = Path(sys.argv[1]), Path(sys.argv[2])
    dice = {}
    for img in sorted((test / "images").glob("*.png")):
        truth = np.asarray(Image.open(test / "masks" / img.name)) == 1
        pred = np.asarray(Image.open(out / f"{img.stem}_mask.png")) > 127
        assert truth.shape == pred.shape, img.name
        inter, total = (truth & pred).sum(), truth.sum() + pred.sum()
        dice[img.name] = 1.0 if total == 0 else 2 * inter / total
    v = np.array(list(dice.values()))
    print(f"{len(v)} frame{'s' if len(v) != 1 else ''}: mean per-image Dice {v.mean():.4f} (median {np.median(v):.4f}, "
          f"{(v == 0).sum()} with Dice 0)")
    for target in sys.argv[3:]:
        name = Path(target).stem.split("_")[-1] + ".png"
        frame = np.asarray(Image.open(test / "images" / name).convert("RGB")).copy()
        truth = np.asarray(Image.open(test / "masks" / name)) == 1
        pred = np.asarray(Image.open(out / f"{Path(name).stem}_mask.png")) > 127
        for m, colour in ((truth, (40, 220, 40)), (pred, (240, 30, 30))):
            o = outline(m)
            o = o | np.roll(o, 1, 0) | np.roll(o, 1, 1)  # 2 px, still visible at half size
            frame[o] = colour
        small = Image.fromarray(frame).resize((frame.shape[1] // 2, frame.shape[0] // 2), Image.LANCZOS)
        small.save(target, optimize=True)
        print(f"{target}: {name} Dice {dice[name]:.3f}")


if __name__ == "__main__":
    main()
