"""Overlay layers: toggles change what is rendered; dirty-rect updates equal a full redraw."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication

from app.canvas import MaskCanvas
from app.canvas import render
from app.canvas.document import Rect
from app.canvas.layers import OverlayItem
from app.canvas.testing import drag, shown_canvas, view_pos

H, W = 200, 300
GREY = 100


@pytest.fixture
def canvas(qtbot) -> MaskCanvas:
    mask = np.zeros((H, W), np.uint8)
    mask[50:150, 80:220] = 1
    c = shown_canvas(qtbot, np.full((H, W, 3), GREY, np.uint8), mask)
    return c


def _frame(canvas: MaskCanvas) -> QImage:
    QApplication.processEvents()
    return canvas.viewport().grab().toImage()


def _rgb(canvas: MaskCanvas, frame: QImage, x: int, y: int) -> tuple[int, int, int]:
    c = QColor(frame.pixel(view_pos(canvas, x, y).toPoint()))
    return c.red(), c.green(), c.blue()


def test_mask_toggle_and_opacity_change_the_rendered_colour(canvas):
    on = _rgb(canvas, _frame(canvas), 150, 100)
    assert on[0] > GREY + 40 and on[1] < GREY, f"mask colour not blended in: {on}"
    assert _rgb(canvas, _frame(canvas), 20, 20) == (GREY, GREY, GREY)
    canvas.set_mask_opacity(1.0)
    assert _rgb(canvas, _frame(canvas), 150, 100) == (255, 64, 64)
    canvas.set_mask_visible(False)
    assert _rgb(canvas, _frame(canvas), 150, 100) == (GREY, GREY, GREY)
    canvas.set_mask_visible(True)
    canvas.set_class_colors([(0, 0, 0), (0, 0, 255)])
    assert _rgb(canvas, _frame(canvas), 150, 100) == (0, 0, 255)


def test_mask_key_toggles_and_reports(canvas, qtbot):
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    with qtbot.waitSignal(canvas.layerVisibilityChanged) as blocker:
        QTest.keyClick(canvas, Qt.Key.Key_M)
    assert blocker.args == ["mask", False] and not canvas.layer_visible("mask")


def test_boundary_toggle_draws_the_outline(canvas):
    canvas.set_mask_visible(False)
    edge = _rgb(canvas, _frame(canvas), 80, 100)
    assert edge == (GREY, GREY, GREY)
    canvas.set_boundary_width(3)
    canvas.set_boundary_visible(True)
    frame = _rgb(canvas, _frame(canvas), 80, 100)
    assert frame[0] > 200 and frame[1] > 200 and frame[2] < 50, f"no yellow boundary: {frame}"
    assert _rgb(canvas, _frame(canvas), 150, 100) == (GREY, GREY, GREY), "inside is not boundary"
    canvas.set_boundary_visible(False)
    assert _rgb(canvas, _frame(canvas), 80, 100) == (GREY, GREY, GREY)


def test_diff_shows_added_and_removed_pixels(canvas):
    pred = np.zeros((H, W), np.uint8)
    pred[50:150, 150:280] = 1      # mask has 80..150 extra (added), prediction 220..280 (removed)
    canvas.set_prediction(pred)
    canvas.set_mask_visible(False)
    before = [_rgb(canvas, _frame(canvas), x, 100) for x in (100, 250, 180)]
    canvas.set_diff_visible(True)
    frame = _frame(canvas)
    added, removed, same = (_rgb(canvas, frame, x, 100) for x in (100, 250, 180))
    assert added != before[0] and added[1] > 150, f"added pixels not green: {added}"
    assert removed != before[1] and removed[2] > 150, f"removed pixels not purple: {removed}"
    assert same == (GREY, GREY, GREY)
    canvas.set_diff_visible(False)
    assert _rgb(canvas, _frame(canvas), 100, 100) == (GREY, GREY, GREY)


def _buffer(canvas: MaskCanvas, name: str) -> np.ndarray:
    return canvas._overlays.items[name].ensure_buffer().copy()


def test_dirty_rect_updates_equal_a_full_redraw(canvas):
    pred = np.zeros((H, W), np.uint8)
    pred[20:90, 20:120] = 1
    canvas.set_prediction(pred)
    canvas.set_boundary_visible(True)
    canvas.set_diff_visible(True)
    canvas.set_brush_size(9)
    drag(canvas, [(10, 10), (200, 180), (290, 30)])
    canvas.set_tool("eraser")
    drag(canvas, [(100, 60), (180, 120)])
    canvas.undo_stack().undo()
    canvas.set_tool("fill")
    drag(canvas, [(5, 190)])
    mask, full = canvas.mask(), Rect(0, 0, W, H)
    ov = canvas._overlays
    assert np.array_equal(_buffer(canvas, "mask"), render.mask_pixels(mask, full, ov.lut))
    _, boundary = render.boundary_pixels(mask, full, ov.boundary_width, ov.boundary_argb)
    assert np.array_equal(_buffer(canvas, "boundary"), boundary)
    diff = render.diff_pixels(mask, pred, full, ov.added_argb, ov.removed_argb)
    assert np.array_equal(_buffer(canvas, "diff"), diff)


def test_hidden_layers_catch_up_when_shown(canvas):
    canvas.set_brush_size(11)
    drag(canvas, [(10, 180), (290, 180)])   # boundary hidden: only marked stale
    canvas.set_boundary_visible(True)
    _, boundary = render.boundary_pixels(canvas.mask(), Rect(0, 0, W, H), 2, canvas._overlays.boundary_argb)
    assert np.array_equal(_buffer(canvas, "boundary"), boundary)


def test_a_stroke_repaints_only_its_dirty_rect(canvas, monkeypatch):
    canvas.set_boundary_visible(True)  # full (lazy) build happens here, before the stroke
    rects: list[float] = []
    original = OverlayItem.write

    def spy(self, rect, pixels):
        rects.append(rect.width * rect.height)
        original(self, rect, pixels)

    monkeypatch.setattr(OverlayItem, "write", spy)
    canvas.set_brush_size(5)
    drag(canvas, [(30, 30), (40, 35), (50, 40), (60, 45)])
    assert rects and max(rects) < 0.02 * H * W, f"overlay rect areas {rects}"
