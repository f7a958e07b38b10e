"""segcore.forecast: the learning-curve fit, its range, and the messages the Training dock shows."""

from __future__ import annotations

import numpy as np
import pytest

from segcore import forecast as fc


def _noisy_points(a, b, c, ns, sd, per_image, seed):
    rng = np.random.default_rng(seed)
    pts = []
    for n in ns:
        scores = np.clip(a - b * n ** (-c) + rng.normal(0, sd, per_image), 0, 1)
        pts.append((n, float(scores.mean()), [float(s) for s in scores]))
    return pts


def test_exact_power_law_is_recovered():
    a, b, c = 0.93, 0.6, 0.8
    ns = [4, 8, 13, 17, 25]
    curve = fc.fit_curve(ns, [a - b * n ** (-c) for n in ns])
    assert curve is not None
    assert curve.a == pytest.approx(a, abs=0.01) and curve.c == pytest.approx(c, abs=0.051)
    assert curve.n_for(0.90) == pytest.approx((b / (a - 0.90)) ** (1 / c), rel=0.1)


def test_noisy_power_law_forecast_is_close_and_its_range_holds_the_truth():
    """Images-for-a-target is ill-conditioned near the curve's level (a small IoU error is many
    images), so: the fitted curve's IoU at the true n is within 0.03 of the target in every run,
    the point estimate within a factor 2 of the truth in most, and the 10-90 % range holds it in most."""
    a, b, c = 0.95, 0.6, 0.7
    ns = [4, 8, 13, 17]
    truth = (b / (a - 0.90)) ** (1 / c) - ns[-1]   # ~18 more images
    close = covered = 0
    for seed in range(8):
        f = fc.forecast(_noisy_points(a, b, c, ns, 0.04, 20, seed), target=0.90)
        assert f.curve is not None and abs(float(f.curve.iou(ns[-1] + truth)) - 0.90) < 0.03
        if f.status != "ok":
            continue
        assert f.message.startswith(f"≈ {f.more} more image")
        assert f"for IoU 0.90 (range {f.low}" in f.message
        close += truth / 2 <= f.more <= truth * 2
        covered += f.low <= truth and (f.high is None or truth <= f.high)
    assert close >= 5 and covered >= 6


def test_predict_iou_at_a_later_n():
    a, b, c = 0.9, 0.5, 0.9
    pts = _noisy_points(a, b, c, [4, 8, 13, 17], 0.03, 30, 3)
    est, lo, hi = fc.predict_iou(pts, 42)
    assert est == pytest.approx(a - b * 42 ** (-c), abs=0.03)
    assert lo <= est <= hi


def test_flat_curve_says_more_of_the_same_will_not_help():
    f = fc.forecast([(4, 0.80, [0.8, 0.79, 0.81]), (9, 0.801, [0.8, 0.8]), (17, 0.80, [0.8, 0.8])], 0.9)
    assert f.status == "flat"
    assert f.message == "The curve is flat: more of the same images will not help"


def test_levelling_off_below_the_target_is_out_of_reach():
    a, b, c = 0.84, 0.5, 0.8
    ns = [4, 8, 16]
    f = fc.forecast([(n, a - b * n ** (-c)) for n in ns], target=0.95)
    assert f.status == "unreachable" and f.more is None
    assert f.message == ("The curve levels off at IoU ≈ 0.84: 0.95 is out of reach with more of "
                         "the same images")


def test_fewer_than_three_points_give_no_forecast():
    assert fc.fit_curve([4, 8], [0.6, 0.7]) is None
    f = fc.forecast([(4, 0.6), (8, 0.7)], 0.9)
    assert f.status == "too_few" and f.more is None
    assert "Need ≥ 3 versions" in f.message
    # three versions but two trained on the same number of images: still two points
    assert fc.forecast([(4, 0.6), (8, 0.7), (8, 0.72)], 0.9).status == "too_few"


def test_already_there():
    ns = [4, 8, 16]
    f = fc.forecast([(n, 0.95 - 0.3 * n ** -1.0) for n in ns], target=0.80)
    assert f.status == "reached"


def test_default_target_is_the_next_step_above():
    assert fc.default_target(0.83) == 0.85
    assert fc.default_target(0.85) == 0.90
    assert fc.default_target(None) == 0.90
    assert fc.default_target(0.985) == fc.MAX_TARGET


def test_points_of_the_active_lineage_only():
    class V:
        def __init__(self, i, parent, n, iou, active=False):
            self.id, self.parent, self.active = i, parent, active
            self.metrics = {"n_train": n, "val_iou": iou, "held_out_scores": {"x": [iou, 0.1]}}
    versions = [V(1, None, 4, 0.5), V(2, 1, 8, 0.6), V(3, None, 20, 0.2),  # v3: another lineage
                V(4, 2, 8, 0.65), V(5, 4, 12, 0.7, active=True)]
    pts = fc.points_of_lineage(versions)
    assert [p[:2] for p in pts] == [(4, 0.5), (8, 0.65), (12, 0.7)]  # v4 replaces v2 (same n)
    assert pts[0][2] == [0.5]
