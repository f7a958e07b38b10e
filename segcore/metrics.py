"""Segmentation metrics: one implementation, used by the app, the CLI and the benchmarks.

Conventions
-----------
* Masks are HxW integer arrays of class indices. ``gt`` is the ground truth, ``pred`` the
  prediction; both must have the same shape (``ValueError`` otherwise).
* The confusion matrix ``p`` is ``(k, k)`` int64 with **rows = ground truth, columns =
  prediction**: ``p[i, j]`` counts pixels of true class ``i`` predicted as ``j``.
  Pixels whose ground truth equals ``ignore_index`` are left out (whatever was predicted there).
  Any other value outside ``[0, k)`` in either array raises ``ValueError``.
* Scores:
  ``PA = Σ_i p_ii / Σ_ij p_ij``;
  ``MPA = mean_i p_ii / Σ_j p_ij``;
  ``IoU_i = p_ii / (Σ_j p_ij + Σ_j p_ji - p_ii)``, ``mIoU = mean_i IoU_i``;
  ``FWIoU = Σ_i (Σ_j p_ij / Σ_ij p_ij) · IoU_i``.
* **Absent classes are never credited.** A class absent from both ground truth and
  prediction has ``IoU = NaN`` in the ``iou`` list and is left out of ``mIoU`` (nan-mean);
  a class absent from the ground truth is left out of ``MPA`` (its accuracy is undefined).
  A class present only in the prediction has ``IoU = 0`` and counts. If no pixel is counted
  at all (empty image or everything ignored) every score is NaN.
* **Boundary IoU** (Cheng et al., CVPR 2021): ``d = max(1, round(ratio · sqrt(H² + W²)))``;
  the boundary of a mask ``M`` is ``M`` minus its erosion by a 3×3 square kernel applied
  ``d`` times after padding ``M`` with one pixel of zeros (so pixels within ``d`` of the
  image border are boundary too); ``BIoU = |B(G) ∩ B(P)| / |B(G) ∪ B(P)|``.
  For a binary foreground (:func:`boundary_iou`, nonzero = foreground): both masks empty →
  ``1.0``, exactly one empty → ``0.0``. Per class (:func:`boundary_iou_per_class`): a class
  absent from both masks gets ``NaN`` and :func:`mean_boundary_iou` is the nan-mean, the
  same rule as for mIoU.
* :func:`foreground_iou`: binary IoU of ``gt != 0`` vs ``pred != 0``; both empty → ``1.0``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

__all__ = [
    "IGNORE_INDEX", "MaskScore", "score_mask", "Evaluation", "evaluate",
    "confusion_matrix",
    "scores_from_confusion",
    "segmentation_scores",
    "foreground_iou",
    "boundary_width",
    "mask_boundary",
    "boundary_iou",
    "boundary_iou_per_class",
    "mean_boundary_iou",
]

_KERNEL_3X3 = np.ones((3, 3), np.uint8)


def _check_pair(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"gt and pred must have the same shape, got gt {gt.shape} and pred {pred.shape}")
    for name, arr in (("gt", gt), ("pred", pred)):
        if arr.dtype.kind not in "biu":
            raise ValueError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    return gt, pred


def _check_range(name: str, values: np.ndarray, num_classes: int) -> None:
    if values.size == 0:
        return
    lo, hi = int(values.min()), int(values.max())
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        raise ValueError(
            f"{name} contains class index {bad}, outside [0, {num_classes}) "
            f"(num_classes={num_classes}; pass ignore_index for a void label)"
        )


def confusion_matrix(
    gt: np.ndarray, pred: np.ndarray, num_classes: int, ignore_index: int | None = None
) -> np.ndarray:
    """(k, k) int64 confusion matrix, rows = ground truth, columns = prediction.

    Pixels whose ``gt`` equals ``ignore_index`` are excluded. Values outside ``[0, k)``
    (other than ignored ground truth) raise ``ValueError``; so does a shape mismatch.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    gt, pred = _check_pair(gt, pred)
    g = gt.ravel()
    p = pred.ravel()
    k2 = num_classes * num_classes
    # Smallest dtype that holds k*k (+1 bin for ignored pixels) keeps the arithmetic cheap.
    dtype: Any = np.uint16 if k2 < np.iinfo(np.uint16).max else np.int64
    if ignore_index is None:
        _check_range("gt", g, num_classes)
        _check_range("pred", p, num_classes)
        index = g.astype(dtype) * dtype(num_classes) + p.astype(dtype)
        counts = np.bincount(index, minlength=k2)
    else:
        ignored = g == ignore_index
        # Ignored pixels are checked as class 0 and counted in an extra bin that is dropped.
        g = np.where(ignored, 0, g)
        _check_range("gt", g, num_classes)
        _check_range("pred", np.where(ignored, 0, p), num_classes)
        index = g.astype(dtype) * dtype(num_classes) + p.astype(dtype)
        index[ignored] = k2
        counts = np.bincount(index, minlength=k2 + 1)[:k2]
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


