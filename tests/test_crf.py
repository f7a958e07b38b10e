"""segcore.crf: DenseCRF sharpens a blurred prediction; bad input and a missing pydensecrf."""

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
