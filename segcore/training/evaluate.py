"""Held-out evaluation as the Trainer does it: per-image mean IoU / Boundary IoU at full label size.

Binary models: foreground IoU and Boundary IoU (segcore.metrics). Multi-class: per-image mIoU
(classes absent from both masks skipped) and mean per-class Boundary IoU. Mask value 255 = ignore.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .data import IGNORE, ValPair, normalize, prepare_val_pairs


def _score(gt: np.ndarray, pred: np.ndarray, num_classes: int) -> tuple[float, float]:
    """Per-image (IoU, Boundary IoU): foreground for binary, class means for multi-class."""
    from .. import metrics
    if num_classes == 2:
        g = np.where(gt == IGNORE, pred, gt)  # ignored pixels count as agreeing
        return metrics.foreground_iou(g, pred), metrics.boundary_iou(g, pred)
    scores = metrics.segmentation_scores(gt, pred, num_classes, ignore_index=IGNORE)
    g = np.where(gt == IGNORE, pred, gt)
    return float(scores["miou"]), float(metrics.mean_boundary_iou(g, pred, num_classes))


@torch.no_grad()
def evaluate_prepared(model: nn.Module, val: list[ValPair], device: torch.device | str = "cpu",
                      features: list[dict[str, torch.Tensor]] | None = None,
                      tail_blocks: int = 0) -> tuple[float | None, float | None]:
    """Per-image mean (IoU, Boundary IoU) at full label resolution; (None, None) without pairs.

    ``features``: cached encoder features of each pair (fast mode: ``model.cached_features`` with
    ``tail_blocks``) instead of running the encoder.
    """
    if not val:
        return None, None
    device = torch.device(device)
    was_training = model.training
    model.eval()
    ious, bious = [], []
    for i, pair in enumerate(val):
        if features is not None:
            feats = {k: v.to(device).float().unsqueeze(0) for k, v in features[i].items()}
            logits = model.head_from_cache(feats, pair.mask.shape[:2], tail_blocks)
        else:
            x = normalize(pair.image, model.mean, model.std).unsqueeze(0).to(device)
            logits = model.forward_head(model.forward_features(x), pair.mask.shape[:2])
        if logits.shape[1] == 1:
            pred = (logits[0, 0] > 0).to(torch.uint8).cpu().numpy()
        else:
            pred = logits[0].argmax(0).to(torch.uint8).cpu().numpy()
        iou, biou = _score(pair.mask, pred, model.num_classes)
        ious.append(iou)
        bious.append(biou)
    model.train(was_training)
    return float(np.nanmean(ious)), float(np.nanmean(bious))


def evaluate_pairs(model: nn.Module, pairs: Sequence[Any], input_size: int,
                   device: torch.device | str = "cpu") -> tuple[float | None, float | None]:
    """evaluate_prepared on raw (image, mask[, name]) pairs, the model moved to ``device`` and back."""
    if not pairs:
        return None, None
    original = next(model.parameters()).device
    model.to(device)
    try:
        return evaluate_prepared(model, prepare_val_pairs(pairs, input_size), device)
    finally:
        model.to(original)
