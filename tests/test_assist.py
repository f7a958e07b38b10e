"""segcore.assist: box → GrabCut, box refinement, scribbles → DenseCRF (synthetic images only)."""

from __future__ import annotations

import numpy as np
import pytest

from segcore import assist
from segcore.assist import NO_SCRIBBLE


def textured_disc(h: int = 160, w: int = 200, seed: int = 0, centre=(100, 80), radius=45):
    """A noisy reddish disc on a noisy green-gray background, and its truth."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    truth = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius ** 2
    img = np.empty((h, w, 3), np.float32)
    img[...] = (90, 120, 95)
    img[truth] = (190, 70, 60)
    img += rng.normal(0, 14, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), truth


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def bbox(m: np.ndarray, pad: int = 0):
    ys, xs = np.nonzero(m)
    return (int(xs.min()) - pad, int(ys.min()) - pad, int(xs.max()) + 1 + pad, int(ys.max()) + 1 + pad)


def test_grabcut_box_finds_the_disc_and_nothing_outside_the_box():
    img, truth = textured_disc()
    rect = bbox(truth, pad=4)
    fg = assist.grabcut_box(img, rect)
    assert fg.shape == truth.shape and fg.dtype == bool
    assert iou(fg, truth) >= 0.9
    outside = np.ones_like(fg)
    outside[rect[1]:rect[3], rect[0]:rect[2]] = False
    assert not fg[outside].any()


def test_grabcut_box_downscales_a_large_crop_and_still_finds_the_object():
    img, truth = textured_disc(900, 1200, centre=(600, 450), radius=300)
    small = assist.GrabCutParams(max_side=128)
    fg = assist.grabcut_box(img, bbox(truth, pad=10), small)
    assert iou(fg, truth) >= 0.9


def test_grabcut_box_at_the_image_border_and_tiny_boxes():
    img, truth = textured_disc(centre=(60, 60), radius=40)
    whole = assist.grabcut_box(img, (0, 0, img.shape[1], img.shape[0]))  # no margin left
    assert iou(whole, truth) >= 0.8
    assert not assist.grabcut_box(img, (10, 10, 12, 40)).any()  # 2 px wide: nothing


def test_apply_box_rule_keeps_other_classes_and_clears_only_the_active_class():
    mask = np.zeros((10, 10), np.uint8)
    mask[2:8, 2:8] = 1       # the active class, too large
    mask[0:3, 0:3] = 2       # another class, partly inside the box
    mask[5, 5] = 255         # void
    fg = np.zeros((10, 10), bool)
    fg[4:6, 4:6] = True
    fg[5, 5] = False
    out = assist.apply_box(mask, (1, 1, 9, 9), fg, active=1)
    assert (out[4:6, 4:6][fg[4:6, 4:6]] == 1).all()
    assert out[2, 2] == 2 and out[1, 1] == 2          # other class inside the box stays
    assert out[5, 5] == 255                           # void stays
    assert out[3, 3] == 0 and out[7, 7] == 0          # active class outside GrabCut's fg → 0
    assert (out[0, :] == mask[0, :]).all() and (out[9, :] == mask[9, :]).all()  # outside box
    assert mask[3, 3] == 1  # input untouched


def test_box_update_is_an_edit_of_the_box_only():
    img, truth = textured_disc()
    mask = np.zeros(truth.shape, np.uint8)
    mask[:5, :5] = 1  # outside the box: must survive
    rect = bbox(truth, pad=4)
    up = assist.box_update(img, mask, rect, active=3)
    assert up.region == rect and up.method == "grabcut"
    new = mask.copy()
    x0, y0, x1, y1 = up.region
    new[y0:y1, x0:x1] = up.pixels
    assert iou(new == 3, truth) >= 0.9
    assert (new[:5, :5] == 1).all()


def test_refine_update_uses_strokes_since_the_box_as_definite_labels():
    # the disc plus a same-coloured "bridge" GrabCut keeps; erasing the bridge once (a stroke
    # since the box) and refining removes it, and the disc stays
    img, truth = textured_disc()
    img[75:85, 140:190] = (190, 70, 60)
    bridge = np.zeros_like(truth)
    bridge[75:85, 146:190] = True
    rect = (50, 30, 192, 130)
    box = assist.box_update(img, np.zeros(truth.shape, np.uint8), rect, active=1)
    mask = np.zeros(truth.shape, np.uint8)
    mask[30:130, 50:192] = box.pixels
    after_box = box.pixels.copy()
    assert (mask[bridge] == 1).mean() > 0.8  # GrabCut took the bridge as object
    mask[78:82, 160:190] = 0                 # one eraser stroke along the bridge
    up = assist.refine_update(img, mask, rect, after_box, active=1)
    new = mask.copy()
    new[30:130, 50:192] = up.pixels
    assert (new[bridge] == 1).mean() < 0.3
    assert iou(new == 1, truth) >= 0.85
    assert (new[78:82, 160:190] == 0).all()  # the stroke itself is honoured


def test_grabcut_refine_ring_prior_keeps_the_mask_outside_the_rect():
    img, truth = textured_disc()
    prior = truth.copy()
    prior[0:10, 0:10] = True  # a blob far away: outside the rect, ring="prior" keeps it
    fg = np.zeros_like(truth)
    fg[80, 100] = True
    out = assist.grabcut_refine(img, (60, 40, 140, 120), prior, fg, None, ring="prior")
    assert out[0:10, 0:10].all()
    assert iou(out, truth | prior) > 0.9


def _wrong_probs(truth: np.ndarray, shift: int) -> np.ndarray:
    """A confident prediction of the truth shifted right by ``shift`` px."""
    p1 = np.roll(truth, shift, axis=1).astype(np.float32) * 0.8 + 0.1
    return np.stack([1 - p1, p1]).astype(np.float32)


def test_scribbles_on_wrong_probabilities_move_the_mask_toward_the_truth():
    pytest.importorskip("pydensecrf.densecrf")
    img, truth = textured_disc()
    probs = _wrong_probs(truth, 30)
    mask = (probs[1] > 0.5).astype(np.uint8)
    before = iou(mask == 1, truth)
    scr = np.full(truth.shape, NO_SCRIBBLE, np.uint8)
    assist.draw_stroke(scr, [(65, 60), (65, 100)], 7, 1)     # missed left part: foreground
    assist.draw_stroke(scr, [(165, 60), (165, 100)], 7, 0)   # false right part: background
    up = assist.scribble_update(img, mask, scr, active=1, probs=probs)
    assert up is not None and up.method == "densecrf"
    new = mask.copy()
    x0, y0, x1, y1 = up.region
    new[y0:y1, x0:x1] = up.pixels
    assert iou(new == 1, truth) > before + 0.1
    marks = scr != NO_SCRIBBLE
    assert (new[marks] == scr[marks]).all()  # scribbles are hard labels


def test_scribble_refine_restricts_itself_to_the_roi():
    pytest.importorskip("pydensecrf.densecrf")
    img, truth = textured_disc()
    probs = _wrong_probs(truth, 30)
    scr = np.full(truth.shape, NO_SCRIBBLE, np.uint8)
    assist.draw_stroke(scr, [(65, 75), (65, 85)], 5, 1)
    roi = assist.scribble_roi(scr)
    assert roi is not None
    x0, y0, x1, y1 = roi
    assert x0 <= 62 and x1 >= 68 and (x1 - x0) < truth.shape[1]  # grown, but not the image
    result = assist.scribble_refine(img, probs, scr)
    assert result is not None and result.roi == roi
    assert result.labels.shape == (y1 - y0, x1 - x0)


def test_scribble_refine_downscaled_roi_matches_the_labels():
    pytest.importorskip("pydensecrf.densecrf")
    img, truth = textured_disc(600, 800, centre=(400, 300), radius=180)
    probs = _wrong_probs(truth, 120)
    mask = (probs[1] > 0.5).astype(np.uint8)
    scr = np.full(truth.shape, NO_SCRIBBLE, np.uint8)
    assist.draw_stroke(scr, [(260, 200), (260, 400)], 15, 1)
    assist.draw_stroke(scr, [(640, 200), (640, 400)], 15, 0)
    params = assist.ScribbleParams(max_side=128)
    up = assist.scribble_update(img, mask, scr, 1, probs=probs, params=params)
    new = mask.copy()
    x0, y0, x1, y1 = up.region
    new[y0:y1, x0:x1] = up.pixels
    assert iou(new == 1, truth) > iou(mask == 1, truth) + 0.05


def test_scribble_update_without_a_model_falls_back_to_grabcut():
    img, truth = textured_disc()
    mask = np.zeros(truth.shape, np.uint8)
    scr = np.full(truth.shape, NO_SCRIBBLE, np.uint8)
    assist.draw_stroke(scr, [(80, 80), (120, 80)], 9, 1)
    assist.draw_stroke(scr, [(10, 10), (190, 10), (190, 150), (10, 150), (10, 10)], 5, 0)
    up = assist.scribble_update(img, mask, scr, active=1, probs=None)
    assert up is not None and up.method == "grabcut-fallback"
    new = mask.copy()
    x0, y0, x1, y1 = up.region
    new[y0:y1, x0:x1] = up.pixels
    assert iou(new == 1, truth) >= 0.8


def test_merge_changes_only_regions_touching_a_scribble():
    cur = np.zeros((20, 40), np.uint8)
    cur[:, 30:] = 2                       # another class (e.g. brush work) on the right
    prop = np.zeros_like(cur)
    prop[5:15, 2:10] = 1                  # a region at the scribble
    prop[5:15, 20:25] = 1                 # a region away from any scribble
    scr = np.full(cur.shape, NO_SCRIBBLE, np.uint8)
    scr[8:10, 4:6] = 1
    out = assist.merge_scribble_update(cur, prop, scr, active=1)
    assert (out[5:15, 2:10] == 1).all()
    assert (out[5:15, 20:25] == 0).all()  # not touched by a scribble: unchanged
    assert (out[:, 30:] == 2).all()       # another class is left alone


def test_scribble_label_beyond_the_model_is_refused():
    pytest.importorskip("pydensecrf.densecrf")
    img, truth = textured_disc()
    scr = np.full(truth.shape, NO_SCRIBBLE, np.uint8)
    scr[50:52, 50:52] = 4
    with pytest.raises(ValueError, match="not a class of the model"):
        assist.scribble_refine(img, _wrong_probs(truth, 5), scr)
    assert assist.scribble_update(img, np.zeros(truth.shape, np.uint8),
                                  np.full(truth.shape, NO_SCRIBBLE, np.uint8), 1) is None


def test_draw_stroke_touches_only_its_box():
    labels = np.full((50, 60), NO_SCRIBBLE, np.uint8)
    box = assist.draw_stroke(labels, [(10, 10), (30, 12)], 5, 1)
    assert box is not None
    x0, y0, x1, y1 = box
    marked = labels != NO_SCRIBBLE
    assert marked[10, 20] and marked[12, 30] and not marked[30, 30]
    inside = np.zeros_like(marked)
    inside[y0:y1, x0:x1] = True
    assert not (marked & ~inside).any()
    assert assist.draw_stroke(labels, [(-50, -50)], 3, 1) is None
