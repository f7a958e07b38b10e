"""Assisted masks without SAM-type weights: box → GrabCut, scribbles → DenseCRF on the model.

No Qt here; ``app/canvas/assist.py`` wires these to the canvas tools, and
``tests/benchmarks/bench_assist.py`` scores them with a simulated clicker.

Conventions
-----------
* ``image_rgb`` is HxWx3 uint8 RGB; rectangles are ``(x0, y0, x1, y1)`` in image pixels,
  half-open (x1, y1 exclusive), like the canvas's ``Rect``.
* Every function works on a crop around its rectangle (never on the whole image) and, when
  that crop's long side exceeds ``max_side``, on a downscaled copy whose result is upsampled
  (bilinear on the soft result, then thresholded / argmax), so a 12 MP photo costs what a
  0.25 MP crop costs.
* Scribbles are a label map the size of the image: class index where the user drew,
  :data:`NO_SCRIBBLE` (255, the void value) elsewhere.

The rules for what an assist may change in a mask (``apply_box`` and ``merge_scribble_update``)
live here too, so the app and the benchmark use one rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .crf import CRFParams, crf_available
from .errors import CRFUnavailableError

__all__ = ["NO_SCRIBBLE", "GrabCutParams", "ScribbleParams", "ScribbleResult", "apply_box",
           "box_update", "draw_stroke", "grabcut_box", "grabcut_refine", "merge_scribble_update",
           "refine_update", "roi_around", "scribble_refine", "scribble_roi", "scribble_update"]

Box = tuple[int, int, int, int]
NO_SCRIBBLE = 255
#: a scribbled pixel's probability of its own label (the rest is shared by the other classes)
_CLAMP = 1.0 - 1e-4
_PROB_FLOOR = 1e-6


@dataclass(frozen=True)
class GrabCutParams:
    """``margin``: context around the box, as a fraction of its longer side (at least
    ``min_margin`` px): GrabCut learns its background colours from this ring. ``max_side``:
    the crop is downscaled to this long side before ``cv2.grabCut`` (GrabCut is O(pixels ×
    iterations)). Measured on a PH2 lesion box (686×572 crop, 2 busy cores): 384 px with 3
    iterations took 0.39 s for IoU 0.956; 512 px / 5 iterations 1.2 s for 0.948; 256 px / 3
    iterations 0.12 s for 0.929."""

    iterations: int = 3
    margin: float = 0.15
    min_margin: int = 12
    max_side: int = 384


@dataclass(frozen=True)
class ScribbleParams:
    """DenseCRF on the model's probabilities around the scribbles.

    ``margin``: the ROI is the scribbles' bounding box grown by this fraction of its longer
    side (at least ``min_margin`` px); a wide ROI costs little (the CRF runs at ``max_side``)
    and keeps the ROI's straight edges away from where the strokes change the mask.
    ``max_side``: the ROI's CRF runs at most at this long side. ``temperature`` > 1 flattens
    the model's probabilities (p^(1/T), renormalised) before the unary, so a confident but
    wrong prediction can be overruled near the strokes by the pairwise terms.
    ``colour_weight`` > 0 multiplies in a colour model of the ROI (per-class colour
    histograms, pixels weighted by the model's probabilities and scribbled pixels
    ``colour_weight`` times more for their label, raised to ``colour_power``): a stroke on a
    missed part pulls in the pixels of its colour. ``crf`` holds the kernel widths
    (full-resolution pixels) and the number of mean-field iterations.
    """

    margin: float = 1.0
    min_margin: int = 48
    max_side: int = 320
    temperature: float = 5.0
    colour_weight: float = 50.0
    colour_power: float = 1.0
    crf: CRFParams = CRFParams(iterations=5, bilateral_sxy=40.0, bilateral_srgb=10.0,
                               bilateral_compat=6.0, gaussian_compat=3.0, max_side=None)


# ---- geometry -------------------------------------------------------------------------------

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


# ---- GrabCut ---------------------------------------------------------------------------------

def _run_grabcut(crop: np.ndarray, gc_mask: np.ndarray, iterations: int) -> np.ndarray | None:
    """Soft foreground (float32 0/1) of ``cv2.grabCut`` in mask mode, or None when GrabCut
    cannot start (no foreground or no background samples)."""
    labels = gc_mask.copy()
    fg = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    if not fg.any() or fg.all():
        return None
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(np.ascontiguousarray(crop), labels, (0, 0, 0, 0), bgd, fgd,  # rect unused
                    int(max(1, iterations)), cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return None
    return ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.float32)


def grabcut_box(image_rgb: np.ndarray, rect: Box, params: GrabCutParams | None = None) -> np.ndarray:
    """Bool HxW foreground of the object inside ``rect`` by ``cv2.grabCut``.

    GrabCut runs on the box grown by ``params.margin`` (its background model is learnt from
    that ring; at the image border the ring is what is left), downscaled to ``max_side``;
    its labels are upsampled bilinearly and thresholded at 0.5. Nothing outside ``rect`` is
    ever foreground. A box under 3 px on a side gives an empty mask.
    """
    p = params or GrabCutParams()
    img = _check_image(image_rgb)
    h, w = img.shape[:2]
    out = np.zeros((h, w), bool)
    box = _clip(rect, w, h)
    if box[2] - box[0] < 3 or box[3] - box[1] < 3:
        return out
    crop_box = _grow(box, _margin(box, p.margin, p.min_margin), w, h)
    cx0, cy0, cx1, cy1 = crop_box
    gc = np.full((cy1 - cy0, cx1 - cx0), cv2.GC_BGD, np.uint8)
    gc[box[1] - cy0:box[3] - cy0, box[0] - cx0:box[2] - cx0] = cv2.GC_PR_FGD
    if not (gc == cv2.GC_BGD).any():  # the box is the whole image: its 1-px rim is the context
        gc[0, :] = gc[-1, :] = gc[:, 0] = gc[:, -1] = cv2.GC_BGD
    soft = _grabcut_crop(img[cy0:cy1, cx0:cx1], gc, p)
    if soft is None:
        return out
    inside = np.zeros_like(soft, bool)
    inside[box[1] - cy0:box[3] - cy0, box[0] - cx0:box[2] - cx0] = True
    out[cy0:cy1, cx0:cx1] = (soft >= 0.5) & inside
    return out


def _grabcut_crop(crop: np.ndarray, gc: np.ndarray, p: GrabCutParams) -> np.ndarray | None:
    ch, cw = gc.shape
    scale = _scale_for(cw, ch, p.max_side)
    if scale < 1.0:
        small = _down(crop, scale, cv2.INTER_AREA)
        sh, sw = small.shape[:2]
        labels = cv2.resize(gc, (sw, sh), interpolation=cv2.INTER_NEAREST)
        # definite seeds must survive the downscale (thin strokes): put them back on top
        for value in (cv2.GC_BGD, cv2.GC_FGD):
            seed = gc == value
            if seed.any() and not seed.all():
                labels[_down_bool(seed, scale)] = value
        soft = _run_grabcut(small, labels, p.iterations)
        return None if soft is None else _up_soft(soft, cw, ch)
    return _run_grabcut(crop, gc, p.iterations)


def grabcut_refine(image_rgb: np.ndarray, rect: Box, prior: np.ndarray,
                   fg: np.ndarray | None = None, bg: np.ndarray | None = None,
                   params: GrabCutParams | None = None, ring: str = "background") -> np.ndarray:
    """Bool HxW foreground after GrabCut in mask mode (``GC_INIT_WITH_MASK``) inside ``rect``.

    Inside ``rect``: ``prior`` (bool HxW, e.g. the current mask of the active class) gives
    *probable* foreground / background, ``fg`` / ``bg`` (bool HxW strokes) *definite* ones.
    The ring around ``rect`` (``params.margin``) is context: ``ring="background"`` makes it
    definite background (the box refinement: the object is inside its box);
    ``ring="prior"`` makes it definite ``prior`` (scribbles without a model: the mask outside
    the ROI is kept and both colour models get samples). Outside ``rect`` the result equals
    ``prior`` (``ring="prior"``) or False (``"background"``); strokes are always honoured.
    When GrabCut cannot run (one label only), the prior with the strokes painted on is returned.
    """
    p = params or GrabCutParams()
    img = _check_image(image_rgb)
    h, w = img.shape[:2]
    prior = np.asarray(prior, bool)
    if prior.shape != (h, w):
        raise ValueError(f"prior mask shape {prior.shape} does not match the image ({h}, {w})")
    fg = np.zeros((h, w), bool) if fg is None else np.asarray(fg, bool)
    bg = np.zeros((h, w), bool) if bg is None else np.asarray(bg, bool)
    box = _clip(rect, w, h)
    out = prior.copy() if ring == "prior" else np.zeros((h, w), bool)
    if ring == "background":
        out[box[1]:box[3], box[0]:box[2]] = prior[box[1]:box[3], box[0]:box[2]]
    if box[2] - box[0] < 2 or box[3] - box[1] < 2:
        out[fg], out[bg] = True, False
        return out
    crop_box = _grow(box, _margin(box, p.margin, p.min_margin), w, h)
    cx0, cy0, cx1, cy1 = crop_box
    sl = (slice(cy0, cy1), slice(cx0, cx1))
    pr = prior[sl]
    if ring == "prior":
        gc = np.where(pr, cv2.GC_FGD, cv2.GC_BGD).astype(np.uint8)
    else:
        gc = np.full(pr.shape, cv2.GC_BGD, np.uint8)
    inner = (slice(box[1] - cy0, box[3] - cy0), slice(box[0] - cx0, box[2] - cx0))
    gc[inner] = np.where(pr[inner], cv2.GC_PR_FGD, cv2.GC_PR_BGD)
    gc[fg[sl]] = cv2.GC_FGD
    gc[bg[sl]] = cv2.GC_BGD
    soft = _grabcut_crop(img[sl], gc, p)
    if soft is not None:
        region = out[sl]
        region[inner] = soft[inner] >= 0.5
    out[fg], out[bg] = True, False
    return out


def apply_box(mask: np.ndarray, rect: Box, foreground: np.ndarray, active: int) -> np.ndarray:
    """The mask after a box: inside ``rect``, GrabCut's foreground becomes ``active``; its
    background becomes 0 only where the pixel held ``active`` (a box redrawn over a too large
    mask of this class shrinks it), other classes and void stay. Outside ``rect`` nothing
    changes. Returns a new array."""
    out = np.array(mask, np.uint8, copy=True)
    h, w = out.shape
    x0, y0, x1, y1 = _clip(rect, w, h)
    region = out[y0:y1, x0:x1]
    fg = np.asarray(foreground, bool)[y0:y1, x0:x1]
    region[~fg & (region == active)] = 0
    region[fg] = active
    return out


# ---- scribbles on the model's probabilities -------------------------------------------------

@dataclass
class ScribbleResult:
    """``roi`` (x0, y0, x1, y1) and the CRF's class labels inside it (uint8, ROI-sized)."""

    roi: Box
    labels: np.ndarray


