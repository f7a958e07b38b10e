"""segcore.crf: DenseCRF sharpens a blurred prediction; bad input and a missing pydensecrf; the
project's on/off decision on its held-out images."""

from __future__ import annotations

import importlib.util
import sys

import cv2
import numpy as np
import pytest

import segcore.crf as crf
from segcore.crf import CRFParams, crf_available, refine
from segcore.errors import CRFUnavailableError
from segcore.metrics import boundary_iou, foreground_iou, segmentation_scores

needs_crf = pytest.mark.skipif(not crf_available()[0], reason=str(crf_available()[1]))


def _star(h: int, w: int, cx: float, cy: float, r_out: float, r_in: float) -> np.ndarray:
    angles = np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, r_out, r_in)
    pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
    return np.round(pts).astype(np.int32)


def _scene(h: int = 120, w: int = 160, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A bright ellipse + star (class 1) on a textured dark background; returns image, mask."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 2)
    bg = 40 + 15 * noise + 20 * np.linspace(0, 1, w, dtype=np.float32)[None, :]
    img = np.repeat(bg[..., None], 3, axis=2)
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 3, h // 2), (w // 6, h // 4), 20, 0, 360, 1, -1)
    cv2.fillPoly(mask, [_star(h, w, 2 * w / 3, h / 2, h / 5, h / 10)], 1)
    n = int(mask.sum())
    img[mask == 1] = np.array([200, 170, 90]) + rng.normal(0, 8, (n, 3))
    return np.clip(img, 0, 255).astype(np.uint8), mask


def _blurred_probs(mask: np.ndarray, k: int = 9, sigma: float = 5.0) -> np.ndarray:
    """A deliberately bad prediction: the mask dilated by k//2 px, blurred, low confidence."""
    dil = cv2.dilate(mask, np.ones((k, k), np.uint8))
    fg = 0.1 + 0.8 * cv2.GaussianBlur(dil.astype(np.float32), (0, 0), sigma)
    return np.stack([1 - fg, fg]).astype(np.float32)


def test_crf_available_here() -> None:
    ok, reason = crf_available()
    assert ok, reason
    assert reason is None


@needs_crf
def test_refine_sharpens_blurred_prediction() -> None:
    img, mask = _scene()
    probs = _blurred_probs(mask)
    before = probs.argmax(0).astype(np.uint8)
    out = refine(img, probs)
    assert out.shape == probs.shape and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(0), 1.0, atol=1e-4)
    after = out.argmax(0).astype(np.uint8)
    iou0, iou1 = foreground_iou(mask, before), foreground_iou(mask, after)
    biou0, biou1 = boundary_iou(mask, before), boundary_iou(mask, after)
    assert iou0 < 0.8 and biou0 < 0.3  # the input really is bad
    assert iou1 > iou0 + 0.15
    assert biou1 > biou0 + 0.4
    assert iou1 > 0.95


@needs_crf
def test_refine_with_max_side_keeps_most_of_the_gain() -> None:
    img, mask = _scene(240, 320)
    probs = _blurred_probs(mask)
    before = probs.argmax(0).astype(np.uint8)
    out = refine(img, probs, CRFParams(max_side=160))
    assert out.shape == probs.shape
    after = out.argmax(0).astype(np.uint8)
    assert foreground_iou(mask, after) > foreground_iou(mask, before) + 0.02
    assert boundary_iou(mask, after) > boundary_iou(mask, before) + 0.1


