"""resize: `nerveseg bench resize` beside the tutorial's preprocess (skimage resize of
every training image and mask to 96 x 96), by the seconds each reports for the resizing."""

import os

from lib.fmt import Line, fmt_ratio, fmt_s, met, ratio
from lib.inputs import no_bench_reason
from lib.runner import RowResult, Variant, cell, med, run_row

NEEDS = "prep"


def run(args, setup):
    N, R = args.nerveseg, args.python
    common = ["--images", setup.img_train, "--masks", setup.mask_train]
    a = Variant("ns", "nerveseg", [N, "bench", "resize"] + common,
                unavailable=no_bench_reason(args))
    b = Variant("ref", "preprocess.py", [R, os.path.join(args.ref_dir, "preprocess.py")] + common)
    res = RowResult("resize")
    if not run_row(res, [a, b], args, args.work):
        return res
    sa, sb = med(a, lambda r: r.result["seconds"]), med(b, lambda r: r.result["seconds"])
    n = None
    for v in (a, b):
        if v.ok:
            n = v.runs[0].result.get("images")
            break
    r_s = ratio(sb, sa)
    what = f"in-process s ({n:,} images + masks)" if n else "in-process s"
    res.lines.append(Line("resize", what, cell(a, fmt_s(sa)), cell(b, fmt_s(sb)),
                          fmt_ratio(r_s), ">= 10x", met(r_s, 10)))
    wa, wb = med(a, lambda r: r.wall), med(b, lambda r: r.wall)
    res.lines.append(Line("resize", "wall (incl. start-up, loading)", cell(a, fmt_s(wa)),
                          cell(b, fmt_s(wb)), fmt_ratio(ratio(wb, wa)), "report", "-"))
    return res