def scribble_roi(scribbles: np.ndarray, params: ScribbleParams | None = None) -> Box | None:
    """The scribbles' bounding box grown by the margin, clipped; None without scribbles."""
    marks = np.asarray(scribbles) != NO_SCRIBBLE
    box = _bbox(marks)
    return None if box is None else roi_around(box, marks.shape, params)


def roi_around(box: Box, shape: tuple[int, int], params: ScribbleParams | None = None) -> Box:
    """``box`` (the strokes' bounding box) grown by the ROI margin, clipped to ``shape``."""
    p = params or ScribbleParams()
    return _grow(box, _margin(box, p.margin, p.min_margin), int(shape[1]), int(shape[0]))


_BINS = 12  # colour histogram bins per channel (the scribbles' colour model)


def _colour_likelihood(crop: np.ndarray, probs: np.ndarray, scribbles: np.ndarray,
                       scribble_weight: float) -> np.ndarray:
    """CxHxW p(colour | class) / Σ: per-class colour histograms of the ROI, each pixel counted
    with the model's probability of the class and each scribbled pixel ``scribble_weight``
    times for its label (so the strokes teach the colours of what they mark), smoothed."""
    c = probs.shape[0]
    bins = (crop.astype(np.int32) * _BINS) // 256
    flat = ((bins[..., 0] * _BINS + bins[..., 1]) * _BINS + bins[..., 2]).ravel()
    marks = scribbles.ravel()
    out = np.empty((c, flat.size), np.float32)
    for k in range(c):
        weights = probs[k].ravel().astype(np.float64) + scribble_weight * (marks == k)
        hist = np.bincount(flat, weights, minlength=_BINS ** 3).reshape(_BINS, _BINS, _BINS)
        for axis in range(3):  # [1 2 1] / 4 along each colour axis
            padded = np.pad(hist, [(1, 1) if a == axis else (0, 0) for a in range(3)])
            lo = np.take(padded, range(0, _BINS), axis=axis)
            hi = np.take(padded, range(2, _BINS + 2), axis=axis)
            hist = 0.5 * hist + 0.25 * (lo + hi)
        table = hist.ravel() / max(float(hist.sum()), 1e-9)
        out[k] = table[flat] + 1e-6
    out /= out.sum(axis=0, keepdims=True)
    return out.reshape(c, *crop.shape[:2])