@needs_crf
def test_refine_three_classes() -> None:
    h, w = 120, 160
    img, mask = _scene(h, w, seed=3)
    labels = mask.copy()
    labels[:, w // 2 :] *= 2  # the star (right half) is class 2, the ellipse class 1
    img[labels == 2] = (60, 110, 220)  # a different colour for class 2
    one_hot = np.stack([labels == c for c in range(3)]).astype(np.uint8)
    probs = np.stack(
        [cv2.GaussianBlur(cv2.dilate(ch, np.ones((7, 7), np.uint8)).astype(np.float32), (0, 0), 4)
         for ch in one_hot]
    ) + 0.05
    probs = (probs / probs.sum(0, keepdims=True)).astype(np.float32)
    before = segmentation_scores(labels, probs.argmax(0), 3)["miou"]
    out = refine(img, probs)
    assert out.shape == (3, h, w)
    np.testing.assert_allclose(out.sum(0), 1.0, atol=1e-4)
    after = segmentation_scores(labels, out.argmax(0), 3)["miou"]
    assert after > before + 0.05


@needs_crf
def test_refine_clips_zero_probabilities() -> None:
    img, mask = _scene(40, 50)
    probs = np.stack([1 - mask, mask]).astype(np.float32)  # exact zeros: -log would be inf
    out = refine(img, probs, CRFParams(iterations=2))
    assert np.isfinite(out).all()
    assert (out.argmax(0) == mask).mean() > 0.95


@pytest.mark.parametrize(
    "image_shape, probs_shape, word",
    [
        ((20, 30, 3), (2, 20, 31), r"expected \(C, 20, 30\), got \(2, 20, 31\)"),
        ((20, 30, 3), (1, 20, 30), "C >= 2"),
        ((20, 30, 3), (20, 30), "CxHxW"),
        ((20, 30), (2, 20, 30), "HxWx3"),
        ((20, 30, 4), (2, 20, 30), "HxWx3"),
    ],
)
def test_wrong_shapes_raise_value_error(image_shape, probs_shape, word) -> None:
    image = np.zeros(image_shape, np.uint8)
    probs = np.full(probs_shape, 0.5, np.float32)
    with pytest.raises(ValueError, match=word):
        refine(image, probs)


def test_wrong_dtypes_raise_value_error() -> None:
    with pytest.raises(ValueError, match="uint8"):
        refine(np.zeros((4, 4, 3), np.float32), np.full((2, 4, 4), 0.5, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        refine(np.zeros((4, 4, 3), np.uint8), np.full((2, 4, 4), np.nan, np.float32))


def test_unavailable_raises_crf_unavailable(monkeypatch) -> None:
    def broken() -> None:
        raise ImportError("No module named 'pydensecrf'")

    monkeypatch.setattr(crf, "_import_dcrf", broken)
    ok, reason = crf.crf_available()
    assert not ok
    assert "pydensecrf" in reason
    with pytest.raises(CRFUnavailableError, match="pydensecrf"):
        crf.refine(np.zeros((4, 4, 3), np.uint8), np.full((2, 4, 4), 0.5, np.float32))


def test_module_imports_without_pydensecrf(monkeypatch) -> None:
    # Block pydensecrf entirely and load a fresh copy of segcore/crf.py.
    for name in list(sys.modules):
        if name == "pydensecrf" or name.startswith("pydensecrf."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pydensecrf", None)
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)
    spec = importlib.util.spec_from_file_location("segcore._crf_without_pydensecrf", crf.__file__)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    ok, reason = module.crf_available()
    assert not ok and "pydensecrf" in reason
    with pytest.raises(CRFUnavailableError):
        module.refine(np.zeros((4, 4, 3), np.uint8), np.full((2, 4, 4), 0.5, np.float32))


def test_read_only_image_is_accepted():
    """Arrays from segcore.io may be read-only views; pydensecrf needs a writable buffer."""
    from segcore.crf import crf_available, refine

    if not crf_available()[0]:
        pytest.skip("pydensecrf not importable here")
    image = np.zeros((20, 30, 3), np.uint8)
    image[5:15, 10:20] = 200
    image.setflags(write=False)
    probs = np.full((2, 20, 30), 0.5, np.float32)
    out = refine(image, probs)
    assert out.shape == (2, 20, 30) and np.allclose(out.sum(0), 1, atol=1e-4)


# ------------------------------------------------------------------ CRF decision
def test_crf_decision_is_off_where_crf_hurts():
    """Thin bright lines on a textured background: DenseCRF's smoothing erases them, so the
    decision on these held-out images must be "off"."""
    pytest.importorskip("pydensecrf")
    rng = np.random.default_rng(0)
    items = []
    for i in range(3):
        image = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
        mask = np.zeros((96, 96), np.uint8)
        mask[:, 20 + 10 * i:22 + 10 * i] = 1
        mask[40 + i:42 + i, :] = 1
        p = np.where(mask == 1, 0.6, 0.4).astype(np.float32)  # right but unsure everywhere
        items.append((image, np.stack([1 - p, p]), mask))
    d = crf.decide(items, 2)
    assert d["enabled"] is False and d["iou_off"] == 1.0
    assert d["message"].startswith("CRF off")
    assert crf.params_from(d) is None


def _blurry_square(shift: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, probs, mask) where DenseCRF helps: a bright square on a dark ground (moved right by
    ``shift`` px) and a blurry, too-large prediction of it."""
    image = np.full((80, 80, 3), 40, np.uint8)
    mask = np.zeros((80, 80), np.uint8)
    mask[20:60, 15 + shift:55 + shift] = 1
    image[mask == 1] = 220
    blur = np.zeros((80, 80), np.float32)
    blur[14:66, 9 + shift:61 + shift] = 0.75
    blur[mask == 1] = 0.8
    p = np.clip(blur, 0.05, 0.95)
    return image, np.stack([1 - p, p]), mask


def test_crf_decision_is_on_where_crf_helps():
    pytest.importorskip("pydensecrf")
    d = crf.decide([_blurry_square(shift=i) for i in range(3)], 2)
    assert d["enabled"] and d["iou_on"] > d["iou_off"] + 0.05
    assert isinstance(crf.params_from(d), crf.CRFParams)


def test_crf_gain_must_be_clear_of_noise(monkeypatch):
    """A mean gain carried by half the held-out images while the other half lose stays off (the
    rule before this bound turned it on: gain >= MIN_GAIN and wins >= losses); the same gain on
    every image turns it on."""
    pytest.importorskip("pydensecrf")
    for df, table in ((1, 3.078), (2, 1.886), (4, 1.533), (9, 1.383), (29, 1.311)):
        assert abs(crf.t_quantile(0.9, df) - table) < 0.003
    mean, bound = crf.gain_bound([0.10, 0.10, 0.10, -0.08, -0.08, -0.08])
    assert mean > crf.MIN_GAIN and bound < 0
    mean, bound = crf.gain_bound([0.02, 0.03, 0.025, 0.02])
    assert bound > 0.01

    def items(n):
        out = []
        for i in range(n):
            mask = np.zeros((40, 40), np.uint8)
            mask[10:30, 10:30] = 1
            p = np.full((40, 40), 0.3, np.float32)
            p[10:30, 10:25] = 0.7  # three quarters of the square found
            image = np.full((40, 40, 3), i, np.uint8)  # the image says which item this is
            out.append((image, np.stack([1 - p, p]), mask))
        return out

    def fake_refine(gains_by_item):
        def refine(image, probs, params=None):
            p = probs[1].copy()
            if gains_by_item(int(image[0, 0, 0])):
                p[10:30, 10:30] = 0.9                # the whole square
            else:
                p[10:30, 22:25] = 0.1                # a fifth of what was found lost
            return np.stack([1 - p, p])
        return refine

    monkeypatch.setattr(crf, "refine", fake_refine(lambda i: i % 2 == 0))
    mixed = crf.decide(items(6), 2)
    assert mixed["iou_on"] - mixed["iou_off"] >= crf.MIN_GAIN   # a mean gain, but not a clear one
    assert mixed["enabled"] is False and "noise" in mixed["message"]
    monkeypatch.setattr(crf, "refine", fake_refine(lambda i: True))
    assert crf.decide(items(6), 2)["enabled"] is True


def test_too_few_held_out_images_leave_crf_off():
    d = crf.decide([], 2)
    assert d["enabled"] is False and "held-out" in d["message"]


def _one_item(helps: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A held-out image where DenseCRF helps (a blurry, too-large prediction of a bright square on
    a dark ground) or hurts (thin lines on noise, predicted right but unsure everywhere)."""
    if helps:
        return _blurry_square()
    image = np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    mask = np.zeros((96, 96), np.uint8)
    mask[:, 20:22] = 1
    mask[40:42, :] = 1
    p = np.where(mask == 1, 0.6, 0.4).astype(np.float32)
    return image, np.stack([1 - p, p]), mask


def test_one_held_out_image_decides_with_the_default_parameters_only(monkeypatch):
    """A project's first clicks hold out one image: the defaults are tried on it (no search, which
    would pick the luckiest candidate) and turned on only when they raise its IoU."""
    pytest.importorskip("pydensecrf")
    seen: list[crf.CRFParams] = []
    real = crf.refine

    def spy(image, probs, params=None):
        seen.append(params)
        return real(image, probs, params)

    monkeypatch.setattr(crf, "refine", spy)
    on = crf.decide([_one_item(helps=True)], 2)
    assert on["enabled"] and on["n"] == 1 and on["tried"] == 1
    assert on["iou_on"] >= on["iou_off"] + crf.MIN_GAIN
    assert crf.params_from(on) == crf.CANDIDATES[0] and seen == [crf.CANDIDATES[0]]
    assert on["message"].startswith("CRF on") and "1 held-out image" in on["message"]
    off = crf.decide([_one_item(helps=False)], 2)
    assert off["enabled"] is False and off["iou_on"] < off["iou_off"] == 1.0
    assert "lowered" in off["message"] and crf.params_from(off) is None


def test_crf_decision_stays_within_its_time_limit_on_slow_crf(monkeypatch):
    """Where one DenseCRF pass is slow (many classes, large images), the decision is made on
    the first held-out images that fit the time limit, never on all of them, and says so."""
    pytest.importorskip("pydensecrf")
    import time as _time
    real = crf.refine

    def slow(image, probs, params=None):
        _time.sleep(0.25)
        return real(image, probs, params)

    monkeypatch.setattr(crf, "refine", slow)
    items = []
    for i in range(8):
        image = np.full((48, 48, 3), 40, np.uint8)
        mask = np.zeros((48, 48), np.uint8)
        mask[10:30, 10 + i:30 + i] = 1
        image[mask == 1] = 220
        p = np.where(mask == 1, 0.7, 0.3).astype(np.float32)
        items.append((image, np.stack([1 - p, p]), mask))
    d = crf.decide(items, 2, time_limit_s=0.6)
    assert d["n"] == crf.MIN_IMAGES  # 0.6 s fits two 0.25 s passes, not eight
    assert "(of 8:" in d["message"] and "per image" in d["message"] and d["tried"] >= 1
    fast = crf.decide(items[:3], 2, time_limit_s=30.0)  # (the patch is still on: 0.25 s per pass)
    assert fast["n"] == 3 and "(of" not in fast["message"]


def test_crf_decision_time_limit_bounds_crf_passes_not_predictions(monkeypatch):
    """Slow held-out predictions must not shrink the set the CRF decision is made on: before,
    30 held-out images' predictions used up the time limit and the decision saw 3 of them."""
    pytest.importorskip("pydensecrf")
    import time as _time

    import torch

    from segcore import inference, loop
    from segcore.models import build
    real_predict = inference.Predictor.predict_probs
    real_refine = crf.refine

    def slow_predict(self, image):
        _time.sleep(0.3)
        return real_predict(self, image)

    def slow_refine(image, probs, params=None):
        _time.sleep(0.15)
        return real_refine(image, probs, params)

    monkeypatch.setattr(inference.Predictor, "predict_probs", slow_predict)
    monkeypatch.setattr(crf, "refine", slow_refine)
    torch.manual_seed(0)
    model = build("deeplabv3_mobilenet_v2", num_classes=2, pretrained=False).eval()
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(8):
        mask = np.zeros((48, 48), np.uint8)
        mask[10:30, 10 + i:30 + i] = 1
        pairs.append((rng.integers(0, 255, (48, 48, 3), dtype=np.uint8), mask, f"s{i}"))
    # 8 predictions take 2.4 s, more than the limit; 8 CRF passes take 1.2 s, inside it
    d = loop.decide_crf(model, pairs, "cpu", time_limit_s=2.0)
    assert d["n"] == 8 and "(of" not in d["message"]
