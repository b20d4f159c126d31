"""prepare: `nerveseg prepare` beside the tutorial's data.py (raw TIFFs -> four .npy
files), and beside dd writing as many bytes, which is what prepare costs at the least
where the disk is the bottleneck. Checks the two programs' files are byte-identical."""

import filecmp
import os
import shutil
import subprocess
import tempfile
import unittest

from lib.fmt import Line, fmt_mib, fmt_ratio, fmt_s, met, ratio
from lib.inputs import PREPARED
from lib.runner import RowResult, RunFailed, Variant, cell, clear_dir, med, run_row

NEEDS = "raw"
# nerveseg prepare may take at most 1.3x dd's time: dd's time / nerveseg's >= 1 / 1.3.
DD_FACTOR = 1.3


def npy_bytes(folder):
    """Total size of the four prepared .npy files in `folder`, None if one is missing."""
    try:
        return sum(os.path.getsize(os.path.join(folder, n)) for n in PREPARED)
    except OSError:
        return None


def dd_cmd(path, nbytes):
    """dd writing exactly `nbytes` zeros to `path` in 16 MiB blocks, without fsync
    (nerveseg prepare does not fsync either, as np.save does not)."""
    count = "BYTES" if nbytes is None else nbytes
    return ["dd", "if=/dev/zero", f"of={path}", "bs=16M", f"count={count}", "iflag=count_bytes"]


def read_through(folder):
    """Reads every file under `folder` once, so it sits in the page cache: returns the
    bytes read. dd's input (/dev/zero) costs nothing, so both programs start with their
    TIFFs in memory too, and the row compares decoding and writing, not this disk's
    reads (which the other variants' 4 GB outputs would otherwise push out of the cache
    between runs)."""
    n = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                while True:
                    b = f.read(1 << 20)
                    if not b:
                        break
                    n += len(b)
    return n


def warm_and_clear(raw, out):
    """A `before` hook: the TIFFs in the page cache, and an empty `out`."""
    clear = clear_dir(out)

    def before():
        read_through(raw)
        clear()
    return before


def run(args, setup):
    N, R, ref = args.nerveseg, args.python, args.ref_dir
    w = args.work
    out_a, out_b = os.path.join(w, "prep_ns"), os.path.join(w, "prep_ref")
    dd_file = os.path.join(w, "dd.bin")
    a = Variant("ns", "nerveseg", [N, "prepare", "--raw", setup.raw, "--out", out_a],
                expect_json=False, before=warm_and_clear(setup.raw, out_a))
    b = Variant("ref", "data.py", [R, os.path.join(ref, "data.py"), "--raw", setup.raw,
                                   "--out", out_b], before=warm_and_clear(setup.raw, out_b))
    dd = Variant("dd", "dd", dd_cmd(dd_file, npy_bytes(setup.prep)), expect_json=False)
    sized = []

    def size_dd():
        # As many bytes as nerveseg wrote in this rep (it runs first), else the cached
        # prepare's, which holds the same arrays.
        n = npy_bytes(out_a) or npy_bytes(setup.prep)
        if n is None:
            raise RunFailed(f"no .npy files of nerveseg prepare in {out_a} to size dd's write by")
        dd.cmd = dd_cmd(dd_file, n)
        sized.append(n)

    def remove_dd_file():
        try:
            os.remove(dd_file)
        except FileNotFoundError:
            pass

    dd.before, dd.after = size_dd, remove_dd_file
    res = RowResult("prepare")
    if not run_row(res, [a, b, dd], args, w, warmup=True):
        res.notes.append("prepare: dd writes as many bytes as nerveseg's four .npy files "
                         f"(counted in {out_a} at each run), without fsync")
        return res
    wa, wb, wd = (med(v, lambda r: r.wall) for v in (a, b, dd))
    ma, mb = med(a, lambda r: r.rss_mib), med(b, lambda r: r.rss_mib)
    r_wall, r_dd = ratio(wb, wa), ratio(wd, wa)
    res.lines.append(Line("prepare", "wall", cell(a, fmt_s(wa)), cell(b, fmt_s(wb)),
                          fmt_ratio(r_wall), "report", "-"))
    res.lines.append(Line("prepare", "wall vs dd writing the same bytes", cell(a, fmt_s(wa)),
                          cell(dd, fmt_s(wd)), fmt_ratio(r_dd),
                          f">= {1 / DD_FACTOR:.2f}x (within {DD_FACTOR}x of dd)",
                          met(r_dd, 1 / DD_FACTOR)))
    res.lines.append(Line("prepare", "peak RSS", cell(a, fmt_mib(ma)), cell(b, fmt_mib(mb)),
                          fmt_ratio(ratio(mb, ma)), "report", "-"))
    if sized:
        res.notes.append("prepare: before each run of nerveseg and of data.py the raw TIFFs are "
                         "read once, untimed, so that they start from the page cache as dd "
                         "does from /dev/zero (with the inputs cold, reading them from disk "
                         "adds to both programs' times).")
        res.notes.append(f"prepare: dd writes {sized[-1]:,} bytes (nerveseg's four .npy files) "
                         f"to {dd_file} in 16 MiB blocks without fsync, as nerveseg prepare "
                         "does not fsync (np.save neither); the file is deleted after each run.")
    if a.ok and b.ok:
        diff = [n for n in PREPARED
                if not (os.path.exists(os.path.join(out_a, n)) and os.path.exists(os.path.join(out_b, n))
                        and filecmp.cmp(os.path.join(out_a, n), os.path.join(out_b, n), shallow=False))]
        res.notes.append("prepare: outputs identical: " +
                         ("yes (all four .npy files byte for byte)" if not diff
                          else "no (" + ", ".join(diff) + " differ)"))
        if diff:
            res.failed = True
    remove_dd_file()
    if not args.keep_outputs:
        for d in (out_a, out_b):
            shutil.rmtree(d, ignore_errors=True)
    return res


class Tests(unittest.TestCase):
    def test_read_through_reads_every_file(self):
        d = tempfile.mkdtemp()
        os.makedirs(os.path.join(d, "train"))
        for name, size in (("train/1_1.tif", 3000), ("a.tif", (1 << 20) + 5)):
            with open(os.path.join(d, name), "wb") as f:
                f.write(b"y" * size)
        self.assertEqual(read_through(d), 3000 + (1 << 20) + 5)
        out = os.path.join(d, "out")
        os.makedirs(out)
        open(os.path.join(out, "old.npy"), "wb").close()
        warm_and_clear(d, out)()
        self.assertEqual(os.listdir(out), [])
        shutil.rmtree(d)

    def test_npy_bytes_and_dd(self):
        d = tempfile.mkdtemp()
        self.assertIsNone(npy_bytes(d))
        for i, n in enumerate(PREPARED):
            with open(os.path.join(d, n), "wb") as f:
                f.write(b"x" * (1000 + i))
        self.assertEqual(npy_bytes(d), 4006)
        out = os.path.join(d, "dd.bin")
        subprocess.run(dd_cmd(out, 2**24 + 4006), check=True, capture_output=True)
        self.assertEqual(os.path.getsize(out), 2**24 + 4006)  # exact, not whole blocks
        self.assertIn("count=BYTES", dd_cmd(out, None))
        shutil.rmtree(d)
