"""MaskCanvas driven like a user: real mouse/key events on the viewport, pixels asserted."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from app.canvas import MaskCanvas
from app.canvas.testing import click, drag, send_mouse, shown_canvas, view_pos
from app.canvas.undo import stack_bytes

H, W = 200, 300


def _image(h: int = H, w: int = W) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([(xx * 255 // w), (yy * 255 // h), np.full((h, w), 90)], -1).astype(np.uint8)


def _segment_distance(h: int, w: int, a: tuple[float, float], b: tuple[float, float]) -> np.ndarray:
    """Distance of every pixel centre (integer coords) to segment a–b."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    t = np.clip(((xx - ax) * dx + (yy - ay) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
    return np.hypot(xx - (ax + t * dx), yy - (ay + t * dy))


@pytest.fixture
def canvas(qtbot) -> MaskCanvas:
    return shown_canvas(qtbot, _image())


def test_stroke_changes_exactly_the_expected_pixels(canvas, qtbot):
    canvas.set_brush_size(5)
    path = [(30, 50), (60, 52), (110, 60), (160, 80), (200, 90)]
    with qtbot.waitSignal(canvas.strokeFinished) as blocker:
        drag(canvas, path)
    assert blocker.args == ["img"]
    mask = canvas.mask()
    assert mask.dtype == np.uint8 and mask.shape == (H, W)
    dist = np.full((H, W), np.inf)
    for a, b in zip(path, path[1:]):
        dist = np.minimum(dist, _segment_distance(H, W, a, b))
    assert np.all(mask[dist <= 2.0] == 1), "pixels on the path must be painted"
    assert np.all(mask[dist > 3.5] == 0), "pixels away from the path must be untouched"
    assert set(np.unique(mask)) == {0, 1}
    assert canvas.has_edits()


def test_fast_mouse_moves_give_a_continuous_line(canvas):
    canvas.set_brush_size(3)
    drag(canvas, [(5, 5), (150, 190), (295, 10)])  # two huge jumps between events
    mask = canvas.mask()
    for a, b in (((5, 5), (150, 190)), ((150, 190), (295, 10))):
        for t in np.linspace(0, 1, 800):
            x, y = a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
            assert mask[int(round(y)), int(round(x))] == 1, f"gap at {(x, y)}"


def test_eraser_clears_along_the_path(canvas):
    full = np.ones((H, W), np.uint8)
    canvas.set_image("img", _image(), full, None)
    canvas.zoom_actual()
    canvas.set_tool("eraser")
    canvas.set_brush_size(7)
    drag(canvas, [(20, 100), (280, 100)])
    mask = canvas.mask()
    dist = _segment_distance(H, W, (20, 100), (280, 100))
    assert np.all(mask[dist <= 3.0] == 0)
    assert np.all(mask[dist > 4.5] == 1)


def test_fill_floods_the_clicked_region_only(canvas):
    ring = np.zeros((H, W), np.uint8)
    ring[40:120, 60:200] = 1
    ring[42:118, 62:198] = 0  # a closed 2-px outline; inside and outside are background
    canvas.set_image("img", _image(), ring, None)
    canvas.zoom_actual()
    canvas.set_tool("fill")
    click(canvas, 100, 80)
    mask = canvas.mask()
    assert np.all(mask[40:120, 60:200] == 1)
    assert mask[:40].sum() == 0 and mask[120:].sum() == 0 and mask[:, :60].sum() == 0
    canvas.undo_stack().undo()
    assert np.array_equal(canvas.mask(), ring)


def test_fill_with_class_picker(canvas):
    canvas.set_tool("fill")
    canvas.set_active_class(3)
    click(canvas, 10, 10)
    assert np.all(canvas.mask() == 3)


def test_bracket_keys_and_ctrl_wheel_change_brush_size(canvas, qtbot):
    canvas.set_brush_size(20)
    with qtbot.waitSignal(canvas.brushSizeChanged):
        QTest.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert canvas.brush_size() == 22
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush_size() < 22
    before = canvas.brush_size()
    _wheel(canvas, 120, Qt.KeyboardModifier.ControlModifier)
    assert canvas.brush_size() > before
    zoom = canvas.zoom()
    assert canvas.zoom() == zoom, "ctrl+wheel must not zoom"
    canvas.set_brush_size(1)
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush_size() == 1


