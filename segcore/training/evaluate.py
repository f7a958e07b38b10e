"""Held-out evaluation as the Trainer does it: per-image mean IoU / Boundary IoU at full label size.

Scores are segcore.metrics.score_mask (binary: foreground IoU / BIoU; multi-class: per-image mIoU
and mean per-class BIoU; void 255 never scored). Predictions follow the run's preprocessing
preset exactly as segcore.inference.Predictor does (segcore.preprocess.working_logits).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..preprocess import Preset, mirror_mean, mirrored, padded_forward, preset_of, tiled_logits
from .data import IGNORE, ValPair, normalize, prepare_val_pairs


def _logits(model: nn.Module, pair: ValPair, device: torch.device, preset: Preset | None) -> torch.Tensor:
    """(1, C, H, W) logits at the mask's resolution from the pair's working image."""
    preset = preset or preset_of(model)
    x = normalize(pair.image, preset.mean, preset.std).unsqueeze(0).to(device)
    forward = mirrored(lambda t: model(t)["out"], preset.flip)  # eval mode: {"out": logits}
    if preset.policy == "stretch":
        logits = padded_forward(forward, x)
    else:
        logits = tiled_logits(forward, x, preset.input_size, model.out_channels)
    return F.interpolate(logits[None], size=pair.mask.shape[:2], mode="bilinear", align_corners=False)


@torch.no_grad()
def evaluate_prepared(model: nn.Module, val: list[ValPair], device: torch.device | str = "cpu",
                      features: list[dict[str, torch.Tensor]] | None = None,
                      tail_blocks: int = 0, preset: Preset | None = None) -> tuple[float | None, float | None]:
    """Per-image mean (IoU, Boundary IoU) at full label resolution; (None, None) without pairs.

    ``features``: cached encoder features of each pair (fast mode with a "stretch" preset:
    ``model.cached_features`` with ``tail_blocks``, batch 1, or batch 2 with the mirror image's
    for a mirror-averaged preset) instead of running the encoder.
    """
    from ..metrics import Evaluation
    if not val:
        return None, None
    device = torch.device(device)
    was_training = model.training
    model.eval()
    scores = Evaluation(model.num_classes, IGNORE)
    for i, pair in enumerate(val):
        if features:  # (1, ...) per key, or (2, ...): the image and its mirror image
            feats = {k: v.to(device).float() for k, v in features[i].items()}
            logits = model.head_from_cache(feats, pair.mask.shape[:2], tail_blocks)
            if logits.shape[0] == 2:
                logits = mirror_mean(logits)
        else:
            logits = _logits(model, pair, device, preset)
        if logits.shape[1] == 1:
            pred = (logits[0, 0] > 0).to(torch.uint8).cpu().numpy()
        else:
            pred = logits[0].argmax(0).to(torch.uint8).cpu().numpy()
        scores.add(pair.mask, pred)
    model.train(was_training)
    summary = scores.summary()
    return summary["iou"], summary["biou"]


def evaluate_pairs(model: nn.Module, pairs: Sequence[Any], preset: Preset | int | None = None,
                   device: torch.device | str = "cpu") -> tuple[float | None, float | None]:
    """evaluate_prepared on raw (image, mask[, name]) pairs, the model moved to ``device`` and back.

    ``preset`` defaults to the model's own (``preset_of``); an int is a legacy stretch size."""
    if not pairs:
        return None, None
    if preset is None:
        preset = preset_of(model)
    elif not isinstance(preset, Preset):
        preset = Preset.legacy(int(preset)).with_model(model)
    original = next(model.parameters()).device
    model.to(device)
    try:
        return evaluate_prepared(model, prepare_val_pairs(pairs, preset), device, preset=preset)
    finally:
        model.to(original)
