"""Suite benchmark: the one-click loop on every development-suite dataset and hard variant.

    python -m tests.benchmarks.bench_suite run --label after [--datasets a,b] [--k 5,20,50]
                                              [--orders attention,random] [--ceiling-s 180]
                                              [--arch pspnet[,unet,...]] [--set micro_batch=2 ...]
    python -m tests.benchmarks.bench_suite report [--before before] [--after after]
    python -m tests.benchmarks.bench_suite zoo --label zoo      (the architectures table of a label)

``run`` drives segcore.simulate (the session protocol: one project, images "corrected" by
copying their ground truth in batches up to each k, the app's one-click fine-tune per k from
the previous click's model, the app's defaults) on each dataset in a fresh process, and
appends one JSON line per row to ``tests/benchmarks/out/suite/<label>.jsonl``. Test split =
the last N sorted stems, N = 20 % of the set, at most 80 (suite_data.test_count). With
``--ceiling-s`` it also runs the ceiling: one click on every pool image with that budget.
Running it with PYTHONPATH pointing at another checkout measures that code with the same
harness (how the "before" table is made; multi-class datasets need a simulate() that takes
``num_classes``, and are skipped otherwise).

``--arch`` runs the loop with that architecture from the registry (``segcore.models``; a
comma-separated list runs each in turn; default: the app's default); each row records its
``arch`` with the model's parameters and GFLOPs at 320² (``segcore.models.complexity``).

``--set NAME=VALUE`` (repeatable) overrides one TrainConfig field of the app's defaults for a
recipe experiment (a number, true/false or a word); each row records its ``overrides``. Give such
a run its own ``--label``: rows are keyed by dataset, k, order and arch, not by recipe.

``report`` prints and records (results.md / results.json key "suite") per dataset and k:
IoU (binary) or mIoU (multi-class), BIoU, the values with the project's CRF decision, seconds
per click, the ratio to the ceiling and to the "before" label; and a summary row of means.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from .suite_data import ALL, BY_NAME, dataset_dir, test_stems

RUNS = Path(__file__).resolve().parent / "out" / "suite_runs"


def _jsonl(label: str) -> Path:
    RUNS.mkdir(parents=True, exist_ok=True)
    return RUNS / f"{label}.jsonl"


def parse_overrides(items: list[str]) -> dict[str, object]:
    """``["micro_batch=2", "hflip=false"]`` → {"micro_batch": 2, "hflip": False}; a name that is
    not a TrainConfig field is an error (a typo must not measure the defaults under a new label)."""
    from dataclasses import fields

    from segcore.training.config import TrainConfig
    known = {f.name for f in fields(TrainConfig)}
    out: dict[str, object] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or name not in known:
            raise SystemExit(f"--set {item!r}: expected NAME=VALUE with NAME a TrainConfig field")
        low = raw.lower()
        value: object = True if low == "true" else False if low == "false" else raw
        if isinstance(value, str):
            try:
                value = int(raw)
            except ValueError:
                try:
                    value = float(raw)
                except ValueError:
                    pass
        out[name] = value
    return out


def run_one(name: str, label: str, ks: list[int], orders: list[str], ceiling_s: float | None,
            threads: int, arch: str = "", protocol: str = "session", default_crf: bool = True,
            overrides: dict[str, object] | None = None, seed: int = 0) -> int:
    import torch
    torch.set_num_threads(threads)
    import segcore
    from segcore import simulate as sim
    d = BY_NAME[name]
    root = dataset_dir(name)
    if root is None:
        print(f"{name}: suite not found; skipped")
        return 0
    kwargs: dict = {}
    params = inspect.signature(sim.simulate).parameters
    if "num_classes" in params:
        kwargs.update(num_classes=d.num_classes, ignore_index=d.ignore_index)
    elif not d.binary:
        print(f"{name}: this code's simulate() is binary only; skipped")
        return 0
    n = len(list((root / "masks").glob("*.png")))
    found = sim.matched_stems(root / "images", root / "masks")
    found = found[0] if isinstance(found, tuple) else found  # (images, masks) now; a dict before
    test = test_stems(name, list(found))
    test_last = len(test)
    split = "last sorted stems"
    if d.split_groups and "test_stems" in params:
        kwargs["test_stems"], split = test, "stratified by stem prefix"
    elif d.split_groups:
        print(f"{name}: this code's simulate() takes no test_stems; the split is the sorted one")
    if protocol != "session":
        kwargs["protocol"] = protocol
    if not default_crf and "default_crf" in params:
        kwargs["default_crf"] = False
    config = sim.default_config()
    if arch:
        config = replace(config, arch=arch)
    if overrides:
        config = replace(config, **overrides)  # type: ignore[arg-type]
        config.validate()
    try:
        from segcore.models.complexity import complexity
        cost = complexity(config.arch_for(d.num_classes), 320, d.num_classes)
        cost = {"params_m": cost["params_m"], "gflops": cost["gflops"]}
    except ImportError:  # older code measured with this harness
        cost = {}
    out = _jsonl(label)
    code = str(Path(segcore.__file__).resolve().parents[1])

    def emit(row: dict) -> None:
        row = {**row, "dataset": name, "label": label, "code": code, "test_last": test_last, "split": split,
               "arch": config.arch_for(d.num_classes), **cost, **({"overrides": overrides} if overrides else {}),
               **({"seed": seed} if seed else {}), "time": time.strftime("%Y-%m-%d %H:%M:%S")}
        with open(out, "a") as fh:
            fh.write(json.dumps(_clean(row)) + "\n")
        metric = row.get("miou", row.get("iou"))
        print(f"  {name} {row['arch']} k={row['k']} {row['order']}: {metric:.3f} BIoU {row['biou']:.3f} "
              f"{row['seconds']:.0f} s", flush=True)

    say = lambda m: print(f"  [{name}] {m}", flush=True)
    if ks:
        sim.simulate(root / "images", root / "masks", test_last, ks, orders, config, dataset=name,
                     on_row=emit, on_message=say, seed=seed, **kwargs)
    if ceiling_s:
        pool = n - test_last
        cfg = replace(config, time_budget_s=float(ceiling_s), budget_per_extra_image_s=0.0)
        rows = sim.simulate(root / "images", root / "masks", test_last, [pool], ["random"], cfg,
                            dataset=name, on_message=say, **kwargs)
        for r in rows:
            emit({**r, "order": "ceiling", "ceiling_s": ceiling_s})
    return 0


def _clean(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        if hasattr(v, "item"):
            v = v.item()
        if isinstance(v, float) and v != v:
            v = None
        out[k] = v
    return out


def cmd_run(args: argparse.Namespace) -> int:
    names = [d.name for d in ALL] if args.datasets == "all" else args.datasets.split(",")
    failed = []
    for arch in args.arch.split(",") if args.arch else [""]:
        for name in names:
            t0 = time.perf_counter()
            cmd = [sys.executable, "-m", "tests.benchmarks.bench_suite", "_one", name, "--label", args.label,
                   "--k", args.k, "--orders", args.orders, "--threads", str(args.threads)]
            if args.ceiling_s:
                cmd += ["--ceiling-s", str(args.ceiling_s)]
            if arch:
                cmd += ["--arch", arch]
            if args.protocol != "session":
                cmd += ["--protocol", args.protocol]
            if args.no_default_crf:
                cmd += ["--no-default-crf"]
            for item in args.set:
                cmd += ["--set", item]
            if args.seed:
                cmd += ["--seed", str(args.seed)]
            what = f"{name} {arch}".strip()
            print(f"=== {what} ({args.label}) ===", flush=True)
            rc = subprocess.call(cmd, env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
            print(f"=== {what}: exit {rc}, {time.perf_counter() - t0:.0f} s ===", flush=True)
            if rc:
                failed.append(what)
    return 1 if failed else 0


def _load(label: str) -> list[dict]:
    p = _jsonl(label)
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.exists() else []


def _metric(r: dict, crf: bool = False) -> float | None:
    """IoU (binary) or the test set's mIoU over its classes (minus the dataset's excluded ones);
    ``crf``: with the project's CRF decision (per-image mean for multi-class)."""
    if crf:
        return r.get("project_iou")
    per_class = r.get("per_class_iou")
    if per_class:
        skip = set(BY_NAME[r["dataset"]].exclude_classes) if r["dataset"] in BY_NAME else set()
        vals = [v for c, v in enumerate(per_class) if v is not None and c not in skip]
        return sum(vals) / len(vals) if vals else None
    return r.get("iou")


