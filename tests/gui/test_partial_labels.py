"""Partial (corrective) labels driven like a user: P switches the mode, an image starts all
void (255) with the prediction hatched under it, strokes label only their pixels (brush = the
class, eraser = background), Clear and Reset go back to void; saved masks keep 255."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.canvas import render
from app.canvas.testing import drag
from segcore import io

CTRL = Qt.KeyboardModifier.ControlModifier


def _partial_window(window, qtbot):
    qtbot.waitUntil(lambda: window.canvas.prediction() is not None, timeout=10000)
    QTest.keyClick(window, Qt.Key.Key_P)
    assert window.action_table.partial_labels.isChecked()
    assert window.session.project.get_setting("partial_labels") is True
    return window.canvas


def test_partial_mode_starts_void_and_labels_only_painted_pixels(window, qtbot):
    canvas = _partial_window(window, qtbot)
    assert (canvas.mask() == 255).all()  # nothing labelled yet
    assert "partial labels" in window.status_chip.text()
    ov = canvas._overlays
    full = canvas.document().full_rect()
    expected = render.mask_pixels(canvas.mask(), full, ov.lut, ov.light_lut, canvas.prediction())
    buffer = ov.items["mask"].ensure_buffer()
    np.testing.assert_array_equal(buffer, expected)  # the prediction shows under the void
    drag(canvas, [(10, 10), (30, 10)])               # brush: class 1
    QTest.keyClick(window, Qt.Key.Key_E)
    drag(canvas, [(10, 60), (30, 60)])               # eraser: background label
    m = canvas.mask()
    assert m[10, 20] == 1 and m[60, 20] == 0 and m[90, 120] == 255
    assert 0 < np.count_nonzero(m != 255) < m.size // 4
    QTest.keyClick(window, Qt.Key.Key_Backspace, CTRL)  # Clear Mask: back to not labelled
    assert (canvas.mask() == 255).all()


def test_partial_mask_is_saved_with_void_and_marked_done(window, qtbot):
    canvas = _partial_window(window, qtbot)
    stem = window.current_stem()
    drag(canvas, [(10, 10), (30, 10)])
    QTest.keyClick(window, Qt.Key.Key_D, CTRL)
    project = window.session.project
    on_disk = io.read_mask(project.mask_path(stem))
    assert on_disk[10, 20] == 1 and on_disk[90, 120] == 255
    assert project.done_stems() == [stem]
