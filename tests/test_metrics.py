"""segcore.metrics on cases whose answers are computed by hand in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from segcore.metrics import (
    boundary_iou,
    boundary_iou_per_class,
    boundary_width,
    confusion_matrix,
    foreground_iou,
    mask_boundary,
    mean_boundary_iou,
    scores_from_confusion,
    segmentation_scores,
)

# gt/pred pairs (row-major): (0,0) (0,1) (1,1) / (1,1) (2,2) (2,0)
GT = np.array([[0, 0, 1], [1, 2, 2]], np.uint8)
PRED = np.array([[0, 1, 1], [1, 2, 0]], np.uint8)


def test_confusion_matrix_rows_are_gt_cols_are_pred() -> None:
    cm = confusion_matrix(GT, PRED, 3)
    assert cm.dtype == np.int64
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_scores_hand_computed() -> None:
    s = segmentation_scores(GT, PRED, 3)
    # PA = trace / total = 4 / 6
    assert s["pa"] == pytest.approx(4 / 6)
    # MPA = mean(1/2, 2/2, 1/2) = 2/3
    assert s["mpa"] == pytest.approx(2 / 3)
    # IoU_0 = 1/(2+2-1), IoU_1 = 2/(2+3-2), IoU_2 = 1/(2+1-1)
    assert s["iou"] == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert s["miou"] == pytest.approx(0.5)
    # FWIoU = 2/6*1/3 + 2/6*2/3 + 2/6*1/2 = 1/2
    assert s["fwiou"] == pytest.approx(0.5)
    assert isinstance(s["iou"], list) and all(isinstance(v, float) for v in s["iou"])


def test_fwiou_weights_by_gt_frequency() -> None:
    gt = np.array([0, 0, 0, 1], np.uint8)
    pred = np.array([0, 0, 1, 1], np.uint8)
    s = segmentation_scores(gt, pred, 2)
    # cm = [[2,1],[0,1]]; IoU_0 = 2/3, IoU_1 = 1/2; FWIoU = 3/4*2/3 + 1/4*1/2 = 5/8
    assert s["iou"] == pytest.approx([2 / 3, 1 / 2])
    assert s["fwiou"] == pytest.approx(5 / 8)
    assert s["mpa"] == pytest.approx((2 / 3 + 1) / 2)


def test_class_absent_from_both_is_nan_and_not_credited() -> None:
    s = segmentation_scores(GT, PRED, 4)  # class 3 appears nowhere
    assert math.isnan(s["iou"][3])
    assert s["iou"][:3] == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert s["miou"] == pytest.approx(0.5)
    assert s["mpa"] == pytest.approx(2 / 3)
    assert s["fwiou"] == pytest.approx(0.5)


def test_class_only_in_prediction_counts_as_zero() -> None:
    gt = np.zeros((2, 2), np.uint8)
    pred = np.array([[0, 0], [0, 1]], np.uint8)
    s = segmentation_scores(gt, pred, 2)
    # IoU_0 = 3/4, IoU_1 = 0 (counted); MPA only over classes present in gt: 3/4
    assert s["iou"] == pytest.approx([0.75, 0.0])
    assert s["miou"] == pytest.approx(0.375)
    assert s["mpa"] == pytest.approx(0.75)
    assert s["fwiou"] == pytest.approx(0.75)


def test_both_empty_foreground() -> None:
    z = np.zeros((5, 7), np.uint8)
    s = segmentation_scores(z, z, 2)
    assert s["pa"] == 1.0 and s["miou"] == 1.0 and s["mpa"] == 1.0
    assert s["iou"][0] == 1.0 and math.isnan(s["iou"][1])
    assert foreground_iou(z, z) == 1.0
    assert boundary_iou(z, z) == 1.0


def test_one_empty_foreground() -> None:
    z = np.zeros((20, 20), np.uint8)
    m = z.copy()
    m[5:10, 5:10] = 1
    assert foreground_iou(z, m) == 0.0
    assert foreground_iou(m, z) == 0.0
    assert boundary_iou(z, m) == 0.0
    assert boundary_iou(m, z) == 0.0


def test_foreground_iou_treats_nonzero_as_foreground() -> None:
    gt = np.array([[0, 255, 255, 0]], np.uint8)
    pred = np.array([[0, 1, 0, 7]], np.uint8)
    assert foreground_iou(gt, pred) == pytest.approx(1 / 3)


def test_ignore_index_excludes_pixels() -> None:
    gt = np.array([[0, 255, 1], [1, 255, 0]], np.uint8)
    pred = np.array([[0, 1, 1], [0, 0, 0]], np.uint8)
    cm = confusion_matrix(gt, pred, 2, ignore_index=255)
    assert cm.tolist() == [[2, 0], [1, 1]]
    s = segmentation_scores(gt, pred, 2, ignore_index=255)
    assert s["pa"] == pytest.approx(3 / 4)
    # A prediction out of range where gt is ignored is allowed.
    pred[0, 1] = 200
    assert confusion_matrix(gt, pred, 2, ignore_index=255).tolist() == [[2, 0], [1, 1]]


def test_everything_ignored_gives_nan() -> None:
    gt = np.full((3, 3), 255, np.uint8)
    s = segmentation_scores(gt, np.zeros_like(gt), 2, ignore_index=255)
    assert math.isnan(s["pa"]) and math.isnan(s["miou"])


@pytest.mark.parametrize(
    "gt, pred, word",
    [
        (np.array([[0, 3]]), np.array([[0, 1]]), "gt contains class index 3"),
        (np.array([[0, 1]]), np.array([[0, 2]]), "pred contains class index 2"),
        (np.array([[0, -1]]), np.array([[0, 1]]), "gt contains class index -1"),
        (np.array([[0, 255]], np.uint8), np.array([[0, 1]], np.uint8), "255"),
    ],
)
def test_out_of_range_values_raise(gt: np.ndarray, pred: np.ndarray, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        confusion_matrix(gt, pred, 2)


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="same shape"):
        segmentation_scores(np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8), 2)
    with pytest.raises(ValueError, match="same shape"):
        boundary_iou(np.zeros((4, 4), np.uint8), np.zeros((5, 4), np.uint8))


def test_float_masks_rejected() -> None:
    with pytest.raises(ValueError, match="integer"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 2)), 2)


def test_scores_from_confusion_matches() -> None:
    cm = confusion_matrix(GT, PRED, 3)
    assert scores_from_confusion(cm) == segmentation_scores(GT, PRED, 3)
    with pytest.raises(ValueError, match="square"):
        scores_from_confusion(np.zeros((2, 3)))


# --- Boundary IoU -----------------------------------------------------------------------------


def test_boundary_width_formula() -> None:
    assert boundary_width((120, 160)) == 4  # 0.02 * 200
    assert boundary_width((60, 80)) == 2  # 0.02 * 100
    assert boundary_width((10, 10)) == 1  # 0.28 rounds to 0, clamped to 1
    assert boundary_width((3000, 4000)) == 100


def _rect(shape: tuple[int, int], r0: int, c0: int, h: int, w: int) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    m[r0 : r0 + h, c0 : c0 + w] = 1
    return m


@pytest.mark.parametrize("h, w", [(40, 40), (30, 50), (6, 40), (8, 8)])
def test_rectangle_band_area(h: int, w: int) -> None:
    # 120x160 image: d = 4. Erosion by a 3x3 square d times = by a (2d+1)^2 square, so the
    # rectangle shrinks to (h-2d) x (w-2d) and the band is the rest.
    d = 4
    m = _rect((120, 160), 30, 40, h, w)
    band = mask_boundary(m)
    assert band.dtype == bool and band.shape == m.shape
    assert band.sum() == h * w - max(0, h - 2 * d) * max(0, w - 2 * d)
    assert not band[m == 0].any()
    # The band is exactly d pixels wide on each side.
    assert band[30 + h // 2, 40 : 40 + min(d, w)].all()


def test_identical_masks_score_one() -> None:
    m = _rect((120, 160), 30, 40, 40, 50)
    m[70:90, 100:120] = 1
    assert boundary_iou(m, m.copy()) == 1.0


def test_shifted_rectangle_hand_computed() -> None:
    # d = 4; A = rows 40..80, cols 40..80; B = A shifted right by s = 2.
    # Top/bottom strips (4 rows each) overlap over 38 columns: 2 * 4 * 38 = 304.
    # Left strips overlap over cols 42..44 (2), right strips over 78..80 (2), 32 rows each: 128.
    # |B(A) ∩ B(B)| = 432; each band has 40*40 - 32*32 = 576; union = 2*576 - 432 = 720.
    a = _rect((120, 160), 40, 40, 40, 40)
    b = _rect((120, 160), 40, 42, 40, 40)
    assert boundary_iou(a, b) == pytest.approx(432 / 720)
    # Plain IoU for comparison: 40*38 / (40*42).
    assert foreground_iou(a, b) == pytest.approx(38 / 42)


def test_disjoint_masks_score_zero() -> None:
    a = _rect((120, 160), 10, 10, 20, 20)
    b = _rect((120, 160), 60, 90, 20, 20)
    assert boundary_iou(a, b) == 0.0


def test_border_pixels_are_boundary() -> None:
    # The one-pixel zero padding makes pixels within d of the image border boundary.
    full = np.ones((120, 160), np.uint8)
    d = 4
    assert mask_boundary(full).sum() == 120 * 160 - (120 - 2 * d) * (160 - 2 * d)
    # A rectangle touching the left border: its band includes the d columns along the border.
    m = _rect((120, 160), 40, 0, 40, 30)
    band = mask_boundary(m)
    assert band.sum() == 40 * 30 - (40 - 2 * d) * (30 - 2 * d)
    assert band[40:80, 0:d].all()


def test_dilation_ratio_changes_width() -> None:
    m = _rect((120, 160), 30, 40, 40, 40)
    # ratio 0.05 -> d = 10: band = 1600 - 20*20
    assert mask_boundary(m, dilation_ratio=0.05).sum() == 1600 - 400


def test_boundary_iou_per_class_and_mean() -> None:
    shape = (120, 160)
    gt = np.zeros(shape, np.uint8)
    gt[40:80, 40:80] = 1
    pred = np.zeros(shape, np.uint8)
    pred[40:80, 42:82] = 1
    per = boundary_iou_per_class(gt, pred, 3)
    # Class 1: the shifted rectangle above. Class 2: absent from both -> NaN, not credited.
    assert per[1] == pytest.approx(0.6)
    assert math.isnan(per[2])
    assert 0.0 < per[0] <= 1.0
    assert mean_boundary_iou(gt, pred, 3) == pytest.approx((per[0] + per[1]) / 2)
    # A class only in one mask scores 0.
    pred2 = pred.copy()
    pred2[0:10, 0:10] = 2
    assert boundary_iou_per_class(gt, pred2, 3)[2] == 0.0


def test_multiclass_labels_foreground_is_nonzero() -> None:
    gt = _rect((60, 80), 10, 10, 30, 30) * 2
    pred = _rect((60, 80), 10, 10, 30, 30)
    assert boundary_iou(gt, pred) == 1.0
    assert foreground_iou(gt, pred) == 1.0


def test_boundary_requires_2d() -> None:
    with pytest.raises(ValueError, match="2-D"):
        mask_boundary(np.zeros((4, 4, 3), np.uint8))


def test_large_pair_runs() -> None:
    # Correctness on a large pair (time is measured outside the test suite, never asserted).
    gt = _rect((1500, 2000), 300, 400, 600, 800)
    pred = _rect((1500, 2000), 300, 410, 600, 800)
    s = segmentation_scores(gt, pred, 2)
    assert s["iou"][1] == pytest.approx(790 / 810)
    d = boundary_width(gt.shape)  # 50
    band = 600 * 800 - (600 - 2 * d) * (800 - 2 * d)
    # Horizontal strips overlap over 790 cols; vertical strips overlap over d - 10 cols each.
    inter = 2 * d * 790 + 2 * (d - 10) * (600 - 2 * d)
    assert boundary_iou(gt, pred) == pytest.approx(inter / (2 * band - inter))


# ------------------------------------------------------------------ the one scoring API
def _three_class_pair() -> tuple[np.ndarray, np.ndarray]:
    gt = np.zeros((40, 60), np.uint8)
    gt[:, 30:] = 2
    gt[10:20, 5:15] = 1                  # 100 px of class 1
    pred = gt.copy()
    pred[10:20, 5:10] = 0                # half of class 1 predicted as background
    return gt, pred


def test_score_mask_gives_per_class_iou_and_biou() -> None:
    from segcore.metrics import score_mask
    gt, pred = _three_class_pair()
    s = score_mask(gt, pred, 3)
    assert s.class_iou == pytest.approx((1100 / 1150, 0.5, 1.0))
    assert s.iou == pytest.approx((1100 / 1150 + 0.5 + 1.0) / 3)
    assert s.class_biou == pytest.approx(tuple(boundary_iou_per_class(gt, pred, 3)))
    assert s.class_biou[2] == 1.0 and 0.0 < s.class_biou[1] < 1.0
    assert s.biou == pytest.approx(sum(s.class_biou) / 3)
    assert s.confusion.tolist() == [[1100, 0, 0], [50, 50, 0], [0, 0, 1200]]


def test_score_mask_binary_and_void() -> None:
    from segcore.metrics import score_mask
    gt = np.zeros((30, 30), np.uint8)
    gt[5:25, 5:25] = 1
    pred = np.zeros_like(gt)
    pred[5:25, 5:15] = 1                                 # half the square
    s = score_mask(gt, pred, 2)
    assert s.iou == pytest.approx(0.5) and s.class_iou[1] == pytest.approx(0.5)
    assert s.class_iou[0] == pytest.approx(500 / 700)
    assert s.biou == pytest.approx(boundary_iou(gt, pred)) == pytest.approx(s.class_biou[1])
    void = gt.copy()
    void[5:25, 15:25] = 255                              # the missed half is not labelled
    v = score_mask(void, pred, 2)
    assert (v.iou, v.biou) == (1.0, 1.0)
    assert v.confusion.sum() == 900 - 200                # void never counted in the pooled matrix
    both_empty = score_mask(np.zeros_like(gt), np.zeros_like(gt), 2)
    assert (both_empty.iou, both_empty.biou) == (1.0, 1.0) and math.isnan(both_empty.class_iou[1])


def test_evaluation_pools_images() -> None:
    from segcore.metrics import Evaluation, evaluate, score_mask
    gt, pred = _three_class_pair()
    gt2 = np.zeros((40, 60), np.uint8)
    gt2[:, :20] = 2                                      # no class 1 in the second image
    pred2 = np.full_like(gt2, 2)                         # everything predicted as class 2
    ev = Evaluation(3)
    ev.add(gt, pred, "a")
    ev.add(gt2, pred2, "b")
    out = ev.summary()
    assert out["images"] == 2 and set(ev.per_image) == {"a", "b"}
    a, b = score_mask(gt, pred, 3), score_mask(gt2, pred2, 3)
    assert out["iou"] == pytest.approx((a.iou + b.iou) / 2)
    assert out["biou"] == pytest.approx((a.biou + b.biou) / 2)
    # pooled confusion: class 0 1100 + 0 hits of 1150 + 1600 gt px; class 2 1200 + 800 of 3600 pred
    assert out["class_iou"] == pytest.approx([1100 / (2700 + 1150 - 1100), 0.5, 2000 / (2000 + 1600)])
    assert out["miou"] == pytest.approx(sum(out["class_iou"]) / 3)
    # class 1 is in image a only: its BIoU is image a's; class 0 is in both (0.0 in b)
    assert out["class_biou"][1] == pytest.approx(a.class_biou[1])
    assert out["class_biou"][0] == pytest.approx((a.class_biou[0] + 0.0) / 2)
    assert evaluate([(gt, pred), (gt2, pred2)], 3) == out
