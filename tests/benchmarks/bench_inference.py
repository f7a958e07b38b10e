"""Inference: plain eager torchvision-style forward vs SegLoop's optimised CPU path.

Run: ``python -m tests.benchmarks.bench_inference [--quick]``. Same fine-tuned weights
(``common.bench_checkpoint``), same inputs: a 480×480 image and a 1280×960 photo (Weizmann
test images resized, or demo images without the dataset). Reports median ms per forward of
each variant of ``segcore.models.optimize`` and the ratio eager / variant, plus the foreground
IoU between each variant's mask and eager's (must be ≥ 0.999). Last row per size: the app's
whole ``Predictor.predict`` (fused model at the trained input size, logits resized back, argmax),
timed end to end against the eager forward alone at full size, with its mask IoU against eager's
and both against the ground truth (it is a different resolution, so masks differ).
Merged into results.json under "inference".
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import torch

from segcore.inference import Predictor
from segcore.metrics import score_mask
from segcore.models.optimize import VARIANTS, make_runner
from segcore.versions import load_checkpoint
from tests.benchmarks.common import bench_checkpoint, median, record, report, time_ms, weizmann_dir

SIZES = {"480x480": (480, 480), "1280x960": (960, 1280)}


def test_images(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(RGB image, 0/1 ground truth) pairs: the last Weizmann test images, or demo images."""
    from segcore.io import read_image, read_mask

    root = weizmann_dir()
    if root is not None:
        paths = sorted((root / "images").glob("*.jpg"))[-n:]
        return [(read_image(p), (read_mask(root / "masks" / f"{p.stem}.png") > 0).astype(np.uint8))
                for p in paths]
    from segcore.demo import generate_demo_project
    from tests.benchmarks.common import OUT

    demo = generate_demo_project(OUT / "demo_inf", n_images=n, size=(240, 320), seed=5)
    return [(read_image(p), (read_mask(demo / "ground_truth" / p.name) > 0).astype(np.uint8))
            for p in sorted(demo.glob("*.png"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and images")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    repeat, n_img = (3, 2) if args.quick else (7, 4)
    model, _ = load_checkpoint(bench_checkpoint(quick=args.quick))
    pairs = test_images(n_img)
    rows, out = [], []
    for label, (h, w) in SIZES.items():
        batch, photos, gts = [], [], []
        for im, gt in pairs:
            x = cv2.resize(im, (w, h), interpolation=cv2.INTER_LINEAR)
            photos.append(x)
            gts.append(cv2.resize(gt, (w, h), interpolation=cv2.INTER_NEAREST))
            batch.append(Predictor(model, optimize=False)._to_tensor(x))
        results: dict[str, dict] = {}
        for variant in VARIANTS:
            run = make_runner(model, variant)
            with torch.inference_mode():
                masks = [(run(x)[0, 0] > 0).numpy() for x in batch]
                times = time_ms(lambda run=run, x=batch[0]: run(x), repeat=repeat, warmup=1)
            results[variant] = {"ms": median(times), "masks": masks}
        base = results["eager"]
        for variant in VARIANTS:
            r = results[variant]
            iou = min(score_mask(a, b, 2, None).iou for a, b in zip(base["masks"], r["masks"]))  # agreement
            ratio = base["ms"] / r["ms"]
            rows.append((label, variant, r["ms"], ratio, iou))
            out.append({"size": label, "variant": variant, "median_ms": round(r["ms"], 2),
                        "ratio_vs_eager": round(ratio, 3), "min_mask_iou_vs_eager": round(iou, 5)})
        # the app's whole path: Predictor.predict = fused model at the trained input size
        # (stretched), logits resized back, argmax — vs the eager forward alone at full size
        app = Predictor(model)
        with torch.inference_mode():
            masks = [app.predict(x).mask.astype(bool) for x in photos]
            times = time_ms(lambda app=app, x=photos[0]: app.predict(x), repeat=repeat, warmup=1)
        ms = median(times)
        iou = min(score_mask(a, b, 2, None).iou for a, b in zip(base["masks"], masks))
        gt_eager = float(np.mean([score_mask(g, m, 2).iou for g, m in zip(gts, base["masks"])]))
        gt_app = float(np.mean([score_mask(g, m, 2).iou for g, m in zip(gts, masks)]))
        variant = f"app predict() at {app.input_size}² (fused)"
        rows.append((label, variant, ms, base["ms"] / ms, iou))
        out.append({"size": label, "variant": "app_predict", "input_size": app.input_size,
                    "median_ms": round(ms, 2), "ratio_vs_eager": round(base["ms"] / ms, 3),
                    "min_mask_iou_vs_eager": round(iou, 5), "gt_iou_eager": round(gt_eager, 4),
                    "gt_iou_app": round(gt_app, 4)})
        print(f"{label}: ground-truth IoU, eager at full size {gt_eager:.4f} vs app predict() {gt_app:.4f} "
              f"(mean of {len(gts)} images)")
    report(f"Inference (CPU, {args.threads} threads, median of {repeat})",
           ["size", "variant", "median ms", "eager / variant", "min mask IoU vs eager"], rows)
    record("inference", {"threads": args.threads, "rows": out})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
