"""Numbers as the table prints them, medians, ratios, targets and the table itself.

The ratio column is always B / A of the times (memory: B's / A's), so above 1 means A,
nerveseg, is faster (or smaller)."""

import math
import statistics
import unittest


def median(values):
    return float(statistics.median(values)) if values else None


def fmt_s(seconds):
    """Seconds with about three significant digits: 0.0123 s, 0.812 s, 12.3 s, 123 s."""
    if seconds is None:
        return "-"
    if seconds < 0.1:
        return f"{seconds:.3g} s"
    if seconds < 1:
        return f"{seconds:.3f} s"
    if seconds < 100:
        return f"{seconds:.1f} s" if seconds >= 10 else f"{seconds:.2f} s"
    return f"{seconds:.0f} s"


def fmt_ratio(ratio):
    """B / A as '12.3x' (two decimals below 10, so 1.15x targets read well)."""
    if ratio is None or not math.isfinite(ratio):
        return "-"
    return f"{ratio:.1f}x" if ratio >= 10 else f"{ratio:.2f}x"


def fmt_mib(mib):
    return "-" if mib is None else f"{mib:,.0f} MiB"


def fmt_rate(images_per_s):
    return "-" if images_per_s is None else f"{images_per_s:,.1f} img/s"


def ratio(b, a):
    """Reference / nerveseg, or None when either is missing or A is zero."""
    if a is None or b is None or a == 0:
        return None
    return b / a


def met(value, target):
    """'yes'/'no' for a ratio against a minimum, '-' when there is nothing to judge."""
    if value is None or target is None:
        return "-"
    return "yes" if value >= target else "no"


class Line:
    """One line of the table: A beside B, their ratio, the target and whether it is met."""

    def __init__(self, row, measure, a, b, ratio="-", target="-", met="-"):
        self.cells = [row, measure, a, b, ratio, target, met]


HEADER = ["Row", "Measure", "A", "B", "B/A", "Target", "Met"]


def render_table(lines):
    """A Markdown table, padded so it also reads in a terminal."""
    rows = [HEADER] + [[str(c) for c in line.cells] for line in lines]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]

    def fmt(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    out = [fmt(rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [fmt(r) for r in rows[1:]]
    return "\n".join(out)


class Tests(unittest.TestCase):
    def test_formats(self):
        self.assertEqual(fmt_ratio(12.345), "12.3x")
        self.assertEqual(fmt_ratio(1.15), "1.15x")
        self.assertEqual(fmt_ratio(None), "-")
        self.assertEqual(fmt_s(0.8123), "0.812 s")
        self.assertEqual(fmt_s(0.5), "0.500 s")
        self.assertEqual(fmt_s(0.0394), "0.0394 s")
        self.assertEqual(fmt_s(2.345), "2.35 s")
        self.assertEqual(fmt_s(12.34), "12.3 s")
        self.assertEqual(fmt_s(1234.4), "1234 s")
        self.assertEqual(fmt_mib(1234.4), "1,234 MiB")
        self.assertEqual(fmt_rate(39.44), "39.4 img/s")

    def test_ratio_and_met(self):
        self.assertAlmostEqual(ratio(10.0, 2.0), 5.0)
        self.assertIsNone(ratio(1.0, 0.0))
        self.assertIsNone(ratio(None, 1.0))
        self.assertEqual(met(1.15, 1.15), "yes")
        self.assertEqual(met(1.149, 1.15), "no")
        self.assertEqual(met(None, 1.15), "-")

    def test_within_a_factor(self):
        # "within 1.3x of dd": dd's time over nerveseg's at least 1 / 1.3.
        self.assertEqual(met(10.0 / 12.9, 1 / 1.3), "yes")
        self.assertEqual(met(10.0 / 13.1, 1 / 1.3), "no")
        self.assertEqual(fmt_ratio(1 / 1.3), "0.77x")

    def test_table(self):
        t = render_table([Line("resize", "s", "nerveseg: 1.00 s", "preprocess.py: 50.0 s",
                               fmt_ratio(50.0), ">= 10x", met(50.0, 10))])
        rows = t.splitlines()
        self.assertEqual(len(rows), 3)
        self.assertTrue(rows[1].startswith("|--"))
        self.assertIn("| 50.0x |", rows[2])
        self.assertEqual(len({len(r) for r in rows}), 1)  # padded to one width
