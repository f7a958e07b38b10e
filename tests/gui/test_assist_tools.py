"""Issue 16, assisted masks, driven like a user: box → GrabCut and scribbles → DenseCRF.

The window opens a folder of synthetic textured discs; the box tool is chosen by its shortcut
(X), the scribble tool by its Tools-panel button; boxes and strokes are real mouse drags on the
canvas; undo is Ctrl+Z. Assertions are on pixels (IoU against the disc's truth), the undo
stack, the saved mask and the image status.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QToolButton

from app.canvas.testing import drag, send_mouse, view_pos
from segcore import io
from segcore.project import ImageStatus

from .conftest import make_window

H, W = 160, 200
CENTRE, RADIUS = (100, 80), 45


def _disc(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:H, :W]
    truth = (xx - CENTRE[0]) ** 2 + (yy - CENTRE[1]) ** 2 <= RADIUS ** 2
    img = np.empty((H, W, 3), np.float32)
    img[...] = (90, 120, 95)
    img[truth] = (190, 70, 60)
    img += rng.normal(0, 14, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), truth


TRUTH = _disc(0)[1]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


@pytest.fixture
def disc_dir(tmp_path) -> Path:
    folder = tmp_path / "discs"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"disc_{i}.png"), _disc(i)[0][:, :, ::-1])
    return folder


class ShiftedPredictor:
    """A confident, deliberately wrong model: the disc shifted 30 px to the right."""

    device_name = "CPU"

    def predict(self, image: np.ndarray):
        from segcore.inference import Prediction

        p1 = np.roll(TRUTH, 30, axis=1).astype(np.float32) * 0.8 + 0.1
        probs = np.stack([1 - p1, p1]).astype(np.float32)
        return Prediction(mask=(p1 > 0.5).astype(np.uint8), probs=probs, uncertainty=0.4)


@pytest.fixture
def shifted_model(monkeypatch):
    from app.workers import prediction

    monkeypatch.setattr(prediction, "default_model_factory",
                        lambda project: prediction.LoadedModel(ShiftedPredictor(), None, "shifted"))


def _ctrl_z(window) -> None:
    QTest.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)


def _tool_button(window, action_name: str) -> QToolButton:
    action = window.action_table[action_name]
    for button in window.tools.findChildren(QToolButton):
        if button.defaultAction() is action:
            return button
    raise AssertionError(f"no Tools-panel button for {action_name}")


def test_box_tool_by_shortcut_sets_the_object_mask_and_undoes_in_one_step(qtbot, disc_dir):
    window = make_window(qtbot, disc_dir)  # no trained model: no prediction, empty mask
    canvas = window.canvas
    stem = canvas.current_stem()
    assert not canvas.mask().any()
    QTest.keyClick(canvas, Qt.Key.Key_X)
    assert canvas.tool() == "box" and window.action_table.tool_box.isChecked()
    x0, y0 = CENTRE[0] - RADIUS - 5, CENTRE[1] - RADIUS - 5
    x1, y1 = CENTRE[0] + RADIUS + 5, CENTRE[1] + RADIUS + 5
    drag(canvas, [(x0, y0), ((x0 + x1) / 2, (y0 + y1) / 2), (x1, y1)], process=True)
    qtbot.waitUntil(lambda: canvas.mask().any(), timeout=10000)
    mask = canvas.mask().copy()
    assert _iou(mask == 1, TRUTH) >= 0.8
    assert not mask[:, :x0].any() and not mask[:y0].any()  # nothing outside the box
    assert canvas.undo_stack().count() == 1
    assert canvas.undo_stack().undoText() == "Box (GrabCut)"
    window.session.saver.flush()
    project = window.session.project
    assert np.array_equal(io.read_mask(project.mask_path(stem)) > 0, mask == 1)  # saved
    assert project.record(stem).status == ImageStatus.IN_PROGRESS  # the user's edit
    _ctrl_z(window)
    assert not canvas.mask().any()  # one Ctrl+Z: back to before the box
    window.session.saver.flush()
    window.close()


def test_refine_box_uses_an_eraser_stroke_since_the_box(qtbot, disc_dir):
    window = make_window(qtbot, disc_dir)
    canvas = window.canvas
    QTest.keyClick(canvas, Qt.Key.Key_X)
    drag(canvas, [(40, 20), (160, 140)], process=True)
    qtbot.waitUntil(lambda: canvas.mask().any(), timeout=10000)
    assert canvas.undo_stack().count() == 1
    QTest.keyClick(canvas, Qt.Key.Key_E)
    canvas.set_brush_size(5)
    drag(canvas, [(100, 40), (100, 120)])  # a cut through the disc: certain background
    after_stroke = canvas.mask().copy()
    QTest.keyClick(canvas, Qt.Key.Key_X, Qt.KeyboardModifier.ShiftModifier)  # Refine Box
    qtbot.waitUntil(lambda: canvas.undo_stack().count() == 3, timeout=10000)
    assert canvas.undo_stack().undoText() == "Refine box (GrabCut)"
    refined = canvas.mask()
    assert not refined[40:121, 99:102].any()  # the erased line stays background
    assert _iou(refined == 1, TRUTH) >= 0.75
    _ctrl_z(window)
    assert np.array_equal(canvas.mask(), after_stroke)
    window.session.saver.flush()
    window.close()


def test_scribbles_over_a_wrong_prediction_move_it_toward_the_truth(qtbot, disc_dir, shifted_model):
    window = make_window(qtbot, disc_dir)
    canvas = window.canvas
    qtbot.waitUntil(lambda: canvas.prediction() is not None and canvas.mask().any(), timeout=10000)
    start = canvas.mask().copy()
    before = _iou(start == 1, TRUTH)
    qtbot.mouseClick(_tool_button(window, "tool_scribble"), Qt.MouseButton.LeftButton)
    assert canvas.tool() == "scribble"
    canvas.set_brush_size(7)
    # foreground where the model missed the disc (its left part), left button
    drag(canvas, [(65, 60), (65, 80), (65, 100)], process=True)
    qtbot.waitUntil(lambda: canvas.undo_stack().count() == 1, timeout=10000)
    after_fg = canvas.mask().copy()
    assert _iou(after_fg == 1, TRUTH) > before + 0.05
    # background where it wrongly sees the disc (right of it), right button
    drag(canvas, [(165, 60), (165, 80), (165, 100)], button=Qt.MouseButton.RightButton, process=True)
    qtbot.waitUntil(lambda: canvas.undo_stack().count() == 2, timeout=10000)
    after_bg = canvas.mask().copy()
    assert _iou(after_bg == 1, TRUTH) > before + 0.15
    assert (after_bg[60:101, 163:168] == 0).all()  # the background stroke is a hard label
    assert "DenseCRF" in window.status.currentMessage()
    stem = canvas.current_stem()
    window.session.saver.flush()
    assert window.session.project.record(stem).status == ImageStatus.IN_PROGRESS
    _ctrl_z(window)  # one step per stroke
    assert np.array_equal(canvas.mask(), after_fg)
    _ctrl_z(window)
    assert np.array_equal(canvas.mask(), start)
    window.session.saver.flush()
    window.close()


def test_scribbles_without_a_model_use_grabcut_and_say_so(qtbot, disc_dir):
    window = make_window(qtbot, disc_dir)
    canvas = window.canvas
    QTest.keyClick(canvas, Qt.Key.Key_S)
    assert canvas.tool() == "scribble"
    canvas.set_brush_size(9)
    drag(canvas, [(80, 80), (100, 75), (120, 80)], process=True)
    qtbot.waitUntil(lambda: canvas.undo_stack().count() == 1, timeout=10000)
    assert _iou(canvas.mask() == 1, TRUTH) >= 0.8
    assert "GrabCut" in window.status.currentMessage()
    # Shift + left button draws background: a cut across the disc's top
    shift = Qt.KeyboardModifier.ShiftModifier
    pts = [(60, 50), (100, 50), (140, 50)]
    send_mouse(canvas, QEvent.Type.MouseButtonPress, view_pos(canvas, *pts[0]), modifiers=shift)
    for p in pts[1:]:
        send_mouse(canvas, QEvent.Type.MouseMove, view_pos(canvas, *p), modifiers=shift)
    send_mouse(canvas, QEvent.Type.MouseButtonRelease, view_pos(canvas, *pts[-1]), modifiers=shift)
    qtbot.waitUntil(lambda: canvas.undo_stack().count() == 2, timeout=10000)
    assert not canvas.mask()[47:54, 60:141].any()
    assert canvas.mask()[80, 100] == 1
    QTest.keyClick(canvas, Qt.Key.Key_Escape)  # clears the scribbles, keeps the mask
    assert not canvas.assist.has_scribbles() and canvas.mask().any()
    window.session.saver.flush()
    window.close()