def _wheel(canvas: MaskCanvas, dy: int, mods=Qt.KeyboardModifier.NoModifier,
           pos: QPointF | None = None) -> None:
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    vp = canvas.viewport()
    pos = pos or QPointF(vp.rect().center())
    ev = QWheelEvent(pos, vp.mapToGlobal(pos), QPoint(0, 0), QPoint(0, dy), Qt.MouseButton.NoButton,
                     mods, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(vp, ev)


def test_wheel_zooms_around_the_cursor_and_fit_and_actual(canvas):
    canvas.set_zoom(2.0)  # zoomed in: scroll range is enough to keep any point under the cursor
    anchor = view_pos(canvas, 170, 110)
    before = canvas.image_point(anchor)
    _wheel(canvas, 360, pos=anchor)
    assert canvas.zoom() > 3.0
    after = canvas.image_point(anchor)
    assert abs(after[0] - before[0]) < 1.0 and abs(after[1] - before[1]) < 1.0
    canvas.fit_to_view()
    vp = canvas.viewport().rect()
    assert canvas.zoom() == pytest.approx(min(vp.width() / W, vp.height() / H), rel=0.02)
    canvas.zoom_actual()
    assert canvas.zoom() == 1.0


def test_space_drag_and_middle_drag_pan(canvas):
    canvas.set_zoom(4.0)
    h = canvas.horizontalScrollBar()
    start = h.value()
    QTest.keyPress(canvas, Qt.Key.Key_Space)
    p0 = QPointF(200, 150)
    send_mouse(canvas, QEvent.Type.MouseButtonPress, p0)
    send_mouse(canvas, QEvent.Type.MouseMove, p0 + QPointF(-60, 0))
    send_mouse(canvas, QEvent.Type.MouseButtonRelease, p0 + QPointF(-60, 0))
    QTest.keyRelease(canvas, Qt.Key.Key_Space)
    assert h.value() == start + 60
    assert canvas.mask().sum() == 0, "panning must not paint"
    mid = Qt.MouseButton.MiddleButton
    send_mouse(canvas, QEvent.Type.MouseButtonPress, p0, mid)
    send_mouse(canvas, QEvent.Type.MouseMove, p0 + QPointF(30, 0), mid)
    send_mouse(canvas, QEvent.Type.MouseButtonRelease, p0 + QPointF(30, 0), mid)
    assert h.value() == start + 30
    assert canvas.mask().sum() == 0


def test_undo_restores_exact_mask_and_redo_reapplies(canvas, qtbot):
    canvas.set_brush_size(9)
    drag(canvas, [(20, 20), (120, 120)])
    first = canvas.mask().copy()
    canvas.set_tool("eraser")
    drag(canvas, [(20, 120), (120, 20)])
    second = canvas.mask().copy()
    stack = canvas.undo_stack()
    assert stack.count() == 2
    with qtbot.waitSignal(canvas.strokeFinished):
        stack.undo()
    assert np.array_equal(canvas.mask(), first)
    stack.undo()
    assert canvas.mask().sum() == 0 and not canvas.has_edits()
    with qtbot.waitSignal(canvas.strokeFinished):
        stack.redo()
    assert np.array_equal(canvas.mask(), first)
    stack.redo()
    assert np.array_equal(canvas.mask(), second)


def test_250_strokes_keep_200_undo_steps_and_bounded_memory(canvas):
    canvas.set_brush_size(4)
    rng = np.random.default_rng(0)
    stack = canvas.undo_stack()
    snapshots = [canvas.mask().copy()]  # mask after each pushed command
    canvas.strokeFinished.connect(lambda _stem: snapshots.append(canvas.mask().copy()))
    for i in range(280):
        x, y = rng.integers(10, W - 30), rng.integers(10, H - 30)
        canvas.set_tool("eraser" if i % 4 == 3 else "brush")
        drag(canvas, [(x, y), (x + 15, y + 10)])
    assert len(snapshots) > 250
    assert stack.undoLimit() >= 200
    assert stack.count() == stack.undoLimit(), "oldest steps are dropped at the limit"
    total = stack_bytes(stack)
    assert total < 0.05 * 250 * H * W, f"undo stack holds {total} bytes"
    canvas.strokeFinished.disconnect()
    for steps in range(1, 201):
        stack.undo()
        assert np.array_equal(canvas.mask(), snapshots[-1 - steps]), f"undo step {steps}"
    for _ in range(200):
        stack.redo()
    assert np.array_equal(canvas.mask(), snapshots[-1])


def test_accept_prediction_is_one_undoable_edit(canvas, qtbot):
    pred = np.zeros((H, W), np.uint8)
    pred[50:150, 100:250] = 1
    canvas.set_prediction(pred)
    with qtbot.waitSignal(canvas.strokeFinished):
        canvas.accept_prediction()
    assert np.array_equal(canvas.mask(), pred)
    assert canvas.undo_stack().count() == 1
    canvas.undo_stack().undo()
    assert canvas.mask().sum() == 0


def test_undo_history_is_per_image(canvas, qtbot):
    drag(canvas, [(20, 20), (60, 60)])
    mask_a = canvas.mask().copy()
    stack_a = canvas.undo_stack()
    with qtbot.waitSignal(canvas.maskReplaced):
        canvas.set_image("other", _image(), None, None)
    assert canvas.current_stem() == "other"
    assert canvas.undo_stack() is not stack_a and canvas.undo_stack().count() == 0
    # Coming back with the mask as it was left keeps the history …
    canvas.set_image("img", _image(), mask_a, None)
    assert canvas.undo_stack() is stack_a and stack_a.count() == 1
    stack_a.undo()
    assert canvas.mask().sum() == 0
    stack_a.redo()
    # … but a mask changed elsewhere drops it (old patches would not apply).
    canvas.set_image("other", _image(), None, None)
    canvas.set_image("img", _image(), np.zeros((H, W), np.uint8), None)
    assert canvas.undo_stack().count() == 0


def test_wrong_mask_size_is_rejected_with_a_message(canvas):
    with pytest.raises(ValueError, match="mask shape"):
        canvas.set_image("bad", _image(), np.zeros((10, 10), np.uint8), None)


def test_large_image_opens_paints_and_renders(qtbot):
    c = MaskCanvas()
    qtbot.addWidget(c)
    c.resize(300, 240)
    c.show()
    qtbot.waitExposed(c)
    big = np.zeros((3000, 4000, 3), np.uint8)
    big[..., 1] = 128
    c.set_image("big", big, None, None)
    c.set_brush_size(200)
    drag(c, [(1000, 1000), (3000, 2000)])
    assert c.mask()[1500, 2000] == 1 and c.mask()[100, 100] == 0
    patch = c.undo_stack().command(0).patch
    assert patch.before.size < 0.5 * 3000 * 4000
    frame = c.viewport().grab().toImage()
    assert not frame.isNull()
