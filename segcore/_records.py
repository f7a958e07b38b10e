"""Record types of :mod:`segcore.project` (import them from there)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ImageStatus(str, Enum):
    """Where an image is in the loop (design.md, "Data model rules"): unlabelled → predicted →
    in progress (the user edited its mask) → done (training data) · skipped. Only DONE images
    are trained on or scored. ``CORRECTED`` is the old name of DONE (an alias, same value)."""

    UNLABELLED = "unlabelled"
    PREDICTED = "predicted"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    SKIPPED = "skipped"
    ERROR = "error"
    CORRECTED = "done"  # alias of DONE: indexes of schema 1 said 'corrected' (migrated)


USER_STATUSES = (ImageStatus.IN_PROGRESS, ImageStatus.DONE, ImageStatus.SKIPPED)
"""Statuses the user set; a prediction or an error never overrides them."""

ROLE_TRAIN = "train"
ROLE_HELD_OUT = "held_out"


@dataclass
class ImageRecord:
    """One image of the project. ``uncertainty`` = mean per-pixel entropy of the latest
    prediction (higher = needs attention); ``iou``/``biou`` compare the corrected mask with the
    active model's prediction; ``model_version`` made the latest prediction; ``role`` is the
    image's fixed train / held-out role (segcore.roles)."""

    stem: str
    filename: str
    status: ImageStatus
    updated: float | None
    uncertainty: float | None
    iou: float | None
    biou: float | None
    error: str | None
    model_version: int | None = None
    role: str | None = None          # ROLE_TRAIN / ROLE_HELD_OUT, fixed when first done; None before


@dataclass
class ClassInfo:
    """A class: index = position in ``Project.classes``; colour is RGB 0..255."""

    name: str
    color: tuple[int, int, int]


@dataclass
class ModelVersion:
    """A trained model. ``file`` is relative to ``Project.models_dir``."""

    id: int
    parent: int | None
    created: float
    arch: str
    file: str
    metrics: dict
    meta: dict
    active: bool


DEFAULT_CLASSES = (ClassInfo("background", (0, 0, 0)), ClassInfo("foreground", (255, 64, 64)))