def scores_from_confusion(cm: np.ndarray) -> dict[str, Any]:
    """PA, MPA, per-class IoU (list, NaN for absent classes), mIoU and FWIoU from ``cm``.

    See the module docstring for the formulas and the absent-class convention.
    """
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square (k, k), got shape {cm.shape}")
    total = cm.sum()
    diag = np.diag(cm)
    gt_count = cm.sum(axis=1)
    pred_count = cm.sum(axis=0)
    union = gt_count + pred_count - diag
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, diag / np.where(union > 0, union, 1), np.nan)
        acc = np.where(gt_count > 0, diag / np.where(gt_count > 0, gt_count, 1), np.nan)
    if total <= 0:
        nan = float("nan")
        return {"pa": nan, "mpa": nan, "iou": [nan] * cm.shape[0], "miou": nan, "fwiou": nan}
    freq = gt_count / total
    present = gt_count > 0  # IoU is defined wherever gt_count > 0
    return {
        "pa": float(diag.sum() / total),
        "mpa": _nanmean(acc),
        "iou": [float(v) for v in iou],
        "miou": _nanmean(iou),
        "fwiou": float((freq[present] * iou[present]).sum()),
    }


def segmentation_scores(
    gt: np.ndarray, pred: np.ndarray, num_classes: int, ignore_index: int | None = None
) -> dict[str, Any]:
    """``{pa, mpa, iou: list[float], miou, fwiou}`` of ``pred`` against ``gt``."""
    return scores_from_confusion(confusion_matrix(gt, pred, num_classes, ignore_index))


def foreground_iou(gt: np.ndarray, pred: np.ndarray) -> float:
    """IoU of the foregrounds (nonzero pixels); both empty → 1.0."""
    gt, pred = _check_pair(gt, pred)
    g = gt != 0
    p = pred != 0
    union = np.count_nonzero(g | p)
    if union == 0:
        return 1.0
    return np.count_nonzero(g & p) / union


def boundary_width(shape: tuple[int, ...], dilation_ratio: float = 0.02) -> int:
    """Band width ``d = max(1, round(dilation_ratio · sqrt(H² + W²)))`` in pixels."""
    h, w = int(shape[0]), int(shape[1])
    return max(1, int(round(dilation_ratio * math.hypot(h, w))))


def _boundary_u8(fg: np.ndarray, d: int) -> np.ndarray:
    """Boundary band of a 0/1 uint8 mask as 0/1 uint8 (see the module docstring)."""
    padded = cv2.copyMakeBorder(fg, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, _KERNEL_3X3, iterations=d)[1:-1, 1:-1]
    return cv2.subtract(fg, eroded)


