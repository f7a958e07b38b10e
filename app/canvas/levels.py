"""Display-only brightness / contrast (window / level) of the photo, and a contrasting mask colour.

Nothing here touches image data or masks: :func:`levels_lut` gives a 256-entry lookup table the
canvas applies to the pixmaps it draws. Brightness and contrast run from -100 to 100 (0, 0 =
the image as it is); they define a window [low, high] of input values stretched to 0..255:
centre = 127.5 - 1.275·brightness, width = 255 / 2^(contrast / 25) (contrast 100 = a 16× gain).
No Qt here.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

LEVEL_RANGE = 100


def window(brightness: float, contrast: float) -> tuple[float, float]:
    """The input range [low, high] shown as black..white."""
    centre = 127.5 - 1.275 * float(brightness)
    width = 255.0 / 2.0 ** (float(contrast) / 25.0)
    return centre - width / 2, centre + width / 2


def levels_lut(brightness: float, contrast: float) -> np.ndarray | None:
    """uint8[256] lookup table, or None for the identity (0, 0)."""
    if not brightness and not contrast:
        return None
    low, high = window(brightness, contrast)
    x = np.arange(256, dtype=np.float32)
    return np.clip(np.rint((x - low) * 255.0 / max(high - low, 1e-3)), 0, 255).astype(np.uint8)


def auto_levels(rgb: np.ndarray, low_pct: float = 1.0, high_pct: float = 99.0) -> tuple[int, int]:
    """Brightness and contrast that stretch the image's 1st..99th percentile of gray to the full
    range (for dim or low-contrast images), rounded to the sliders' integer steps."""
    small = _small(rgb)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    lo, hi = np.percentile(gray, [low_pct, high_pct])
    width = max(float(hi - lo), 4.0)
    contrast = 25.0 * math.log2(255.0 / width)
    brightness = (127.5 - (lo + hi) / 2) / 1.275
    clamp = lambda v: int(max(-LEVEL_RANGE, min(LEVEL_RANGE, round(v))))
    return clamp(brightness), clamp(contrast)


# --------------------------------------------------------------------------- mask colour

# candidates for the binary class's colour, all saturated and far apart; the first is the default
# (not yellow: the boundary line's colour; not the diff layer's green)
MASK_CANDIDATES: tuple[tuple[int, int, int], ...] = (
    (255, 64, 64),    # red
    (0, 200, 255),    # cyan
    (60, 110, 255),   # blue
    (255, 50, 210),   # magenta
)


def contrast_color(rgb: np.ndarray,
                   candidates: tuple[tuple[int, int, int], ...] = MASK_CANDIDATES) -> tuple[int, int, int]:
    """The candidate that stands out most from the image: the largest 10th-percentile CIELAB
    distance to the image's pixels (so a colour close to any sizeable part of the image — e.g.
    red on brown objects — loses)."""
    small = _small(rgb).astype(np.float32) / 255.0
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).reshape(-1, 3)
    best, best_score = candidates[0], -1.0
    for cand in candidates:
        c = cv2.cvtColor(np.array([[cand]], np.float32) / 255.0, cv2.COLOR_RGB2LAB).reshape(3)
        score = float(np.percentile(np.linalg.norm(lab - c, axis=1), 10))
        if score > best_score + 1e-6:
            best, best_score = cand, score
    return tuple(int(v) for v in best)  # type: ignore[return-value]


def _small(rgb: np.ndarray, side: int = 96) -> np.ndarray:
    rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    h, w = rgb.shape[:2]
    scale = min(1.0, side / max(h, w, 1))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                         interpolation=cv2.INTER_AREA)
    return rgb
