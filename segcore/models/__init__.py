"""Model registry: ``build(name, ...)`` → SegModel; see ``base`` for the model conventions.

Models: ``deeplabv3_mobilenet_v2`` (CPU default, OS16, ImageNet MobileNetV2 backbone) and
``deeplabv3_resnet50_v1c`` (the seed's configuration, OS8). ``build(**model.config(),
pretrained=False)`` (or ``from_config``) rebuilds a model's architecture for loading weights.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..weights import ProgressCallback
from .base import IMAGENET_MEAN, IMAGENET_STD, LogitsOnly, SegModel, logits_to_probs
from .deeplabv3 import MobileNetDeepLab, Pretrained, deeplabv3_mobilenet_v2, deeplabv3_resnet50_v1c

__all__ = [
    "DEFAULT_MODEL", "IMAGENET_MEAN", "IMAGENET_STD", "LogitsOnly", "MobileNetDeepLab", "SegModel",
    "available_models", "build", "from_config", "logits_to_probs",
]

DEFAULT_MODEL = "deeplabv3_mobilenet_v2"

_REGISTRY: dict[str, Callable[..., SegModel]] = {
    "deeplabv3_mobilenet_v2": deeplabv3_mobilenet_v2,
    "deeplabv3_resnet50_v1c": deeplabv3_resnet50_v1c,
}


def available_models() -> list[str]:
    """Registered architecture names, CPU default first."""
    return list(_REGISTRY)


def build(
    name: str = DEFAULT_MODEL,
    num_classes: int = 2,
    pretrained: Pretrained = True,
    aux: bool = False,
    binary_bce: bool = True,
    progress: ProgressCallback | None = None,
    **options: Any,
) -> SegModel:
    """Build a registered model. ``options`` are architecture options (e.g. ``output_stride``).

    Raises ValueError for an unknown name (the message lists the known ones).
    """
    try:
        builder = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(_REGISTRY)}") from None
    return builder(num_classes=num_classes, pretrained=pretrained, aux=aux, binary_bce=binary_bce,
                   progress=progress, **options)


def from_config(config: dict[str, Any], pretrained: Pretrained = False) -> SegModel:
    """Rebuild from ``SegModel.config()`` (an ``arch`` key is accepted in place of ``name``)."""
    cfg = dict(config)
    name = cfg.pop("name", None) or cfg.pop("arch")
    cfg.pop("arch", None)
    return build(name, pretrained=pretrained, **cfg)