def _clamped_probs(probs: np.ndarray, scribbles: np.ndarray, temperature: float,
                   colour: np.ndarray | None = None) -> np.ndarray:
    c = probs.shape[0]
    p = np.clip(probs.astype(np.float32, copy=False), _PROB_FLOOR, 1.0)
    if temperature != 1.0:
        p = p ** np.float32(1.0 / temperature)
    if colour is not None:
        p = p * colour
    p = p / p.sum(axis=0, keepdims=True)
    marked = scribbles != NO_SCRIBBLE
    if marked.any():
        other = (1.0 - _CLAMP) / max(1, c - 1)
        ys, xs = np.nonzero(marked)
        labels = scribbles[ys, xs].astype(np.intp)
        p[:, ys, xs] = other
        p[labels, ys, xs] = _CLAMP
    return p


def scribble_refine(image_rgb: np.ndarray, probs: np.ndarray, scribbles: np.ndarray,
                    roi: Box | None = None, params: ScribbleParams | None = None) -> ScribbleResult | None:
    """DenseCRF labels inside the ROI: the model's probabilities (flattened by
    ``temperature``) as the unary, scribbled pixels clamped to their label (probability
    1 - 1e-4) and forced to it in the result.

    ``probs`` is CxHxW (sum 1 over C, the Predictor's output), ``scribbles`` HxW uint8 class
    indices with :data:`NO_SCRIBBLE` elsewhere (labels must be < C). ``roi`` defaults to
    :func:`scribble_roi`. The CRF runs on the ROI downscaled to ``max_side``; its
    probabilities are upsampled bilinearly before the argmax. None without scribbles.
    Raises CRFUnavailableError without pydensecrf, ValueError on mismatched shapes.
    """
    p = params or ScribbleParams()
    img = _check_image(image_rgb)
    h, w = img.shape[:2]
    probs = np.asarray(probs)
    scribbles = np.asarray(scribbles, np.uint8)
    if probs.ndim != 3 or probs.shape[1:] != (h, w) or probs.shape[0] < 2:
        raise ValueError(f"probabilities must be CxHxW with C >= 2 and H, W = {h}, {w}, got {probs.shape}")
    if scribbles.shape != (h, w):
        raise ValueError(f"scribbles shape {scribbles.shape} does not match the image ({h}, {w})")
    marked = scribbles != NO_SCRIBBLE
    if marked.any() and int(scribbles[marked].max()) >= probs.shape[0]:
        raise ValueError(f"scribble label {int(scribbles[marked].max())} is not a class of the "
                         f"model ({probs.shape[0]} classes)")
    roi = roi if roi is not None else scribble_roi(scribbles, p)
    if roi is None:
        return None
    x0, y0, x1, y1 = _clip(roi, w, h)
    ok, reason = crf_available()
    if not ok:
        raise CRFUnavailableError(reason)
    import pydensecrf.densecrf as dcrf

    sl = (slice(y0, y1), slice(x0, x1))
    rw, rh = x1 - x0, y1 - y0
    scale = _scale_for(rw, rh, p.max_side)
    crop = img[sl]
    sc = scribbles[sl]
    pr = probs[:, y0:y1, x0:x1]
    if scale < 1.0:
        crop = _down(crop, scale, cv2.INTER_AREA)
        sh, sw = crop.shape[:2]
        pr = np.stack([cv2.resize(np.ascontiguousarray(ch, np.float32), (sw, sh),
                                  interpolation=cv2.INTER_AREA) for ch in pr])
        small = np.full((sh, sw), NO_SCRIBBLE, np.uint8)
        for label in np.unique(sc[sc != NO_SCRIBBLE]):
            small[_down_bool(sc == label, scale)] = label
        sc = small
    colour = None
    if p.colour_weight > 0:
        colour = _colour_likelihood(crop, pr, sc, p.colour_weight) ** np.float32(p.colour_power)
    q = _clamped_probs(pr, sc, p.temperature, colour)
    c, sh, sw = q.shape
    d = dcrf.DenseCRF2D(sw, sh, c)
    d.setUnaryEnergy(np.ascontiguousarray(-np.log(q).reshape(c, -1), dtype=np.float32))
    cp = p.crf
    d.addPairwiseGaussian(sxy=cp.gaussian_sxy * scale, compat=cp.gaussian_compat)
    d.addPairwiseBilateral(sxy=cp.bilateral_sxy * scale, srgb=cp.bilateral_srgb,
                           rgbim=np.array(crop, np.uint8, order="C"), compat=cp.bilateral_compat)
    out = np.asarray(d.inference(int(cp.iterations)), np.float32).reshape(c, sh, sw)
    if scale < 1.0:
        out = np.stack([_up_soft(ch, rw, rh) for ch in out])
    labels = out.argmax(axis=0).astype(np.uint8)
    full_marks = scribbles[sl] != NO_SCRIBBLE
    labels[full_marks] = scribbles[sl][full_marks]
    return ScribbleResult((x0, y0, x1, y1), labels)


