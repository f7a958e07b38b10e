"""Brush benchmark: ms per mouse-move segment on a 4000×3000 image, offscreen.

Run: ``python -m tests.benchmarks.bench_brush [--quick]``

Each timed segment is the real path a user's drag takes: a QMouseEvent (LeftButton held)
sent to the canvas viewport → mask update (cv2 line + round caps) → dirty-rect LUT
conversion into the overlay QImage → ``QGraphicsItem.update(rect)`` → the scene/viewport
repaint, processed by ``QApplication.processEvents()``. The baseline runs the same path but
re-converts and repaints the whole mask on every move (what a naive overlay does).
Also timed: a pan step (scroll 40 px) and a wheel-zoom step, each with its repaint.
Results merge into tests/benchmarks/results.json under "brush".
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from tests.benchmarks.common import median, percentile, record, report

H, W = 3000, 4000
BRUSH = 30


class PaintCounter(QObject):
    """Counts viewport paint events, to prove each timed step really repainted."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.count += 1
        return False


def make_image(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.stack([(xx * 255 // W), (yy * 255 // H), ((xx + yy) % 256)], -1).astype(np.uint8)
    img = np.clip(img.astype(np.int16) + rng.integers(-20, 20, img.shape, dtype=np.int16), 0, 255)
    mask = np.zeros((H, W), np.uint8)
    mask[800:2200, 1000:3000] = 1
    pred = np.zeros((H, W), np.uint8)
    pred[900:2300, 1200:3200] = 1
    return img.astype(np.uint8), mask, pred


def stroke_path(n: int, step: float = 9.0, centre: tuple[float, float] = (2000, 1500),
                span: float = 3400, amp: float = 600) -> list[tuple[float, float]]:
    """A wavy drag, ``step`` px per move, back and forth across ``span`` around ``centre``."""
    pts = []
    for i in range(n + 1):
        d = (i * step) % (2 * span)
        x = centre[0] - span / 2 + (d if d < span else 2 * span - d)
        y = centre[1] + amp * np.sin(i / 40.0)
        pts.append((x, y))
    return pts


def send_move(canvas, pos: QPointF) -> None:
    from app.canvas.testing import send_mouse

    send_mouse(canvas, QEvent.Type.MouseMove, pos)


def time_stroke(app, canvas, points, counter: PaintCounter) -> tuple[list[float], float]:
    """ms per move segment (event → mask → overlay → repaint processed); paints per move."""
    from app.canvas.testing import send_mouse, view_pos

    app.processEvents()
    send_mouse(canvas, QEvent.Type.MouseButtonPress, view_pos(canvas, *points[0]))
    app.processEvents()
    times = []
    paints0 = counter.count
    for x, y in points[1:]:
        pos = view_pos(canvas, x, y)
        t0 = time.perf_counter()
        send_move(canvas, pos)
        app.processEvents()
        times.append((time.perf_counter() - t0) * 1000.0)
    paints = (counter.count - paints0) / max(1, len(points) - 1)
    send_mouse(canvas, QEvent.Type.MouseButtonRelease, view_pos(canvas, *points[-1]))
    app.processEvents()
    return times, paints


def time_view_steps(app, canvas, n: int) -> tuple[list[float], list[float]]:
    """ms per pan step (40 px scroll) and per wheel-zoom notch, repaint included."""
    pans, zooms = [], []
    hbar = canvas.horizontalScrollBar()
    for i in range(n):
        t0 = time.perf_counter()
        hbar.setValue(hbar.value() + (40 if (i // 10) % 2 == 0 else -40))
        app.processEvents()
        pans.append((time.perf_counter() - t0) * 1000.0)
    vp = canvas.viewport()
    centre = QPointF(vp.rect().center())
    for i in range(n):
        dy = 120 if (i // 5) % 2 == 0 else -120
        ev = QWheelEvent(centre, vp.mapToGlobal(centre), QPoint(0, 0), QPoint(0, dy),
                         Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                         Qt.ScrollPhase.NoScrollPhase, False)
        t0 = time.perf_counter()
        QApplication.sendEvent(vp, ev)
        app.processEvents()
        zooms.append((time.perf_counter() - t0) * 1000.0)
    return pans, zooms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer segments (smoke run)")
    args = parser.parse_args(argv)
    n_fast, n_base, n_view = (150, 15, 20) if args.quick else (600, 40, 60)

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from app.canvas import MaskCanvas
    from app.canvas.document import Rect

    rng = np.random.default_rng(0)
    image, mask, pred = make_image(rng)
    canvas = MaskCanvas()
    canvas.resize(1280, 800)
    canvas.show()
    counter = PaintCounter()
    canvas.viewport().installEventFilter(counter)
    t0 = time.perf_counter()
    canvas.set_image("bench", image, mask, pred)
    app.processEvents()
    open_ms = (time.perf_counter() - t0) * 1000.0
    canvas.set_brush_size(BRUSH)

    rows, result = [], {"image": f"{W}x{H}", "brush_px": BRUSH, "open_ms": round(open_ms, 1)}
    scenarios = [("fit, mask layer", "fit", False), ("1:1, mask layer", "actual", False),
                 ("fit, mask+boundary+diff", "fit", True)]
    for label, zoom, all_layers in scenarios:
        canvas.fit_to_view() if zoom == "fit" else canvas.zoom_actual()
        if zoom == "actual":
            canvas.centerOn(1500, 1500)
        canvas.set_boundary_visible(all_layers)
        canvas.set_diff_visible(all_layers)
        shape = {} if zoom == "fit" else {"centre": (1500, 1500), "span": 1000, "amp": 250}
        fast, paints = time_stroke(app, canvas, stroke_path(n_fast, **shape), counter)
        # Naive baseline: same events, but every move re-converts and repaints the whole mask.
        real_refresh = canvas.refresh
        canvas.refresh = lambda rect, _r=real_refresh: _r(Rect(0, 0, W, H))  # type: ignore[method-assign]
        try:
            base, _ = time_stroke(app, canvas, stroke_path(n_base, step=11.0, **shape), counter)
        finally:
            canvas.refresh = real_refresh  # type: ignore[method-assign]
        med, p99, bmed = median(fast), percentile(fast, 99), median(base)
        rows.append((label, med, p99, bmed, percentile(base, 99), bmed / med, paints))
        result[label] = {"median_ms": round(med, 3), "p99_ms": round(p99, 3),
                         "baseline_median_ms": round(bmed, 3),
                         "baseline_p99_ms": round(percentile(base, 99), 3),
                         "ratio": round(bmed / med, 1), "segments": len(fast),
                         "baseline_segments": len(base), "paints_per_segment": round(paints, 2)}
        canvas.undo_stack().clear()
    canvas.set_boundary_visible(False)
    canvas.set_diff_visible(False)
    canvas.fit_to_view()
    canvas.set_zoom(1.0)
    pans, zooms = time_view_steps(app, canvas, n_view)
    result["pan_step"] = {"median_ms": round(median(pans), 3), "p99_ms": round(percentile(pans, 99), 3)}
    result["zoom_step"] = {"median_ms": round(median(zooms), 3), "p99_ms": round(percentile(zooms, 99), 3)}
    result["target"] = "median < 4 ms per segment"
    report("Brush: ms per mouse-move segment, 4000x3000, offscreen",
           ["scenario", "median ms", "p99 ms", "naive median ms", "naive p99 ms", "speed-up ×",
            "paints/move"], rows)
    print(f"open (set_image) {open_ms:.0f} ms; pan step median {median(pans):.2f} ms "
          f"(p99 {percentile(pans, 99):.2f}); wheel-zoom step median {median(zooms):.2f} ms "
          f"(p99 {percentile(zooms, 99):.2f})")
    record("brush", result)
    canvas.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