def _worst(r: dict, n: int = 3) -> str:
    per_class = r.get("per_class_iou")
    if not per_class:
        return ""
    skip = set(BY_NAME[r["dataset"]].exclude_classes) if r["dataset"] in BY_NAME else set()
    vals = sorted((v, c) for c, v in enumerate(per_class) if v is not None and c not in skip)
    return ", ".join(f"{c}: {v:.2f}" for v, c in vals[:n])


def cmd_report(args: argparse.Namespace) -> int:
    from .common import record, report
    after, before = _load(args.after), _load(args.before)
    # rows of several architectures in one label are kept apart (rows without "arch" are older)
    latest = lambda rows: {(r["dataset"], r["k"], r["order"], r.get("arch", "")): r for r in rows}
    new, old = latest(after), latest(before)
    ceil = {(d, a): r for (d, k, o, a), r in new.items() if o == "ceiling"}
    ceil_b = {d: r for (d, k, o, a), r in old.items() if o == "ceiling"}
    before_any = {(d, k, o): r for (d, k, o, a), r in old.items()}
    headers = ["dataset", "arch", "k", "order", "IoU/mIoU", "BIoU", "with project CRF", "CRF decision", "s/click",
               "/ceiling", "before", "after/before", "params M", "GFLOPs 320²", "preset", "worst classes"]
    rows, summary = [], {}
    order_of = [a.name for a in ALL]
    for (d, k, o, a), r in sorted(new.items(), key=lambda x: (order_of.index(x[0][0]), x[0][3], x[0][2], x[0][1])):
        if o == "ceiling":
            continue
        m = _metric(r)
        c = ceil.get((d, a))
        b = old.get((d, k, o, a)) or before_any.get((d, k, o))
        mb = _metric(b) if b else None
        rows.append([d, a, k, o, m, r.get("mbiou", r.get("biou")), _metric(r, crf=True), r.get("crf_decision", ""),
                     r.get("seconds"), (m / _metric(c)) if c and _metric(c) else None, mb,
                     (m / mb) if mb else None, r.get("params_m"), r.get("gflops"), r.get("preset", ""), _worst(r)])
        summary.setdefault((a, k, o), []).append((m, mb))
    for (a, k, o), vals in sorted(summary.items()):
        ms = [v[0] for v in vals if v[0] is not None]
        pairs = [(v[0], v[1]) for v in vals if v[0] is not None and v[1] is not None]
        rows.append(["**mean**", a, k, o, sum(ms) / len(ms) if ms else None, None, None, "", None, None,
                     sum(p[1] for p in pairs) / len(pairs) if pairs else None,
                     (sum(p[0] for p in pairs) / sum(p[1] for p in pairs)) if pairs else None, None, None, "", ""])
    crows = [[d, a, _metric(r), r.get("biou"), r.get("seconds"), _metric(ceil_b[d]) if d in ceil_b else None]
             for (d, a), r in ceil.items()]
    record(f"suite_{args.after}" if args.title else "suite", {"after": after, "before": before})
    if rows or not crows:  # a ceiling-only label has no per-k rows: no empty table
        report(args.title or "Suite: one-click loop on every dataset (session protocol, test = last 20 %, <= 80)",
               headers, rows)
    if crows:
        # a titled (partial) report's ceilings get their own section too, so they never replace
        # the full suite's ceilings table
        report(f"{args.title}: ceilings" if args.title else "Suite ceilings (one click on every pool image, long budget)",
               ["dataset", "arch", "IoU/mIoU", "BIoU", "seconds", "before ceiling"], crows)
    return 0


