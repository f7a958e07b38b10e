"""DenseCRF: cost per image and what it does to real predictions.

Run: ``python -m tests.benchmarks.bench_crf [--quick]``. The fine-tuned benchmark model
(``common.bench_checkpoint``) predicts Weizmann test images (the last 80 sorted stems; the
demo without the dataset) resized to 500×500 and to 1280×960; DenseCRF refines the
probabilities at full resolution (the baseline) and downscaled (``max_side``). Reports median
ms per image and mean IoU / Boundary IoU before and after. Merged into results.json under "crf".
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import cv2
import numpy as np
import torch

from segcore.crf import CRFParams, crf_available, refine
from segcore.inference import Predictor
from segcore.metrics import score_mask
from tests.benchmarks.common import bench_checkpoint, median, record, report, weizmann_dir

SIZES = {"500x500": (500, 500), "1280x960": (960, 1280)}


def test_pairs(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from segcore.io import read_image, read_mask

    root = weizmann_dir()
    if root is not None:
        stems = sorted(p.stem for p in (root / "images").glob("*.jpg"))[-n:]
        return [(read_image(root / "images" / f"{s}.jpg"), read_mask(root / "masks" / f"{s}.png"))
                for s in stems]
    from segcore.demo import generate_demo_project, load_ground_truth
    from tests.benchmarks.common import OUT

    demo = generate_demo_project(OUT / "demo_crf", n_images=n, size=(240, 320), seed=7)
    return [(read_image(p), load_ground_truth(demo, p.stem)) for p in sorted(demo.glob("*.png"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="8 images instead of 40")
    args = parser.parse_args(argv)
    ok, why = crf_available()
    if not ok:
        print(f"bench_crf: DenseCRF unavailable here ({why}); skipped")
        return 0
    torch.set_num_threads(max(1, torch.get_num_threads()))
    predictor = Predictor(str(bench_checkpoint(quick=args.quick)))
    pairs = test_pairs(8 if args.quick else 40)
    # "full" must say max_side=None: CRFParams()'s default works at a long side of 320 px
    settings = {"none": None, "full": CRFParams(max_side=None), "max_side=320": CRFParams(max_side=320),
                "max_side=512": CRFParams(max_side=512)}
    rows, out = [], []
    for label, (h, w) in SIZES.items():
        scores = {k: ([], [], []) for k in settings}
        for image, mask in pairs:
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
            mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
            probs = predictor.predict(image).probs
            for name, params in settings.items():
                t0 = time.perf_counter()
                refined = probs if params is None else refine(image, probs, params)
                ms = (time.perf_counter() - t0) * 1000
                pred = refined.argmax(0).astype(np.uint8)
                scores[name][0].append(ms)
                score = score_mask(mask, pred, 2)
                scores[name][1].append(score.iou)
                scores[name][2].append(score.biou)
        full_ms = median(scores["full"][0])
        for name, (ms, iou, biou) in scores.items():
            m = median(ms)
            rows.append((label, name, m, (full_ms / m) if name != "none" else None,
                         float(np.mean(iou)), float(np.mean(biou))))
            out.append({"size": label, "crf": name, "median_ms": round(m, 2),
                        "iou": round(float(np.mean(iou)), 4), "biou": round(float(np.mean(biou)), 4),
                        "params": dataclasses.asdict(settings[name]) if settings[name] else None})
    report(f"DenseCRF on real predictions ({len(pairs)} images)",
           ["size", "CRF", "median ms", "full-res ms / this", "IoU", "BIoU"], rows)
    record("crf", {"images": len(pairs), "rows": out})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
