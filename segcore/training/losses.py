"""Training losses: per-pixel BCE / CE with an optional soft-Dice term, ignoring label 255."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .data import IGNORE


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor,
                      dice_weight: float = 0.0) -> torch.Tensor:
    """BCE (1 logit channel, binary) or CE (k channels), ignoring 255; logits upsampled to labels.

    ``dice_weight`` > 0 adds that times the soft Dice loss (per image, over valid pixels; for k
    classes the mean over classes), which optimises the overlap the IoU measures."""
    if logits.shape[-2:] != labels.shape[-2:]:
        logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    logits = logits.float()
    valid = (labels != IGNORE).float()
    if logits.shape[1] == 1:
        target = (labels == 1).float()
        loss = F.binary_cross_entropy_with_logits(logits[:, 0], target, weight=valid, reduction="sum")
        loss = loss / valid.sum().clamp_min(1.0)
        if dice_weight > 0:
            loss = loss + dice_weight * _soft_dice(torch.sigmoid(logits), target[:, None], valid)
        return loss
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
