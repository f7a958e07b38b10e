"""The data side of the canvas: one image's mask as a numpy array, and the edits on it.

No Qt here (napari-like split): the views in ``layers.py`` render what this holds.

Conventions
-----------
* ``mask`` is HxW uint8 class indices (0 = background); it is the truth the views show.
* Rectangles are ``Rect(x0, y0, x1, y1)`` in image pixels, half-open (x1, y1 exclusive),
  always clipped to the image.
* ``committed`` mirrors the mask as of the last undo-stack command; a finished stroke takes
  its *before* patch from it, so a stroke never needs a full-mask copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np


class Rect(NamedTuple):
    """Half-open pixel rectangle ``[x0, x1) x [y0, y1)``."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def is_empty(self) -> bool:
        return self.x1 <= self.x0 or self.y1 <= self.y0

    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` for indexing an HxW array."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def union(self, other: "Rect | None") -> "Rect":
        if other is None or other.is_empty():
            return self
        if self.is_empty():
            return other
        return Rect(min(self.x0, other.x0), min(self.y0, other.y0),
                    max(self.x1, other.x1), max(self.y1, other.y1))

    def grown(self, margin: int, width: int, height: int) -> "Rect":
        """This rect grown by ``margin`` on every side, clipped to ``width`` x ``height``."""
        return Rect(max(0, self.x0 - margin), max(0, self.y0 - margin),
                    min(width, self.x1 + margin), min(height, self.y1 + margin))


@dataclass
class Patch:
    """A changed rectangle with the pixels before and after the edit (what undo stores)."""

    rect: Rect
    before: np.ndarray
    after: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.before.nbytes + self.after.nbytes)


def changed_bbox(a: np.ndarray, b: np.ndarray) -> Rect | None:
    """Bounding box (relative to the arrays) of the pixels where ``a != b``, or None."""
    diff = a != b
    rows = np.flatnonzero(diff.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(diff.any(axis=0))
    return Rect(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


class MaskDocument:
    """The editable mask of one image plus its (optional) prediction."""

    def __init__(self, shape: tuple[int, int], mask: np.ndarray | None = None,
                 prediction: np.ndarray | None = None) -> None:
        h, w = int(shape[0]), int(shape[1])
        if mask is None:
            self.mask = np.zeros((h, w), np.uint8)
        else:
            if mask.shape[:2] != (h, w) or mask.ndim != 2:
                raise ValueError(f"mask shape {mask.shape} does not match the image ({h}, {w})")
            self.mask = np.ascontiguousarray(mask, dtype=np.uint8).copy()
        self.committed = self.mask.copy()
        self.prediction: np.ndarray | None = None
        self.set_prediction(prediction)

    @property
    def height(self) -> int:
        return int(self.mask.shape[0])

    @property
    def width(self) -> int:
        return int(self.mask.shape[1])

    def full_rect(self) -> Rect:
        return Rect(0, 0, self.width, self.height)

    def clip(self, rect: Rect) -> Rect:
        return Rect(max(0, rect.x0), max(0, rect.y0), min(self.width, rect.x1), min(self.height, rect.y1))

    def set_prediction(self, prediction: np.ndarray | None) -> None:
        """Store the model's class-index prediction; a wrong size is resized (nearest)."""
        if prediction is None:
            self.prediction = None
            return
        pred = np.asarray(prediction)
        if pred.ndim != 2:
            raise ValueError(f"prediction must be HxW class indices, got shape {pred.shape}")
        if pred.shape != self.mask.shape:
            pred = cv2.resize(pred.astype(np.uint8), (self.width, self.height),
                              interpolation=cv2.INTER_NEAREST)
        self.prediction = np.ascontiguousarray(pred, dtype=np.uint8)

    # ---- painting (changes ``mask`` only; returns the dirty rect) -------------------------
    def paint_segment(self, p0: tuple[float, float], p1: tuple[float, float], size: int,
                      value: int) -> Rect:
        """Draw a round-capped thick line of diameter ``size`` from ``p0`` to ``p1``.

        Points are image coordinates in pixels (pixel (x, y) covers [x, x+1) x [y, y+1)).
        """
        size = max(1, int(size))
        a = (int(np.floor(p0[0])), int(np.floor(p0[1])))
        b = (int(np.floor(p1[0])), int(np.floor(p1[1])))
        radius = (size - 1) / 2.0
        r = int(np.ceil(radius)) + 1
        rect = self.clip(Rect(min(a[0], b[0]) - r, min(a[1], b[1]) - r,
                              max(a[0], b[0]) + r + 1, max(a[1], b[1]) + r + 1))
        if rect.is_empty():
            return rect
        # Draw into the clipped view with shifted coordinates: cv2 then touches only the rect.
        view = self.mask[rect.slices()]
        pa = (a[0] - rect.x0, a[1] - rect.y0)
        pb = (b[0] - rect.x0, b[1] - rect.y0)
        colour = int(value)
        if size == 1:
            cv2.line(view, pa, pb, colour, 1, cv2.LINE_8)
        else:
            rad = int(round(radius))
            cv2.line(view, pa, pb, colour, 2 * rad + 1, cv2.LINE_8)
            cv2.circle(view, pa, rad, colour, -1, cv2.LINE_8)
            cv2.circle(view, pb, rad, colour, -1, cv2.LINE_8)
        return rect

    def flood_fill(self, x: int, y: int, value: int) -> Rect | None:
        """Fill the 4-connected region of equal class around (x, y) with ``value``."""
        if not (0 <= x < self.width and 0 <= y < self.height):
            return None
        if int(self.mask[y, x]) == int(value):
            return None
        ff_mask = np.zeros((self.height + 2, self.width + 2), np.uint8)
        _, _, _, (rx, ry, rw, rh) = cv2.floodFill(self.mask, ff_mask, (int(x), int(y)), int(value),
                                                  0, 0, 4)
        rect = self.clip(Rect(rx, ry, rx + rw, ry + rh))
        return None if rect.is_empty() else rect

    def replace_all(self, new_mask: np.ndarray) -> Rect | None:
        """Overwrite the mask (e.g. accept a prediction); returns the changed bbox or None."""
        if new_mask.shape != self.mask.shape:
            raise ValueError(f"mask shape {new_mask.shape} does not match the image {self.mask.shape}")
        box = changed_bbox(self.mask, new_mask)
        if box is None:
            return None
        self.mask[box.slices()] = new_mask[box.slices()]
        return box

    # ---- commit / patches -----------------------------------------------------------------
    def commit(self, rect: Rect | None) -> Patch | None:
        """Close an edit touching ``rect``: return its patch (shrunk to the changed pixels).

        Returns None when nothing actually changed. ``committed`` is updated to match ``mask``.
        """
        if rect is None or rect.is_empty():
            return None
        rect = self.clip(rect)
        before = self.committed[rect.slices()]
        after = self.mask[rect.slices()]
        box = changed_bbox(before, after)
        if box is None:
            return None
        tight = Rect(rect.x0 + box.x0, rect.y0 + box.y0, rect.x0 + box.x1, rect.y0 + box.y1)
        patch = Patch(tight, self.committed[tight.slices()].copy(), self.mask[tight.slices()].copy())
        self.committed[tight.slices()] = patch.after
        return patch

    def revert_uncommitted(self, rect: Rect | None) -> None:
        """Throw away an unfinished edit inside ``rect`` (e.g. a cancelled stroke)."""
        if rect is not None and not rect.is_empty():
            self.mask[rect.slices()] = self.committed[rect.slices()]

    def apply(self, rect: Rect, pixels: np.ndarray) -> None:
        """Write ``pixels`` into ``rect`` of both the live and the committed mask (undo/redo)."""
        self.mask[rect.slices()] = pixels
        self.committed[rect.slices()] = pixels