def cmd_zoo(args: argparse.Namespace) -> int:
    """One table for the architectures of a label: per (arch, dataset) each k's IoU / mIoU,
    BIoU, seconds per click and test inference ms per image; then each arch's mean over the
    datasets it has every k on, best first (the rule the app's default is chosen by)."""
    from .common import record, report
    rows = [r for r in _load(args.label) if r.get("order") != "ceiling"]
    ks = sorted({int(r["k"]) for r in rows})
    cell = {(r.get("arch", ""), r["dataset"], int(r["k"])): r for r in rows}
    archs = list(dict.fromkeys(r.get("arch", "") for r in rows))
    order_of = [a.name for a in ALL]
    datasets = sorted({r["dataset"] for r in rows}, key=order_of.index)
    headers = ["arch", "dataset", "params M", "GFLOPs 320²"]
    for k in ks:
        headers += [f"k={k} IoU/mIoU", f"k={k} BIoU", f"k={k} s/click"]
    headers += [f"infer ms/img (k={ks[0]})" if ks else "infer ms/img"]
    table, means = [], {}
    for a in archs:
        for d in datasets:
            got = [cell.get((a, d, k)) for k in ks]
            if not any(got):
                continue
            any_row = next(r for r in got if r)
            line = [a, d, any_row.get("params_m"), any_row.get("gflops")]
            for r in got:
                line += [_metric(r), r.get("mbiou", r.get("biou")), r.get("seconds")] if r else [None] * 3
            n_test = any_row.get("test_last") or 0
            line.append(1000.0 * any_row["predict_seconds"] / n_test if n_test and any_row.get("predict_seconds")
                        else None)
            table.append(line)
            if all(got):
                means.setdefault(a, {})[d] = [_metric(r) for r in got]
    full = [d for d in datasets if all(d in per for per in means.values())]
    summary = []
    for a, per in means.items():
        if not full or not all(d in per for d in full):
            continue
        cols = [sum(per[d][i] or 0.0 for d in full) / len(full) for i in range(len(ks))]
        summary.append([a, ", ".join(full), *cols])
    summary.sort(key=lambda r: -r[-1])
    record("zoo", {"label": args.label, "rows": rows})
    report(f"Zoo: one click per k from the ImageNet model, random order ({args.label})", headers, table)
    if summary:
        report(f"Zoo: mean over the datasets every architecture has ({args.label})",
               ["arch", "datasets", *[f"k={k} mean IoU/mIoU" for k in ks]], summary)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("run", "_one"):
        p = sub.add_parser(name)
        if name == "_one":
            p.add_argument("dataset")
        else:
            p.add_argument("--datasets", default="all")
        p.add_argument("--label", default="after")
        p.add_argument("--k", default="5,20,50")
        p.add_argument("--orders", default="attention")
        p.add_argument("--ceiling-s", type=float, default=None)
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--arch", default="", help="registered architecture(s), comma-separated "
                                                    "(default: the app's default)")
        p.add_argument("--protocol", default="session", choices=("session", "independent"),
                       help="session: one project, a click per k from the previous click's model; "
                            "independent: each k a fresh project and one click from the ImageNet model")
        p.add_argument("--no-default-crf", action="store_true",
                       help="skip the default-parameter CRF columns (the project's CRF decision is "
                            "still applied); saves a CRF pass over the test images per click")
        p.add_argument("--seed", type=int, default=0,
                       help="seed of the random order's permutation of the pool (rows carry it)")
        p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                       help="override a TrainConfig field of the app's defaults (repeatable)")
    p = sub.add_parser("report")
    p.add_argument("--before", default="before")
    p.add_argument("--after", default="after")
    p.add_argument("--title", default="", help="results.md section (default: the full suite's); a "
                                                "partial run gets its own so it never replaces the full table")
    p = sub.add_parser("zoo", help="the architectures' table of one label")
    p.add_argument("--label", default="zoo")
    args = parser.parse_args(argv)
    if args.cmd == "run":
        parse_overrides(args.set)  # a bad name fails before the first dataset, not in each child
        return cmd_run(args)
    if args.cmd == "_one":
        return run_one(args.dataset, args.label, [int(k) for k in args.k.split(",")] if args.k else [],
                       args.orders.split(","), args.ceiling_s, args.threads, args.arch, args.protocol,
                       not args.no_default_crf, parse_overrides(args.set), args.seed)
    if args.cmd == "zoo":
        return cmd_zoo(args)
    return cmd_report(args)


if __name__ == "__main__":
    raise SystemExit(main())
