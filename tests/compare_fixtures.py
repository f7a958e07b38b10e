"""A project with three model versions whose predictions the test controls (compare / forecast tests).

``build(folder)`` writes a 10-image demo project, saves every ground truth as a done mask (roles:
2 held out), and three versions v1 ← v2 ← v3 (real checkpoints of a tiny random model, so the
ModelStore, parent links and metrics are the real ones) trained on 3 / 6 / 8 images with crafted
held-out scores. ``FakeVersions`` predicts for a version by a known transform of the image's
ground truth (found by the image's bytes), so tests compute the expected IoU themselves.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

N_IMAGES = 10
SIZE = (64, 80)
# held-out scores the "fine-tunes" stored: {version: {held-out stem index: (iou, biou)}}
HELD_IOU = {1: (0.50, 0.30), 2: (0.70, 0.40), 3: (0.60, 0.45)}
VAL_IOU = {1: 0.55, 2: 0.72, 3: 0.80}
N_TRAIN = {1: 3, 2: 6, 3: 8}


def shift(mask: np.ndarray, dx: int) -> np.ndarray:
    out = np.zeros_like(mask)
    out[:, dx:] = mask[:, :mask.shape[1] - dx] if dx else mask
    return out


def transform(version: int, index: int, gt: np.ndarray) -> np.ndarray:
    """What version ``version`` "predicts" for image ``index``: v1 the truth shifted by 6 px,
    v2 shifted by 2 px, v3 exact on even images and shifted by 9 px on odd ones (they got worse)."""
    if version == 1:
        return shift(gt, 6)
    if version == 2:
        return shift(gt, 2)
    return gt.copy() if index % 2 == 0 else shift(gt, 9)


def fg_iou(gt: np.ndarray, pred: np.ndarray) -> float:
    """Foreground IoU written out here, independently of segcore.metrics."""
    g, p = gt != 0, pred != 0
    union = np.logical_or(g, p).sum()
    return 1.0 if union == 0 else float(np.logical_and(g, p).sum() / union)


@dataclass
class Built:
    root: Path
    stems: list[str]
    truth: dict[str, np.ndarray]
    held: list[str]
    train: list[str]
    versions: list[int]
    by_image: dict[str, str] = field(default_factory=dict)   # sha1 of image bytes -> stem


class _Prediction:
    def __init__(self, mask: np.ndarray) -> None:
        self.mask = mask


class FakeVersions:
    """``make_predictor(project, version_id)`` for segcore.compare.Predictions: counts calls."""

    def __init__(self, built: Built) -> None:
        self.built = built
        self.calls: list[tuple[int, str]] = []

    def __call__(self, project, version_id: int):
        outer = self

        class P:
            def predict(self, image: np.ndarray) -> _Prediction:
                stem = outer.built.by_image[hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()]
                outer.calls.append((version_id, stem))
                return _Prediction(outer.expected(version_id, stem))
        return P()

    def expected(self, version: int, stem: str) -> np.ndarray:
        return transform(version, self.built.stems.index(stem), self.built.truth[stem])


def build(folder: Path, versions: int = 3) -> Built:
    import torch

    from segcore import models
    from segcore.demo import generate_demo_project, load_ground_truth
    from segcore.project import Project

    root = generate_demo_project(folder, n_images=N_IMAGES, size=SIZE, seed=5)
    with Project.open(root) as project:
        stems = project.stems()
        truth = {s: load_ground_truth(root, s) for s in stems}
        for s in stems:
            project.save_mask(s, truth[s])
        train, held = project.training_split()
        by_image = {hashlib.sha1(np.ascontiguousarray(project.load_image(s)).tobytes()).hexdigest(): s
                    for s in stems}
        torch.manual_seed(0)
        model = models.build("deeplabv3_mobilenet_v2", num_classes=2, pretrained=False)
        ids: list[int] = []
        parent = None
        for v in range(1, versions + 1):
            scores = {s: list(HELD_IOU[v]) for s in held}
            metrics = {"val_iou": VAL_IOU[v], "val_biou": HELD_IOU[v][1], "n_train": N_TRAIN[v],
                       "n_held_out": len(held), "held_out_scores": scores}
            if parent is not None:
                metrics["parent_held_out_scores"] = {s: list(HELD_IOU[v - 1]) for s in held}
            meta = {"data": {"train": train[:N_TRAIN[v]], "held_out": held}, "run_id": f"run{v}"}
            parent = project.models.save_version(model, meta, parent, metrics)
            ids.append(parent)
    return Built(root, stems, truth, held, train, ids, by_image)
