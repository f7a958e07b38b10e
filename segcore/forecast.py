"""Effort forecast: how many more done images a held-out learning curve needs to reach a target IoU.

The curve is the inverse power law ``IoU(n) = a - b * n**(-c)`` (n = training images): ``c`` is
grid-searched, ``a`` and ``b`` come from linear least squares for each ``c`` (numpy only), the
best ``c`` by squared error; ``a`` is the level the curve tends to with more of the same images.
The uncertainty is a bootstrap: each point's IoU is re-drawn from its own per-image scores
(resampled with replacement; the held-out images' scores of that version), or, without them,
the points are resampled; the range is the 10th–90th percentile of the refits' answers.

    f = forecast([(4, 0.70, [...]), (9, 0.80, [...]), (17, 0.84, [...])], target=0.90)
    f.status   # "ok" | "reached" | "flat" | "unreachable" | "too_few"
    f.message  # "≈ 35 more images for IoU 0.90 (range 20–70)"

A forecast needs :data:`MIN_POINTS` points with as many different ``n`` (three versions that
trained on different numbers of images). ``points_of_lineage`` turns a project's versions into
points: the active version and its ancestors (the active lineage), ``n_train`` and held-out
``val_iou`` with their per-image ``held_out_scores`` from each version's metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

MIN_POINTS = 3            # versions (with distinct n) before a forecast is shown
TARGET_STEP = 0.05        # the default target: the next multiple of this above the current IoU
MAX_TARGET = 0.99
FLAT_GAIN = 0.01          # the fitted gain from doubling the images below this: "flat"
MAX_FACTOR = 50.0         # more than MAX_FACTOR x today's images: "not in reach"
C_GRID = np.round(np.arange(0.05, 3.0001, 0.05), 4)
N_BOOT = 200
RANGE = (10.0, 90.0)      # percentiles of the bootstrap shown as the range

Point = tuple  # (n, iou) or (n, iou, per-image scores)


def default_target(current: float | None) -> float:
    """THE default target IoU: the next :data:`TARGET_STEP` step above ``current`` (0.90 when
    nothing is known), at most :data:`MAX_TARGET`."""
    if current is None or not math.isfinite(current):
        return 0.90
    step = (math.floor(current / TARGET_STEP + 1e-9) + 1) * TARGET_STEP
    return round(min(MAX_TARGET, step), 2)


@dataclass(frozen=True)
class Curve:
    """``iou(n) = a - b * n**(-c)``."""

    a: float
    b: float
    c: float
    sse: float = 0.0

    def iou(self, n: float | np.ndarray) -> Any:
        return self.a - self.b * np.power(np.asarray(n, float), -self.c)

    def n_for(self, target: float) -> float:
        """Images for ``target`` (inf when the curve never gets there)."""
        if self.b <= 0 or self.a <= target:
            return math.inf
        return float((self.b / (self.a - target)) ** (1.0 / self.c))


def fit_curve(n: Sequence[float] | np.ndarray, iou: Sequence[float] | np.ndarray) -> Curve | None:
    """Least-squares inverse power law through the points, or None (fewer than
    :data:`MIN_POINTS` distinct n). ``a`` is capped at 1 (IoU cannot pass it)."""
    x, y = np.asarray(n, float), np.asarray(iou, float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0)
    x, y = x[keep], y[keep]
    if len(np.unique(x)) < MIN_POINTS:
        return None
    best: Curve | None = None
    for c in C_GRID:
        design = np.stack([np.ones_like(x), -np.power(x, -c)], 1)
        (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
        if a > 1.0:  # refit b with a fixed at the ceiling
            a = 1.0
            z = np.power(x, -c)
            b = float(np.dot(z, 1.0 - y) / np.dot(z, z))
        sse = float(np.sum((a - b * np.power(x, -c) - y) ** 2))
        if best is None or sse < best.sse - 1e-12:
            best = Curve(float(a), float(b), float(c), sse)
    return best


@dataclass(frozen=True)
class Forecast:
    status: str                      # ok | reached | flat | unreachable | too_few
    target: float
    n_now: int = 0
    iou_now: float | None = None
    more: int | None = None          # images more than n_now (point estimate), when "ok"
    low: int | None = None           # the bootstrap range of ``more``; None: beyond reach
    high: int | None = None
    curve: Curve | None = None
    level: float | None = None       # the curve's asymptote a
    points: int = 0
    boot_more: tuple[float, ...] = field(default=(), repr=False)

    @property
    def message(self) -> str:
        t = f"{self.target:.2f}"
        if self.status == "too_few":
            return (f"Need ≥ {MIN_POINTS} versions (trained on different numbers of images) for a "
                    f"forecast; {self.points} so far")
        if self.status == "reached":
            return f"The fitted curve is already at IoU {t} with {self.n_now} images"
        if self.status == "flat":
            return "The curve is flat: more of the same images will not help"
        if self.status == "unreachable":
            return (f"The curve levels off at IoU ≈ {self.level:.2f}: {t} is out of reach with "
                    f"more of the same images")
        images = f"{self.more} more image{'s' if self.more != 1 else ''}"
        if self.low is None:  # most refits of the resampled scores never get there
            return f"≈ {images} for IoU {t} (very uncertain: it may never get there)"
        if self.high is None:  # the upper 10 % of the refits never get there
            return f"≈ {images} for IoU {t} (range {self.low} to never)"
        return f"≈ {images} for IoU {t} (range {self.low}–{self.high})"


def _more(curve: Curve, target: float, n_now: float) -> float:
    n = curve.n_for(target)
    return math.inf if n > MAX_FACTOR * max(n_now, 1.0) else max(0.0, n - n_now)


def _resamples(points: Sequence[Point], rng: np.random.Generator,
               n_boot: int) -> list[tuple[np.ndarray, np.ndarray]]:
    n = np.array([p[0] for p in points], float)
    y = np.array([p[1] for p in points], float)
    scores = [list(p[2]) if len(p) > 2 and p[2] else [] for p in points]
    out = []
    if all(scores):
        for _ in range(n_boot):
            ys = np.array([np.mean(rng.choice(s, len(s))) for s in scores])
            out.append((n, ys))
    elif len(points) > MIN_POINTS:
        for _ in range(n_boot):
            idx = rng.integers(0, len(points), len(points))
            out.append((n[idx], y[idx]))
    return out


def forecast(points: Sequence[Point], target: float | None = None, n_boot: int = N_BOOT,
             seed: int = 0) -> Forecast:
    """The forecast for ``target`` (default: :func:`default_target` of the latest IoU) from
    ``points`` = (n training images, held-out IoU[, per-image scores]), any order."""
    pts = sorted((p for p in points if p[1] is not None and math.isfinite(p[1]) and p[0] > 0),
                 key=lambda p: p[0])
    latest = pts[-1] if pts else None
    iou_now = float(latest[1]) if latest else None
    target = default_target(iou_now) if target is None else float(target)
    n_now = int(latest[0]) if latest else 0
    curve = fit_curve([p[0] for p in pts], [p[1] for p in pts])
    n_points = len({p[0] for p in pts})
    if curve is None:
        return Forecast("too_few", target, n_now, iou_now, points=n_points)

    def result(status: str, **extra: Any) -> Forecast:
        return Forecast(status, target, n_now, iou_now, curve=curve, level=min(1.0, curve.a),
                        points=n_points, **extra)
    if curve.iou(2 * n_now) - curve.iou(n_now) < FLAT_GAIN and curve.iou(n_now) < target:
        return result("flat")
    more = _more(curve, target, n_now)
    if more == 0.0:
        return result("reached")
    if math.isinf(more):
        return result("unreachable")
    rng = np.random.default_rng(seed)
    boot = []
    for xs, ys in _resamples(pts, rng, n_boot):
        c = fit_curve(xs, ys)
        boot.append(_more(c, target, n_now) if c is not None else math.inf)
    arr = np.array(boot, float) if boot else np.array([more])
    lo, hi = (float(np.percentile(arr, q, method="nearest")) for q in RANGE)  # inf: out of reach
    return result("ok", more=max(1, int(math.ceil(more))),
                  low=None if math.isinf(lo) else int(math.floor(lo)),
                  high=None if math.isinf(hi) else int(math.ceil(hi)), boot_more=tuple(arr))


def predict_iou(points: Sequence[Point], n: float, n_boot: int = N_BOOT,
                seed: int = 0) -> tuple[float, float, float] | None:
    """(IoU at ``n``, low, high) from the fitted curve and its bootstrap (the range
    :data:`RANGE`), or None with too few points. What the suite check of the forecast uses."""
    pts = sorted((p for p in points if p[1] is not None and math.isfinite(p[1])), key=lambda p: p[0])
    curve = fit_curve([p[0] for p in pts], [p[1] for p in pts])
    if curve is None:
        return None
    rng = np.random.default_rng(seed)
    vals = [float(c.iou(n)) for xs, ys in _resamples(pts, rng, n_boot)
            if (c := fit_curve(xs, ys)) is not None]
    est = float(curve.iou(n))
    if not vals:
        return est, est, est
    return est, float(np.percentile(vals, RANGE[0])), float(np.percentile(vals, RANGE[1]))


def lineage(versions: Sequence[Any]) -> list[Any]:
    """The active version and its ancestors (parent links), oldest first; [] without an active one."""
    by_id = {v.id: v for v in versions}
    v = next((x for x in versions if x.active), None)
    chain: list[Any] = []
    while v is not None and v not in chain:
        chain.append(v)
        v = by_id.get(v.parent) if v.parent is not None else None
    return chain[::-1]


def points_of_lineage(versions: Sequence[Any]) -> list[Point]:
    """(n_train, val_iou, per-image held-out IoUs) of each version of the active lineage with
    held-out numbers. Versions trained on the same number of images as a later one are left
    out (the later one counts: the curve is over the images, not the clicks)."""
    pts: dict[int, Point] = {}
    for v in lineage(versions):
        m = v.metrics or {}
        n, iou = m.get("n_train"), m.get("val_iou")
        if not n or iou is None or not math.isfinite(float(iou)):
            continue
        scores = [s[0] for s in (m.get("held_out_scores") or {}).values() if s and s[0] is not None]
        pts[int(n)] = (int(n), float(iou), scores)
    return [pts[k] for k in sorted(pts)]
