"""Scribbles → DenseCRF on the model's probabilities (GrabCut seeds without a model)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from ..crf import CRFParams, crf_available, mean_field
from ..errors import CRFUnavailableError
from ._geometry import (NO_SCRIBBLE, Box, Update, _bbox, _check_image, _clip, _down, _down_bool,
                        _grow, _margin, _scale_for, _up_soft)
from .grabcut import GrabCutParams, grabcut_refine

#: a scribbled pixel's probability of its own label (the rest is shared by the other classes)
_CLAMP = 1.0 - 1e-4
_PROB_FLOOR = 1e-6


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
    cp = p.crf
    out = mean_field(np.ascontiguousarray(crop, np.uint8), q,
                     replace(cp, gaussian_sxy=cp.gaussian_sxy * scale, bilateral_sxy=cp.bilateral_sxy * scale))
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