def merge_scribble_update(current: np.ndarray, proposed: np.ndarray, scribbles: np.ndarray,
                          active: int) -> np.ndarray:
    """What the scribbles may change (all arrays the same size, e.g. the ROI).

    A pixel changes only if it lies in a connected (8-neighbour) region of ``proposed !=
    current`` that touches a scribble, so a stroke fixes the error it is drawn on and never
    reverts brush work elsewhere in the ROI; in a changed pixel the new label is ``active``
    where ``proposed`` says ``active``, else ``proposed``'s label when the pixel held
    ``active`` (it is removed from the class), else it stays (other classes and void are
    left alone unless scribbled). Scribbled pixels always take their scribble's label.
    """
    cur = np.asarray(current, np.uint8)
    prop = np.asarray(proposed, np.uint8)
    marks = np.asarray(scribbles) != NO_SCRIBBLE
    new = np.where(prop == active, np.uint8(active), np.where(cur == active, prop, cur)).astype(np.uint8)
    changed = (new != cur).astype(np.uint8)
    out = cur.copy()
    if changed.any():
        n, comp = cv2.connectedComponents(changed, connectivity=8)
        near = cv2.dilate(marks.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2) > 0
        touched = np.unique(comp[near & (changed > 0)])
        keep = np.isin(comp, touched[touched > 0])
        out[keep] = new[keep]
    out[marks] = np.asarray(scribbles)[marks]
    return out


