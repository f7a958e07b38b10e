"""Fine-tuning quality vs. mode and wall time on Weizmann Horse (issue 3's measurement).

    python -m tests.benchmarks.bench_train [--quick] [--n 20,200] [--modes fast,full,fast+full] [--budget 60]

deeplabv3_mobilenet_v2 from ImageNet, trained with segcore.training.Trainer on the first n sorted
stems of the pool (all of them, no held-out split), scored on the last 80 sorted stems (never
trained on) with the stretch policy the app uses. Baseline in the same run: the untrained model.
Results: results.json key "train" (rows n, mode, budget_s, iou, biou, seconds).
--quick: n = 20, fast mode only.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

import torch

from .common import machine, record, report, weizmann_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n", default="20,200")
    parser.add_argument("--modes", default="fast,full,fast+full")
    parser.add_argument("--budget", type=float, default=None, help="seconds (default: TrainConfig's)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    root = weizmann_dir()
    if root is None:
        print("bench_train: SKIPPED — Weizmann Horse not found; nothing recorded")
        return 0
    torch.set_num_threads(args.threads)
    from segcore import models
    from segcore.simulate import default_config, evaluate_test, make_predictor, matched_stems
    from segcore.training import Trainer
    found, mask_paths = matched_stems(root / "images", root / "masks")
    stems = sorted(found)
    test, pool = stems[-80:], stems[:-80]
    ns = [20] if args.quick else [int(n) for n in args.n.split(",")]
    modes = ["fast"] if args.quick else args.modes.split(",")
    base_cfg = default_config()
    if args.budget is not None:
        base_cfg = replace(base_cfg, time_budget_s=args.budget)
    cache: dict = {}
    start = evaluate_test(make_predictor(models.build(base_cfg.arch_for(2), pretrained=True), base_cfg.input_size),
                          found, mask_paths, test, cache=cache)
    rows = [{"n": 0, "mode": "untrained", "budget_s": 0.0, "iou": start["iou"], "biou": start["biou"], "seconds": 0.0}]
    for n in ns:
        pairs = [(found[s], mask_paths[s], s) for s in pool[:n]]
        for mode in modes:
            cfg = replace(base_cfg, mode=mode)
            t0 = time.perf_counter()
            result = Trainer(models.build(cfg.arch_for(2), pretrained=True), cfg).fit(pairs, [])
            seconds = time.perf_counter() - t0
            s = evaluate_test(make_predictor(result.model, cfg.input_size), found, mask_paths, test, cache=cache)
            rows.append({"n": n, "mode": mode, "budget_s": cfg.time_budget_s, "iou": s["iou"], "biou": s["biou"],
                         "seconds": seconds})
            print(rows[-1], flush=True)
    record("train", rows)
    report(f"Fine-tuning deeplabv3_mobilenet_v2 (Weizmann, test = last 80, {machine()['cores']} cores)",
           ["n", "mode", "budget s", "IoU", "BIoU", "seconds", "IoU gain vs untrained"],
           [[r["n"], r["mode"], r["budget_s"], r["iou"], r["biou"], r["seconds"], r["iou"] - start["iou"]]
            for r in rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
