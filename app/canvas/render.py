"""numpy → premultiplied ARGB32 pixels for the overlay layers (no Qt; used on dirty rects).

Every function takes the full HxW arrays plus a ``Rect`` and returns ``(rect, uint32 pixels)``
for the region the caller must write, so only what changed is converted.
"""

from __future__ import annotations

import cv2
import numpy as np

from app.canvas.document import Rect


HATCH = 4  # stripe width (image px) of a prediction drawn hatched


def mask_pixels(mask: np.ndarray, rect: Rect, lut: np.ndarray,
                gap_lut: np.ndarray | None = None,
                under_void: np.ndarray | None = None) -> np.ndarray:
    """Class ids in ``rect`` → colours through the 256-entry uint32 ``lut``; with ``gap_lut``
    diagonal stripes alternate ``lut`` and ``gap_lut`` (how a prediction is drawn). With
    ``under_void`` (a prediction; partial labels) void pixels (255) show it hatched while the
    labelled pixels are solid."""
    ids = mask[rect.slices()]
    if gap_lut is None:
        return lut[ids]
    yy, xx = np.ogrid[rect.y0:rect.y1, rect.x0:rect.x1]
    stripe = ((xx + yy) // HATCH) % 2 == 0
    if under_void is not None:
        pred = under_void[rect.slices()]
        hatched = np.where(stripe, lut[pred], gap_lut[pred])
        return np.where(ids == 255, hatched, lut[ids])
    return np.where(stripe, lut[ids], gap_lut[ids])


def boundary_kernel(width: int) -> np.ndarray:
    """Structuring element whose morphological gradient is a line ≈ ``width`` px wide."""
    k = max(1, int(width)) + 1
    shape = cv2.MORPH_RECT if k <= 3 else cv2.MORPH_ELLIPSE
    return cv2.getStructuringElement(shape, (k, k))


def boundary_pixels(mask: np.ndarray, rect: Rect, width: int, color: int) -> tuple[Rect, np.ndarray]:
    """Boundary (pixels whose neighbourhood holds more than one class) around ``rect``.

    A change inside ``rect`` can move boundaries up to the kernel size away, so the returned
    region is ``rect`` grown by that margin; the morphology reads one margin more so the crop
    edges never create false boundaries.
    """
    kernel = boundary_kernel(width)
    margin = int(kernel.shape[0])
    h, w = mask.shape
    out = rect.grown(margin, w, h)
    src = out.grown(margin, w, h)
    crop = mask[src.slices()]
    grad = cv2.morphologyEx(crop, cv2.MORPH_GRADIENT, kernel)
    oy, ox = out.y0 - src.y0, out.x0 - src.x0
    edge = grad[oy:oy + out.height, ox:ox + out.width] != 0
    return out, np.where(edge, np.uint32(color), np.uint32(0))


def diff_pixels(mask: np.ndarray, prediction: np.ndarray | None, rect: Rect,
                added: int, removed: int) -> np.ndarray:
    """Mask vs prediction inside ``rect``: ``added`` where the mask labels a class the
    prediction does not, ``removed`` where a predicted class was erased to background."""
    m = mask[rect.slices()]
    if prediction is None:
        return np.zeros(m.shape, np.uint32)
    p = prediction[rect.slices()]
    out = np.zeros(m.shape, np.uint32)
    out[(m != p) & (m != 0)] = added
    out[(m == 0) & (p != 0)] = removed
    return out
