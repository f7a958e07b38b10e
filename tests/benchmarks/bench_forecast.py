"""Check the effort forecast (segcore.forecast) against the simulated annotator on the suite.

    python -m tests.benchmarks.bench_forecast run [--label forecast] [--datasets a,b]
    python -m tests.benchmarks.bench_forecast report [--label forecast]

``run`` drives the suite harness (tests/benchmarks/bench_suite.py: the session protocol of
segcore.simulate, the app's one-click defaults, needs-attention order) with clicks at
k = 5, 10, 15, 20 and 50, rows into ``out/suite_runs/<label>.jsonl``, then reports.
``report`` fits the learning curve on the versions up to k = 20 (n = n_train) and predicts the
IoU at the n_train of the k = 50 click, two ways:

* test curve: each click's test-set IoU with the project's CRF decision (``project_iou``; the
  bootstrap over its per-image scores), compared with the measured k = 50 ``project_iou``;
* held-out curve (what the app's Training dock is fitted on): each version's own held-out IoU
  (``held_out_iou``, bootstrap over ``held_out_scores``), compared with the k = 50 version's
  held-out IoU and with its test-set IoU.

Per dataset: forecast (10th–90th percentile range), measured, error; and the mean absolute
error. Also the Training dock's own sentence at k = 20 with the IoU the k = 50 click reached as
its target ("≈ N more images", range) against the images actually added (n@50 − n@20). The
table goes to results.md / results.json (key "forecast").
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any

from segcore.forecast import forecast, predict_iou

from .bench_suite import _load

DATASETS = "weizmann_horse,pennfudan_ped,ph2_skin_lesion,dsb2018_nuclei,msrc_v2"
KS = "5,10,15,20,50"
FIT_UP_TO = 20
CHECK_AT = 50


def _points(rows: list[dict], key: str, scores_key: str) -> list[tuple]:
    return [(r["n_train"], r[key], [v for v in (r.get(scores_key) or {}).values() if v is not None])
            for r in rows if r.get(key) is not None and r.get("n_train")]


def evaluate(rows: list[dict]) -> list[dict[str, Any]]:
    """One result per dataset with rows up to k = FIT_UP_TO (>= 3) and a k = CHECK_AT row."""
    latest: dict[tuple[str, int], dict] = {}
    for r in rows:
        if r.get("order") == "attention":
            latest[(r["dataset"], int(r["k"]))] = r
    out = []
    for name in dict.fromkeys(d for d, _ in latest):
        fit = [latest[(name, k)] for k in sorted(k for d, k in latest if d == name and k <= FIT_UP_TO)]
        check = latest.get((name, CHECK_AT))
        if check is None or len(fit) < 3:
            continue
        n = check["n_train"]
        res: dict[str, Any] = {"dataset": name, "ks": [r["k"] for r in fit], "n_fit": [r["n_train"] for r in fit],
                               "n_check": n, "test_at_20": fit[-1].get("project_iou"),
                               "measured_test": check.get("project_iou"),
                               "measured_held_out": check.get("held_out_iou")}
        for tag, key, scores in (("test", "project_iou", "project_scores"),
                                 ("held_out", "held_out_iou", "held_out_scores")):
            points = _points(fit, key, scores)
            res[f"{tag}_forecast"] = predict_iou(points, n)
            # the dock's sentence at k = 20 for the IoU the k = 50 click reached on that curve
            measured = check.get(key)
            f = forecast(points, measured) if measured is not None else None
            res[f"{tag}_images"] = None if f is None else {"status": f.status, "more": f.more, "low": f.low,
                                                            "high": f.high, "message": f.message}
        res["actual_more"] = n - fit[-1]["n_train"]
        out.append(res)
    return out


def _err(pred: tuple | None, measured: float | None) -> float | None:
    return None if pred is None or measured is None else pred[0] - measured


def _images(f: dict | None) -> str:
    if f is None:
        return ""
    if f["status"] != "ok":
        return f["status"]
    high = "never" if f["high"] is None else f["high"]
    return f"{f['more']} ({'?' if f['low'] is None else f['low']}–{high})"


def _range(pred: tuple | None) -> str:
    return "" if pred is None else f"{pred[0]:.3f} ({pred[1]:.2f}–{pred[2]:.2f})"


def cmd_report(label: str, commit: str = "") -> int:
    from .common import record, report
    results = evaluate(_load(label))
    if not results:
        print(f"no dataset in {label} has clicks at k <= {FIT_UP_TO} (3+) and k = {CHECK_AT}")
        return 1
    rows, errs = [], {"t": [], "h": [], "ht": []}
    for r in results:
        t, h = r["test_forecast"], r["held_out_forecast"]
        e_t, e_h, e_ht = (_err(t, r["measured_test"]), _err(h, r["measured_held_out"]),
                          _err(h, r["measured_test"]))
        for key, e in (("t", e_t), ("h", e_h), ("ht", e_ht)):
            if e is not None:
                errs[key].append(abs(e))
        rows.append([r["dataset"], "/".join(map(str, r["n_fit"])) + f" → {r['n_check']}", r["test_at_20"],
                     _range(t), r["measured_test"], e_t, _images(r.get("test_images")), r.get("actual_more"),
                     _range(h), r["measured_held_out"], e_h, e_ht, _images(r.get("held_out_images"))])
    mae = lambda xs: sum(xs) / len(xs) if xs else None
    rows.append(["**mean absolute error**", "", None, "", None, mae(errs["t"]), "", None, "", None,
                 mae(errs["h"]), mae(errs["ht"]), ""])
    commit = commit or subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                      text=True).stdout.strip()
    when = min((x.get("time", "") for x in _load(label)), default="")[:10] or time.strftime("%Y-%m-%d")
    headers = ["dataset", "n trained (k=5..20 → k=50)", "test IoU @20", "test-curve forecast @50 (range)",
               "measured test @50", "error", "images forecast for it (range)", "actual",
               "held-out-curve forecast @50 (range)", "measured held-out @50", "error", "error vs test @50",
               "images forecast for it (held-out curve)"]
    record("forecast", {"label": label, "results": results})
    report(f"Effort forecast: fitted at k = 5–20, checked at k = 50 ({when}, commit {commit}, "
           f"session protocol, attention order, app defaults; msrc_v2: per-image mIoU)", headers, rows)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    cmd = [sys.executable, "-m", "tests.benchmarks.bench_suite", "run", "--label", args.label,
           "--datasets", args.datasets, "--k", KS, "--orders", "attention"]
    rc = subprocess.call(cmd, env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    return cmd_report(args.label) or rc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run")
    p.add_argument("--label", default="forecast")
    p.add_argument("--datasets", default=DATASETS)
    p = sub.add_parser("report")
    p.add_argument("--label", default="forecast")
    p.add_argument("--commit", default="", help="the measured code's commit (default: HEAD)")
    args = parser.parse_args(argv)
    return cmd_run(args) if args.cmd == "run" else cmd_report(args.label, args.commit)


if __name__ == "__main__":
    raise SystemExit(main())
