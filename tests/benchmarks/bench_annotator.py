"""Simulated annotator on Weizmann Horse: held-out IoU / BIoU after k corrections, app defaults.

    python -m tests.benchmarks.bench_annotator [--quick] [--k 5,10,20,50,200] [--order attention,random]
                                               [--protocol session|independent]

Test = the last 80 sorted stems (never trained on). Protocol "session" (default, what a user
does): per order, one project starting from the ImageNet-initialised model; at each k the images
up to k are "corrected" by copying their ground truth and the app's one-click fine-tune runs
(segcore.loop.finetune with TrainConfig()'s defaults, from the previous click's model), then the
test images are re-predicted (segcore.simulate). "seconds" is that click's wall time to updated
predictions; "total train s" sums every click so far. Baseline in the same run: the untrained
ImageNet model (k = 0) and the random order at every k (attention should be >= random).
--quick: k = 20 in one click from the ImageNet model, random order only, with a 20 s budget
instead of the default (a smoke run of the whole path; its numbers are not the targets').
Results: results.json key "annotator" (rows dataset, k, order, iou, biou, iou_crf, biou_crf,
seconds, plus protocol, clicks, total_train_seconds) and a Markdown table.
Targets: k=20 → IoU >= 0.85, BIoU >= 0.55 in <= 60 s;
k=200 → IoU >= 0.90, BIoU >= 0.70.
"""

from __future__ import annotations

import argparse
import sys

import torch

from .common import machine, record, report, weizmann_dir

TARGETS = {20: (0.85, 0.55, 60.0), 200: (0.90, 0.70, None)}
HEADERS = ["k", "order", "IoU", "BIoU", "IoU+CRF", "BIoU+CRF", "seconds", "clicks", "total train s",
           "vs random IoU", "target"]
EXTRA = ("protocol", "clicks", "total_train_seconds")


def _target(row: dict) -> str:
    t = TARGETS.get(row["k"])
    if t is None:
        return ""
    ok = row["iou"] >= t[0] and row["biou"] >= t[1] and (t[2] is None or row["seconds"] <= t[2])
    return ("met" if ok else "missed") + f" (IoU {t[0]}, BIoU {t[1]}" + (f", {t[2]:.0f} s)" if t[2] else ")")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="k=20, random order only, 20 s budget")
    parser.add_argument("--k", default="5,10,20,50,200")
    parser.add_argument("--order", default="attention,random")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--protocol", choices=["session", "independent"], default="session")
    args = parser.parse_args(argv)
    root = weizmann_dir()
    if root is None:
        print("bench_annotator: SKIPPED — Weizmann Horse not found (../shared/datasets/weizmann_horse "
              "or $SEGLOOP_WEIZMANN); nothing recorded")
        return 0
    torch.set_num_threads(args.threads)
    from segcore.simulate import default_config, evaluate_test, make_predictor, matched_stems, simulate
    ks = [20] if args.quick else [int(k) for k in args.k.split(",")]
    orders = ["random"] if args.quick else args.order.split(",")
    config = default_config()
    if args.quick:
        from dataclasses import replace

        config = replace(config, time_budget_s=20.0)
    print(f"machine: {machine()}\nfine-tune defaults: {config.to_dict()}", flush=True)
    rows = simulate(root / "images", root / "masks", 80, ks, orders, config, dataset="weizmann_horse",
                    protocol=args.protocol,
                    on_message=lambda m: print(m, flush=True),
                    on_row=lambda r: print(f"  k={r['k']} {r['order']}: IoU {r['iou']:.3f} BIoU {r['biou']:.3f} "
                                           f"{r['seconds']:.0f} s", flush=True))
    # baseline measured in the same run: the untrained starting model (k = 0)
    from segcore import models
    found, mask_paths = matched_stems(root / "images", root / "masks")
    base = evaluate_test(make_predictor(models.build(config.arch, pretrained=True), config.input_size),
                         found, mask_paths, sorted(found)[-80:])
    rows.insert(0, {"dataset": "weizmann_horse", "k": 0, "order": "none", "iou": base["iou"], "biou": base["biou"],
                    "iou_crf": None, "biou_crf": None, "seconds": 0.0, "protocol": args.protocol, "clicks": 0,
                    "total_train_seconds": 0.0})
    random_iou = {r["k"]: r["iou"] for r in rows if r["order"] == "random"}
    table = []
    for r in rows:
        rel = r["iou"] / random_iou[r["k"]] if r["k"] in random_iou and random_iou[r["k"]] else None
        table.append([r["k"], r["order"], r["iou"], r["biou"], r["iou_crf"], r["biou_crf"], r["seconds"],
                      r["clicks"], r["total_train_seconds"], rel, _target(r)])
    record("annotator", [{k: r[k] for k in ("dataset", "k", "order", "iou", "biou", "iou_crf", "biou_crf",
                                            "seconds") + EXTRA} for r in rows])
    report(f"Simulated annotator (Weizmann, test = last 80, {machine()['cores']} cores, protocol "
           f"{args.protocol}, mode {config.mode}, tail {config.tail_blocks} blocks, budget "
           f"{config.time_budget_s} s per click + {config.budget_per_extra_image_s} s per image over "
           f"{config.budget_free_images})", HEADERS, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