# ---- whole edits: what the app applies and the benchmark scores ------------------------------

@dataclass
class Update:
    """A proposed edit: write ``pixels`` into ``region`` (x0, y0, x1, y1) of the mask.
    ``method`` says what made it ("grabcut", "densecrf", "grabcut-fallback")."""

    region: Box
    pixels: np.ndarray
    method: str


def box_update(image_rgb: np.ndarray, mask: np.ndarray, rect: Box, active: int,
               params: GrabCutParams | None = None) -> Update:
    """A box: :func:`grabcut_box`, then :func:`apply_box`'s rule, as an edit of ``rect``."""
    h, w = mask.shape
    rect = _clip(rect, w, h)
    fg = grabcut_box(image_rgb, rect, params)
    x0, y0, x1, y1 = rect
    sub = (slice(y0, y1), slice(x0, x1))
    pixels = apply_box(mask[sub], (0, 0, x1 - x0, y1 - y0), fg[sub], active)
    return Update(rect, pixels, "grabcut")


def refine_update(image_rgb: np.ndarray, mask: np.ndarray, rect: Box, after_box: np.ndarray,
                  active: int, params: GrabCutParams | None = None) -> Update:
    """Box refinement with GrabCut's mask mode: inside ``rect`` the current mask of ``active``
    is the probable foreground / background, and what was painted since the box
    (``after_box``: the mask inside ``rect`` right after it) is definite: pixels that became
    ``active`` are foreground, pixels that stopped being ``active`` background. The ring
    around the box is definite background. Applied with :func:`apply_box`'s rule."""
    h, w = mask.shape
    rect = _clip(rect, w, h)
    x0, y0, x1, y1 = rect
    sub = (slice(y0, y1), slice(x0, x1))
    if after_box.shape != mask[sub].shape:
        raise ValueError(f"the mask after the box has shape {after_box.shape}, the box is "
                         f"{mask[sub].shape}")
    now = mask == active
    fg = np.zeros_like(now)
    bg = np.zeros_like(now)
    fg[sub] = now[sub] & (after_box != active)
    bg[sub] = ~now[sub] & (after_box == active)
    result = grabcut_refine(image_rgb, rect, now, fg, bg, params, ring="background")
    pixels = apply_box(mask[sub], (0, 0, x1 - x0, y1 - y0), result[sub], active)
    return Update(rect, pixels, "grabcut")


