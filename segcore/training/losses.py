"""Training losses: per-pixel BCE / CE with optional class weights and soft-Dice term, ignoring 255."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .data import IGNORE


def class_weights(masks: Sequence[np.ndarray], num_classes: int, power: float = 0.5,
                  clip: tuple[float, float] = (0.1, 10.0)) -> torch.Tensor:
    """Per-class loss weights ``(median frequency / frequency) ** power`` over the labelled
    (non-void) pixels of ``masks``, clipped; classes without pixels get weight 1 (they add no
    loss anyway). Binary: [background, foreground] for the BCE's per-pixel weights."""
    counts = np.zeros(num_classes, np.float64)
    for m in masks:
        counts += np.bincount(m[m != IGNORE].ravel(), minlength=256)[:num_classes]
    present = counts > 0
    w = np.ones(num_classes, np.float64)
    if present.sum() >= 2:
        freq = counts[present] / counts[present].sum()
        w[present] = np.clip((np.median(freq) / freq) ** power, *clip)
        w[present] /= (w[present] * freq).sum()  # the mean weight per labelled pixel stays 1
    return torch.tensor(w, dtype=torch.float32)


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor,
                      dice_weight: float = 0.0, class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """BCE (1 logit channel, binary) or CE (k channels), ignoring 255; logits upsampled to labels.

    ``class_weights`` (see :func:`class_weights`) weight each pixel by its class; the loss is
    the weighted mean over labelled pixels. ``dice_weight`` > 0 adds that times the soft Dice
    loss (per image, over valid pixels; for k classes the mean over classes), which optimises the
    overlap the IoU measures."""
    if logits.shape[-2:] != labels.shape[-2:]:
        logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    logits = logits.float()
    valid = (labels != IGNORE).float()
    if logits.shape[1] == 1:
        target = (labels == 1).float()
        weight = valid
        if class_weights is not None:
            weight = valid * torch.where(labels == 1, class_weights[1], class_weights[0])
        loss = F.binary_cross_entropy_with_logits(logits[:, 0], target, weight=weight, reduction="sum")
        loss = loss / weight.sum().clamp_min(1.0)
        if dice_weight > 0:
            loss = loss + dice_weight * _soft_dice(torch.sigmoid(logits), target[:, None], valid)
        return loss
    if class_weights is not None:
        per_pixel = F.cross_entropy(logits, labels, weight=class_weights, ignore_index=IGNORE, reduction="sum")
        norm = (class_weights[labels.clamp_max(logits.shape[1] - 1)] * valid).sum().clamp_min(1e-6)
        loss = per_pixel / norm
    else:
        loss = F.cross_entropy(logits, labels, ignore_index=IGNORE)
    if dice_weight > 0:
        onehot = F.one_hot(labels.clamp_max(logits.shape[1] - 1).long(), logits.shape[1])
        loss = loss + dice_weight * _soft_dice(logits.softmax(1), onehot.permute(0, 3, 1, 2).float(),
                                               valid)
    return loss


def _soft_dice(probs: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """1 - mean over images and channels of 2|P∩G| / (|P| + |G|), pixels where ``valid``."""
    v = valid[:, None]
    inter = (probs * target * v).sum((2, 3))
    total = ((probs + target) * v).sum((2, 3))
    return 1.0 - ((2 * inter + 1.0) / (total + 1.0)).mean()
