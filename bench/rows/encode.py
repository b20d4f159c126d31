"""encode: `nerveseg bench encode` beside the (corrected) submission.py, by the seconds
each reports for run-length encoding the masks; then `nerveseg submit` once and a check
that the two CSVs are identical."""

import os
import shlex

from lib.fmt import Line, fmt_ratio, fmt_s, ratio
from lib.inputs import no_bench_reason
from lib.runner import RowResult, RunFailed, Variant, log, med, cell, run_child, run_row

NEEDS = "pred"


def run(args, setup):
    N, R = args.nerveseg, args.python
    w = args.work
    sub_ref, sub_ns = os.path.join(w, "sub_ref.csv"), os.path.join(w, "sub_ns.csv")
    a = Variant("ns", "nerveseg", [N, "bench", "encode", "--masks", setup.pred96],
                unavailable=no_bench_reason(args))
    b = Variant("ref", "submission.py", [R, os.path.join(args.ref_dir, "submission.py"),
                                         "--predictions", setup.pred96, "--ids", setup.ids,
                                         "--out", sub_ref])
    submit = [N, "submit", "--masks", setup.pred96, "--ids", setup.ids, "--out", sub_ns]
    res = RowResult("encode")
    ran = run_row(res, [a, b], args, w)
    res.commands.append(("nerveseg submit (once, for the CSV check)", shlex.join(submit)))
    if not ran:
        return res
    sa, sb = med(a, lambda r: r.result["seconds"]), med(b, lambda r: r.result["seconds"])
    n = next((v.runs[0].result.get("masks") for v in (a, b) if v.ok), None)
    r_s = ratio(sb, sa)
    res.lines.append(Line("encode", f"in-process s ({n:,} masks)" if n else "in-process s",
                          cell(a, fmt_s(sa)), cell(b, fmt_s(sb)), fmt_ratio(r_s), "report", "-"))
    if b.ok:
        try:
            if os.path.exists(sub_ns):
                os.remove(sub_ns)
            run_child(submit, os.path.join(w, "logs", "encode.submit"), expect_json=False)
            same = compare_csv(sub_ns, sub_ref)
            res.notes.append("encode: submission CSVs identical: " + same)
            res.failed = res.failed or not same.startswith("yes")
        except RunFailed as e:
            res.failed = True
            res.notes.append(f"encode: nerveseg submit FAILED: {e.summary}")
            res.failures.append(("encode: nerveseg submit", e.detail))
            log(f"[encode] nerveseg submit FAILED: {e}")
    return res


def compare_csv(a, b):
    with open(a) as fa, open(b) as fb:
        la, lb = fa.read().splitlines(), fb.read().splitlines()
    if la == lb:
        return f"yes ({len(la) - 1:,} rows)"
    for i, (x, y) in enumerate(zip(la, lb)):
        if x != y:
            return f"no (first difference on line {i + 1}: {x[:60]!r} vs {y[:60]!r})"
    return f"no ({len(la)} vs {len(lb)} lines)"
