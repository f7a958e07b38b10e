"""segcore.demo: a deterministic, honest synthetic project with exact ground truth."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from segcore.demo import (
    MARKER_NAME,
    default_demo_dir,
    ensure_demo_project,
    generate_demo_project,
    load_ground_truth,
)
from segcore.io import read_image


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _best_gray_threshold_iou(rgb: np.ndarray, gt: np.ndarray) -> float:
    """Best IoU any single global gray threshold (either polarity) reaches against ``gt``."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    fg = gt.astype(bool)
    hf = np.bincount(gray[fg], minlength=256)
    hb = np.bincount(gray[~fg], minlength=256)
    best = 0.0
    for f, b in ((hf, hb), (hf[::-1], hb[::-1])):
        tp = np.cumsum(f[::-1])[::-1]  # foreground pixels at or above each threshold
        fp = np.cumsum(b[::-1])[::-1]
        best = max(best, float((tp / (fg.sum() + fp)).max()))
    return best


def test_layout(demo_project: Path) -> None:
    stems = [f"demo_{i:03d}" for i in range(6)]
    assert sorted(p.stem for p in demo_project.glob("*.png")) == stems
    assert sorted(p.stem for p in (demo_project / "ground_truth").glob("*.png")) == stems
    assert not (demo_project / "masks").exists() or not any((demo_project / "masks").iterdir())
    assert "ground_truth" in (demo_project / "README.txt").read_text()
    assert (demo_project / MARKER_NAME).is_file()
    img = read_image(demo_project / "demo_000.png")
    assert img.shape == (96, 128, 3) and img.dtype == np.uint8


def test_masks_are_exactly_0_255_and_sane(demo_project: Path) -> None:
    for p in sorted((demo_project / "ground_truth").glob("*.png")):
        raw = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        assert raw.ndim == 2 and raw.dtype == np.uint8
        assert set(np.unique(raw).tolist()) == {0, 255}
        gt = load_ground_truth(demo_project, p.stem)
        assert gt is not None and gt.dtype == np.uint8
        assert set(np.unique(gt).tolist()) == {0, 1}
        assert 0.10 <= gt.mean() <= 0.60, f"{p.name}: foreground fraction {gt.mean():.2f}"


def test_not_trivially_thresholdable(demo_project: Path) -> None:
    scores = []
    for p in sorted(demo_project.glob("*.png")):
        gt = load_ground_truth(demo_project, p.stem)
        scores.append(_best_gray_threshold_iou(read_image(p), gt))
    assert max(scores) < 0.9, scores
    assert float(np.mean(scores)) < 0.7, scores


def test_objects_differ_from_background_by_colour(demo_project: Path) -> None:
    # What a small CNN can learn: objects are more saturated than the background.
    for p in sorted(demo_project.glob("*.png")):
        gt = load_ground_truth(demo_project, p.stem).astype(bool)
        sat = cv2.cvtColor(read_image(p), cv2.COLOR_RGB2HSV)[..., 1].astype(np.float32)
        assert np.median(sat[gt]) > np.median(sat[~gt]) + 60


def test_deterministic_from_seed(tmp_path: Path) -> None:
    a = generate_demo_project(tmp_path / "a", n_images=3, size=(64, 80), seed=7)
    b = generate_demo_project(tmp_path / "b", n_images=3, size=(64, 80), seed=7)
    c = generate_demo_project(tmp_path / "c", n_images=3, size=(64, 80), seed=8)
    fa, fb, fc = _files(a), _files(b), _files(c)
    assert fa == fb
    assert fa.keys() == fc.keys()
    assert fa["demo_000.png"] != fc["demo_000.png"]
    assert fa["ground_truth/demo_000.png"] != fc["ground_truth/demo_000.png"]


def test_images_differ_within_a_project(demo_project: Path) -> None:
    a = read_image(demo_project / "demo_000.png")
    b = read_image(demo_project / "demo_001.png")
    assert not np.array_equal(a, b)


def test_load_ground_truth_missing_returns_none(demo_project: Path, tmp_path: Path) -> None:
    assert load_ground_truth(demo_project, "no_such_image") is None
    assert load_ground_truth(tmp_path / "nowhere", "demo_000") is None


def test_default_demo_dir_follows_xdg(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_demo_dir() == tmp_path / "xdg" / "segloop" / "demo"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_demo_dir() == tmp_path / "home" / ".local" / "share" / "segloop" / "demo"


@pytest.mark.slow
def test_ensure_demo_project_idempotent(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    folder = ensure_demo_project()
    assert folder == default_demo_dir()
    assert len(list(folder.glob("*.png"))) == 12
    assert read_image(folder / "demo_000.png").shape == (240, 320, 3)
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
    # A user's correction in masks/ survives.
    (folder / "masks").mkdir()
    (folder / "masks" / "demo_000.png").write_bytes(b"user data")
    assert ensure_demo_project() == folder
    after = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and "masks" not in p.parts}
    assert after == before
    assert (folder / "masks" / "demo_000.png").read_bytes() == b"user data"


def test_half_generated_demo_is_regenerated(tmp_path: Path) -> None:
    folder = generate_demo_project(tmp_path / "d", n_images=2, size=(48, 64), seed=0)
    reference = _files(folder)
    # Simulate a crash mid-generation: no marker, a missing image.
    (folder / MARKER_NAME).unlink()
    (folder / "demo_001.png").unlink()
    # ensure_demo_project regenerates with its defaults (12 images at 240x320).
    ensure_demo_project(folder)
    assert (folder / MARKER_NAME).is_file()
    assert len(list(folder.glob("*.png"))) == 12
    assert reference.keys() <= _files(folder).keys()


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_images"):
        generate_demo_project(tmp_path / "x", n_images=0)
    with pytest.raises(ValueError, match="16x16"):
        generate_demo_project(tmp_path / "x", size=(8, 8))
