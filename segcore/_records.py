"""Record types of :mod:`segcore.project` (import them from there)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ImageStatus(str, Enum):
    """Where an image is in the loop."""

    UNLABELLED = "unlabelled"
    PREDICTED = "predicted"
    CORRECTED = "corrected"
    ERROR = "error"


@dataclass
class ImageRecord:
    """One image of the project. ``uncertainty`` = mean per-pixel entropy of the latest
    prediction (higher = needs attention); ``iou``/``biou`` compare the corrected mask with the
    active model's prediction; ``model_version`` made the latest prediction."""

    stem: str
    filename: str
    status: ImageStatus
    updated: float | None
    uncertainty: float | None
    iou: float | None
    biou: float | None
    error: str | None
    model_version: int | None = None


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
