"""segcore.compare: two versions image by image, sorted by the largest drop, predictions cached."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from segcore import compare
from segcore.project import Project

from .compare_fixtures import HELD_IOU, FakeVersions, build, fg_iou


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build(tmp_path_factory.mktemp("cmp") / "demo")


def test_rows_sorted_by_drop_with_independent_values(built):
    fake = FakeVersions(built)
    with Project.open(built.root) as project:
        v1, v2, v3 = built.versions
        changes = compare.compare_images(project, v2, v3, predictions=compare.Predictions(project, fake))
    assert [c.stem for c in changes] == sorted([c.stem for c in changes],
                                               key=lambda s: (next(x.delta for x in changes if x.stem == s), s))
    deltas = [c.delta for c in changes]
    assert deltas == sorted(deltas)
    assert {c.stem for c in changes} == set(built.stems)  # every held-out and done image
    by = {c.stem: c for c in changes}
    for s in built.held:  # stored held-out scores, never predicted
        assert by[s].status == "held out" and by[s].stored
        assert by[s].iou_a == pytest.approx(HELD_IOU[2][0]) and by[s].iou_b == pytest.approx(HELD_IOU[3][0])
    assert all(stem not in built.held for _, stem in fake.calls)
    for s in built.train:
        expect_a = fg_iou(built.truth[s], fake.expected(v2, s))
        expect_b = fg_iou(built.truth[s], fake.expected(v3, s))
        assert by[s].iou_a == pytest.approx(expect_a, abs=1e-9)
        assert by[s].iou_b == pytest.approx(expect_b, abs=1e-9)
        assert by[s].delta == pytest.approx(expect_b - expect_a, abs=1e-9)
    assert {by[s].status for s in built.train[:6]} == {"trained on by both"}
    assert {by[s].status for s in built.train[6:]} == {f"trained on by v{v3}"}
    # the odd images got worse (v3 shifts them by 9 px), so they lead the list
    worst = changes[0]
    assert worst.delta < 0 and built.stems.index(worst.stem) % 2 == 1


def test_predictions_are_cached_per_version(built):
    with Project.open(built.root) as project:
        v1, v2, _ = built.versions
        fake = FakeVersions(built)
        first = compare.compare_images(project, v1, v2, predictions=compare.Predictions(project, fake))
        assert fake.calls and compare.cache_path(project, v1, built.train[0]).is_file()
        again = FakeVersions(built)
        second = compare.compare_images(project, v1, v2, predictions=compare.Predictions(project, again))
        assert again.calls == []  # every prediction came from .segloop/compare/
        assert [(c.stem, c.iou_a, c.iou_b) for c in first] == [(c.stem, c.iou_a, c.iou_b) for c in second]
        cached = compare.cached_prediction(project, v1, built.train[0])
        assert np.array_equal(cached, fake.expected(v1, built.train[0]))


def test_parent_scores_complete_the_stored_ones(built):
    """v1 vs v2: v2 stores v1's scores on its held-out images (parent_held_out_scores)."""
    with Project.open(built.root) as project:
        v1, v2, _ = built.versions
        sa, sb = compare.stored_scores(project.models.get(v1), project.models.get(v2))
        assert set(built.held) <= set(sa) and set(built.held) <= set(sb)


def test_progress_and_cancel(built):
    with Project.open(built.root) as project:
        _, v2, v3 = built.versions
        seen: list[tuple[int, int]] = []
        cancel = threading.Event()

        def progress(done, total, stem):
            seen.append((done, total))
            if done == 3:
                cancel.set()
        out = compare.compare_images(project, v2, v3, progress=progress, cancel=cancel,
                                     predictions=compare.Predictions(project, FakeVersions(built)))
    assert len(out) == 3 and seen[-1] == (3, len(built.stems))


def test_a_bad_image_is_reported_not_raised(built):
    with Project.open(built.root) as project:
        _, v2, v3 = built.versions
        stem = built.train[-1]

        class Broken(FakeVersions):
            def __call__(self, project, version_id):
                self.calls.append((version_id, "load"))
                raise RuntimeError("model file damaged")
        for v in (v2, v3):
            compare.cache_path(project, v, stem).unlink(missing_ok=True)
        broken = Broken(built)
        out = compare.compare_images(project, v2, v3, stems=[stem, stem], predictions=compare.Predictions(project, broken))
    assert out[0].delta is None and "damaged" in out[0].error
    assert broken.calls == [(v2, "load")]  # a model that cannot be loaded is tried once


def test_diff_codes_binary_and_multiclass():
    mask = np.array([[0, 1, 1, 255]], np.uint8)
    a = np.array([[0, 1, 0, 1]], np.uint8)
    b = np.array([[1, 1, 1, 0]], np.uint8)
    codes = compare.diff_codes(mask, a, b, 2)
    assert codes.tolist() == [[compare.ONLY_A, compare.SAME, compare.ONLY_B, compare.SAME]]  # void: never
    m3 = np.array([[2, 2, 1]], np.uint8)
    codes3 = compare.diff_codes(m3, np.array([[0, 2, 1]], np.uint8), np.array([[1, 0, 1]], np.uint8), 3)
    assert codes3.tolist() == [[compare.NEITHER, compare.ONLY_A, compare.SAME]]


def test_multiclass_uses_mean_iou_over_present_classes(tmp_path):
    """A 3-class project: the per-image score is score_mask's mIoU (classes present only)."""
    from segcore.demo import generate_demo_project
    from segcore.project import ClassInfo

    root = generate_demo_project(tmp_path / "mc", n_images=1, size=(32, 32), seed=2)
    with Project.open(root) as project:
        project.set_classes([ClassInfo("bg", (0, 0, 0)), ClassInfo("a", (255, 0, 0)), ClassInfo("b", (0, 255, 0))])
        stem = project.stems()[0]
        mask = np.zeros((32, 32), np.uint8)
        mask[:, 16:] = 1  # class 2 absent from the mask
        project.save_mask(stem, mask)

        perfect, half = mask.copy(), mask.copy()
        half[:, 24:] = 0
        preds = {1: perfect, 2: half}

        class Store:
            def get(self, version_id, s, image=None):
                return preds[version_id]

        class V:
            def __init__(self, i):
                self.id, self.parent, self.metrics, self.meta = i, None, {}, {}
        out = compare.compare_images(project, V(1), V(2), predictions=Store())
    # background IoU: 16*32 / 24*32; class 1 IoU: 8*32 / 16*32; mean over the two present classes
    assert out[0].iou_a == pytest.approx(1.0)
    assert out[0].iou_b == pytest.approx((16 / 24 + 8 / 16) / 2)