#: how often a DenseCRF edit that runs into its ROI's edge is redone on a ROI twice the size
GROW_TRIES = 1


def _cut_by_roi(changed: np.ndarray, box: Box, w: int, h: int) -> bool:
    """Does the change touch an edge of ``box`` that is not the image's edge?"""
    x0, y0, x1, y1 = box
    return bool((x0 > 0 and changed[:, 0].any()) or (x1 < w and changed[:, -1].any())
                or (y0 > 0 and changed[0].any()) or (y1 < h and changed[-1].any()))


def scribble_update(image_rgb: np.ndarray, mask: np.ndarray, scribbles: np.ndarray, active: int,
                    probs: np.ndarray | None = None, roi: Box | None = None,
                    params: ScribbleParams | None = None,
                    grabcut: GrabCutParams | None = None) -> Update | None:
    """Scribbles → an edit of the ROI (default :func:`scribble_roi`).

    With ``probs`` (the model's CxHxW probabilities, ``active`` < C, pydensecrf present):
    :func:`scribble_refine` (method "densecrf"). Otherwise GrabCut in mask mode on the ROI
    with the current mask of ``active`` as probable labels, the mask around the ROI as
    definite context and the scribbles as definite seeds (method "grabcut-fallback").
    Either proposal goes through :func:`merge_scribble_update`. When the DenseCRF edit runs
    into an edge of the ROI (it would end in a straight cut), it is redone once on the ROI
    grown by half its size on every side (GROW_TRIES). None without scribbles.
    """
    p = params or ScribbleParams()
    h, w = mask.shape
    roi = roi if roi is not None else scribble_roi(scribbles, p)
    if roi is None:
        return None
    box = _clip(roi, w, h)
    if probs is not None and active < probs.shape[0] and crf_available()[0]:
        for attempt in range(1 + GROW_TRIES):
            sub = (slice(box[1], box[3]), slice(box[0], box[2]))
            result = scribble_refine(image_rgb, probs, scribbles, box, p)
            if result is None:
                break
            pixels = merge_scribble_update(mask[sub], result.labels, scribbles[sub], active)
            if attempt == GROW_TRIES or not _cut_by_roi(pixels != mask[sub], box, w, h):
                return Update(box, pixels, "densecrf")
            # the change runs into the ROI's edge: the edit would end in a straight cut
            box = roi_around(box, (h, w), ScribbleParams(margin=0.5, min_margin=0))
    x0, y0, x1, y1 = box
    sub = (slice(y0, y1), slice(x0, x1))
    marks = np.asarray(scribbles) != NO_SCRIBBLE
    fg = marks & (scribbles == active)
    bg = marks & (scribbles != active)
    fg_result = grabcut_refine(image_rgb, box, mask == active, fg, bg, grabcut, ring="prior")[sub]
    cur = mask[sub]
    proposed = np.where(fg_result, np.uint8(active),
                        np.where(cur == active, np.uint8(0), cur)).astype(np.uint8)
    pixels = merge_scribble_update(cur, proposed, scribbles[sub], active)
    method = "grabcut-fallback"
    return Update(box, pixels, method)
