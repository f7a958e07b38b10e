"""Shared by the assists: rectangles, crops, down/upscaling, strokes, and the edit they return."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

Box = tuple[int, int, int, int]
NO_SCRIBBLE = 255


@dataclass
class Update:
    """A proposed edit: write ``pixels`` into ``region`` (x0, y0, x1, y1) of the mask.
    ``method`` says what made it ("grabcut", "densecrf", "grabcut-fallback")."""

    region: Box
    pixels: np.ndarray
    method: str


def _clip(box: Box, w: int, h: int) -> Box:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def _grow(box: Box, margin: int, w: int, h: int) -> Box:
    return _clip((box[0] - margin, box[1] - margin, box[2] + margin, box[3] + margin), w, h)


def _margin(box: Box, fraction: float, minimum: int) -> int:
    return max(int(minimum), int(round(fraction * max(box[2] - box[0], box[3] - box[1]))))


def _bbox(mask: np.ndarray) -> Box | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _check_image(image_rgb: np.ndarray) -> np.ndarray:
    img = np.asarray(image_rgb)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"image must be HxWx3 uint8 RGB, got shape {img.shape} dtype {img.dtype}")
    return img


def _scale_for(w: int, h: int, max_side: int | None) -> float:
    if max_side is None or max(w, h) <= max_side:
        return 1.0
    return max_side / max(w, h)


def _down(a: np.ndarray, scale: float, interpolation: int) -> np.ndarray:
    if scale >= 1.0:
        return a
    h, w = a.shape[:2]
    return cv2.resize(a, (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=interpolation)


def _down_bool(a: np.ndarray, scale: float) -> np.ndarray:
    """A thin stroke survives downscaling: any covered part of a small pixel keeps it."""
    if scale >= 1.0:
        return a.astype(bool)
    return _down(a.astype(np.float32), scale, cv2.INTER_AREA) > 0.2


def _up_soft(a: np.ndarray, w: int, h: int) -> np.ndarray:
    if a.shape[:2] == (h, w):
        return a
    return cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)


# ---- strokes -------------------------------------------------------------------------------

def draw_stroke(labels: np.ndarray, points: list[tuple[float, float]], size: int,
                value: int) -> Box | None:
    """Draw a round-capped polyline of diameter ``size`` through ``points`` (image coordinates;
    pixel (x, y) covers [x, x+1)) into ``labels`` in place, like the canvas brush; only the
    stroke's bounding box is touched. Returns that box (None if it is off the image)."""
    h, w = labels.shape[:2]
    pts = [(int(np.floor(x)), int(np.floor(y))) for x, y in points]
    if not pts:
        return None
    rad = max(0, int(round((max(1, int(size)) - 1) / 2.0)))
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    box = _clip((min(xs) - rad - 1, min(ys) - rad - 1, max(xs) + rad + 2, max(ys) + rad + 2), w, h)
    if box[2] <= box[0] or box[3] <= box[1]:
        return None
    view = labels[box[1]:box[3], box[0]:box[2]]
    shifted = [(x - box[0], y - box[1]) for x, y in pts]
    for a, b in zip(shifted, shifted[1:] or shifted):
        cv2.line(view, a, b, int(value), 2 * rad + 1, cv2.LINE_8)
    for p in (shifted[0], shifted[-1]):
        cv2.circle(view, p, rad, int(value), -1, cv2.LINE_8)
    return box

