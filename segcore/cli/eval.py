"""``segloop-cli eval``: score a checkpoint against ground-truth masks (segcore.metrics.Evaluation)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import SegLoopError
from ..pairing import match_pairs
from .common import (INPUT_SIZE, CLIError, Progress, _err, _json_clean, _predictor, _reason, add_label_args,
                     add_pair_folders, command)


def add_parser(sub: Any) -> None:
    p = command(sub, "eval", "score a checkpoint against ground-truth masks",
                "Predict every image that has a mask and print PA, MPA, IoU per class, mIoU, FWIoU "
                "(summed confusion matrix over all images) and Boundary IoU (per-image mean; both "
                "masks empty counts as 1.0).")
    add_pair_folders(p, "ground-truth masks")
    p.add_argument("--checkpoint", required=True, help="checkpoint file (.pt)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--crf", nargs="?", const="on", default="off", choices=["auto", "on", "off"],
                   help="refine with DenseCRF before scoring: on, auto (the model's own decision), off (default)")
    add_label_args(p, "never scored", classes=None)
    p.add_argument("--input-size", type=INPUT_SIZE, default=None,
                   help="side of the square the model sees (default: the size it was trained at)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.set_defaults(func=_cmd_eval)


def evaluate_folder(images: Path, masks: Path, predictor: Any, progress: bool = True,
                    ignore_index: int | None = None) -> dict[str, Any]:
    """Data-set scores (segcore.metrics.Evaluation): PA, MPA, per-class IoU (``iou``), mIoU, FWIoU
    from the summed confusion matrix; Boundary IoU as the per-image mean (foreground BIoU for
    binary, mean over classes otherwise); per-class Boundary IoU (``class_biou``)."""
    import numpy as np
    from .. import metrics
    from ..io import read_image, read_mask
    pairs = match_pairs(images, masks)
    k = predictor.model.num_classes
    evaluation = metrics.Evaluation(k)
    present: set[int] = set()
    bar = Progress(len(pairs), "eval") if progress else None
    for i, (ipath, mpath, _) in enumerate(pairs, 1):
        gt = read_mask(mpath, k if k > 2 else None)  # the hint only where 255 must be void
        if ignore_index is not None:
            gt = np.where(gt == ignore_index, 255, gt).astype(np.uint8)
        classes = set(np.unique(gt).tolist()) - {255}
        if classes and max(classes) >= k:
            raise CLIError(f"{mpath}: the mask holds class {max(classes)} but the checkpoint "
                           f"predicts only {k} classes (0..{k - 1}); use a checkpoint trained on "
                           f"these classes")
        present |= classes
        pred = predictor.predict(read_image(ipath)).mask
        if gt.shape != pred.shape:
            raise ValueError(f"{mpath}: mask size {gt.shape} differs from its image {pred.shape}")
        evaluation.add(gt, pred, ipath.name)
        if bar:
            bar.update(i, ipath.name)
    if bar:
        bar.close()
    summary = evaluation.summary()
    scores = {key: summary[key] for key in ("pa", "mpa", "miou", "fwiou", "biou", "images")}
    scores["iou"], scores["class_biou"] = summary["class_iou"], summary["class_biou"]
    if k > 2 and present <= {0, 1}:
        print(f"warning: the checkpoint predicts {k} classes but every mask in {masks} holds only "
              f"classes 0 and 1 (binary data?): pixels it gives classes 2..{k - 1} count as errors",
              file=sys.stderr)
    return scores


def _cmd_eval(args: argparse.Namespace) -> int:
    try:
        scores = evaluate_folder(Path(args.images), Path(args.masks), _predictor(args), progress=not args.json,
                                 ignore_index=args.ignore_index)
    except (CLIError, SegLoopError, OSError, ValueError, RuntimeError) as exc:
        return _err("eval", _reason(exc) if isinstance(exc, OSError) else exc)
    if args.json:
        print(json.dumps(_json_clean(scores), indent=1))  # NaN (class absent everywhere) → null
        return 0
    print(f"images        {scores['images']}")
    for name in ("pa", "mpa", "miou", "fwiou", "biou"):
        label = {"pa": "PA", "mpa": "MPA", "miou": "mIoU", "fwiou": "FWIoU", "biou": "Boundary IoU"}[name]
        print(f"{label:<13} {scores[name]:.4f}")
    for c, (v, b) in enumerate(zip(scores["iou"], scores["class_biou"])):
        print(f"IoU class {c:<3} {v:.4f}   BIoU class {c:<3} {b:.4f}")
    return 0