def _as_fg(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be a 2-D HxW array, got shape {mask.shape}")
    return (mask != 0).view(np.uint8)


def mask_boundary(mask: np.ndarray, dilation_ratio: float = 0.02) -> np.ndarray:
    """Boolean HxW boundary band of the foreground (nonzero) of ``mask``, width ``d``."""
    fg = _as_fg(mask)
    return _boundary_u8(fg, boundary_width(fg.shape, dilation_ratio)).view(bool)


def _band_iou(g: np.ndarray, p: np.ndarray, d: int) -> float:
    """BIoU of two 0/1 uint8 foregrounds; both empty → 1.0, one empty → 0.0."""
    g_any = bool(g.any())
    p_any = bool(p.any())
    if not g_any and not p_any:
        return 1.0
    if not g_any or not p_any:
        return 0.0
    bg = _boundary_u8(g, d)
    bp = _boundary_u8(p, d)
    inter = cv2.countNonZero(cv2.bitwise_and(bg, bp))
    union = cv2.countNonZero(cv2.bitwise_or(bg, bp))
    return inter / union if union else 1.0


def boundary_iou(gt: np.ndarray, pred: np.ndarray, dilation_ratio: float = 0.02) -> float:
    """Boundary IoU of the binary foregrounds (nonzero = foreground).

    Both empty → 1.0, exactly one empty → 0.0 (module docstring has the definition).
    """
    gt, pred = _check_pair(gt, pred)
    g = _as_fg(gt)
    p = _as_fg(pred)
    return _band_iou(g, p, boundary_width(g.shape, dilation_ratio))


def boundary_iou_per_class(
    gt: np.ndarray, pred: np.ndarray, num_classes: int, dilation_ratio: float = 0.02
) -> list[float]:
    """Boundary IoU of each class ``c`` (``gt == c`` vs ``pred == c``); NaN if absent from both."""
    gt, pred = _check_pair(gt, pred)
    if gt.ndim != 2:
        raise ValueError(f"masks must be 2-D HxW arrays, got shape {gt.shape}")
    d = boundary_width(gt.shape, dilation_ratio)
    out: list[float] = []
    for c in range(num_classes):
        g = (gt == c).view(np.uint8)
        p = (pred == c).view(np.uint8)
        if not g.any() and not p.any():
            out.append(float("nan"))
        else:
            out.append(_band_iou(g, p, d))
    return out


def mean_boundary_iou(
    gt: np.ndarray, pred: np.ndarray, num_classes: int, dilation_ratio: float = 0.02
) -> float:
    """Nan-mean of :func:`boundary_iou_per_class` (classes absent from both are not credited)."""
    return _nanmean(np.asarray(boundary_iou_per_class(gt, pred, num_classes, dilation_ratio)))


#: mask value that means "not labelled" (void): never scored
IGNORE_INDEX = 255


@dataclass(frozen=True)
class MaskScore:
    """The scores of one prediction against one mask (see :func:`score_mask`).

    ``iou`` / ``biou``: binary, foreground IoU and Boundary IoU; multi-class, the image's mIoU and
    mean per-class Boundary IoU (classes absent from both left out). ``class_iou`` /
    ``class_biou``: per class, NaN where the class is absent from both masks. ``confusion``: the
    (k, k) confusion matrix with void pixels left out, for pooling over a data set.
    """

    iou: float
    biou: float
    class_iou: tuple[float, ...]
    class_biou: tuple[float, ...]
    confusion: np.ndarray = field(repr=False, compare=False)


def score_mask(gt: np.ndarray, pred: np.ndarray, num_classes: int,
               ignore_index: int | None = IGNORE_INDEX) -> MaskScore:
    """THE per-image score of a prediction against a mask (every caller scores through it).

    Binary (``num_classes == 2``, nonzero = foreground): foreground IoU and Boundary IoU (both
    empty: 1.0). Multi-class: the image's mIoU (classes absent from both excluded) and its mean
    per-class Boundary IoU. Void pixels (``gt == ignore_index``) count as agreeing with the
    prediction in ``iou`` / ``biou`` / ``class_iou`` / ``class_biou`` (the scores the app has
    always shown), and are left out of ``confusion`` (pooled data-set scores never count them).
    """
    gt, pred = _check_pair(gt, pred)
    if num_classes == 2:
        void = None if ignore_index is None else gt == ignore_index
        gt, pred = (gt != 0).view(np.uint8), (pred != 0).view(np.uint8)
        if void is not None:
            gt = np.where(void, np.uint8(IGNORE_INDEX if ignore_index is None else ignore_index), gt)
    cm = confusion_matrix(gt, pred, num_classes, ignore_index)
    if ignore_index is None:
        g, agree = gt, cm
    else:  # a void pixel agrees with whatever was predicted there
        void = gt == ignore_index
        g = np.where(void, pred, gt)
        agree = cm + np.diag(np.bincount(pred[void].ravel(), minlength=num_classes)[:num_classes])
    class_iou = tuple(scores_from_confusion(agree)["iou"])
    class_biou = tuple(boundary_iou_per_class(g, pred, num_classes))
    if num_classes == 2:
        return MaskScore(float(foreground_iou(g, pred)), float(boundary_iou(g, pred)), class_iou,
                         class_biou, cm)
    return MaskScore(_nanmean(np.asarray(class_iou)), _nanmean(np.asarray(class_biou)),
                     class_iou, class_biou, cm)


class Evaluation:
    """Scores of a data set, image by image: ``add(gt, pred)`` each pair, then :meth:`summary`.

    Per-image means (``iou``, ``biou``: the mean of :func:`score_mask` over the images, what the
    Trainer, the list and the simulator report) and pooled scores (``pa``, ``mpa``, ``miou``,
    ``fwiou``, ``class_iou``: from the confusion matrix summed over every image, void left out;
    ``class_biou``: each class's Boundary IoU averaged over the images holding it in either mask).
    """

    def __init__(self, num_classes: int, ignore_index: int | None = IGNORE_INDEX) -> None:
        self.num_classes, self.ignore_index = int(num_classes), ignore_index
        self.confusion = np.zeros((self.num_classes, self.num_classes), np.int64)
        self.per_image: dict[str, MaskScore] = {}
        self._ious: list[float] = []
        self._bious: list[float] = []
        self._class_bious: list[tuple[float, ...]] = []

    def add(self, gt: np.ndarray, pred: np.ndarray, name: str | None = None) -> MaskScore:
        score = score_mask(gt, pred, self.num_classes, self.ignore_index)
        self.confusion += score.confusion
        self._ious.append(score.iou)
        self._bious.append(score.biou)
        self._class_bious.append(score.class_biou)
        self.per_image[str(len(self._ious) - 1) if name is None else str(name)] = score
        return score

    @property
    def images(self) -> int:
        return len(self._ious)

    def summary(self) -> dict[str, Any]:
        """``{images, iou, biou, pa, mpa, miou, fwiou, class_iou, class_biou}`` (NaN: undefined)."""
        pooled = scores_from_confusion(self.confusion)
        with np.errstate(all="ignore"):
            class_biou = [_nanmean(np.asarray(col)) for col in zip(*self._class_bious)] \
                if self._class_bious else [float("nan")] * self.num_classes
        return {"images": self.images, "iou": _nanmean(np.asarray(self._ious, float)),
                "biou": _nanmean(np.asarray(self._bious, float)), "pa": pooled["pa"],
                "mpa": pooled["mpa"], "miou": pooled["miou"], "fwiou": pooled["fwiou"],
                "class_iou": pooled["iou"], "class_biou": class_biou}


def evaluate(pairs: Iterable[tuple[np.ndarray, np.ndarray]], num_classes: int,
             ignore_index: int | None = IGNORE_INDEX) -> dict[str, Any]:
    """:meth:`Evaluation.summary` of ``(gt, pred)`` pairs (names: their position)."""
    ev = Evaluation(num_classes, ignore_index)
    for gt, pred in pairs:
        ev.add(gt, pred)
    return ev.summary()
