"""Image status driven like a user: stroke + undo reverts, Mark Done, Done & Next, Accept,
Skip, Reset (undoable, backed up), the hatched prediction look, the list badges."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.canvas.testing import drag
from segcore import io

CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier


def _status(window, stem):
    return window.session.project.record(stem).status.value


def _settle(window, qtbot) -> None:
    window.session.saver.flush()
    qtbot.wait(10)


def _with_prediction(window, qtbot):
    canvas = window.canvas
    qtbot.waitUntil(lambda: canvas.prediction() is not None, timeout=10000)
    qtbot.waitUntil(lambda: canvas.mask_is_prediction(), timeout=5000)
    return window.current_stem()


def test_stroke_makes_in_progress_and_undo_reverts_status_and_file(window, qtbot):
    stem = _with_prediction(window, qtbot)
    project = window.session.project
    assert _status(window, stem) == "predicted"
    assert "prediction" in window.status_chip.text()
    with qtbot.waitSignal(window.canvas.strokeFinished):
        drag(window.canvas, [(5, 5), (60, 60)])
    _settle(window, qtbot)
    assert _status(window, stem) == "in_progress"
    assert project.mask_path(stem).is_file()
    assert not window.canvas.mask_is_prediction()  # drawn solid: it is the user's now
    assert project.done_stems() == []              # half-painted images are never trained on
    QTest.keyClick(window, Qt.Key.Key_Z, CTRL)
    _settle(window, qtbot)
    assert _status(window, stem) == "predicted"
    assert not project.mask_path(stem).exists()    # the stroke left no trace
    assert window.canvas.mask_is_prediction()
    np.testing.assert_array_equal(window.canvas.mask(), window.canvas.prediction())
    model = window.image_list.model
    qtbot.waitUntil(lambda: model.record_at(model.row_of(stem)).status.value == "predicted")


def test_mark_done_then_edit_and_undo_back_to_done(window, qtbot):
    stem = _with_prediction(window, qtbot)
    project = window.session.project
    drag(window.canvas, [(5, 5), (60, 60)])
    QTest.keyClick(window, Qt.Key.Key_D, CTRL)  # Mark Done
    assert _status(window, stem) == "done" and project.done_stems() == [stem]
    done_mask = window.canvas.mask().copy()
    assert "done" in window.status_chip.text()
    QTest.keyClick(window, Qt.Key.Key_E)
    drag(window.canvas, [(0, 0), (100, 90)])
    _settle(window, qtbot)
    assert _status(window, stem) == "in_progress"
    QTest.keyClick(window, Qt.Key.Key_Z, CTRL)
    _settle(window, qtbot)
    assert _status(window, stem) == "done"
    np.testing.assert_array_equal(io.read_mask(project.mask_path(stem)), done_mask)


def test_accept_prediction_is_explicit_and_makes_the_image_done(window, qtbot):
    stem = _with_prediction(window, qtbot)
    project = window.session.project
    assert not project.mask_path(stem).exists()
    QTest.keyClick(window, Qt.Key.Key_Return, CTRL)
    assert _status(window, stem) == "done"
    np.testing.assert_array_equal(io.read_mask(project.mask_path(stem)), window.canvas.prediction())
    assert not window.canvas.mask_is_prediction()


def test_done_and_next_moves_to_the_next_image_not_done(window, qtbot):
    stems = window.image_list.model.stems()
    _with_prediction(window, qtbot)
    project = window.session.project
    drag(window.canvas, [(5, 5), (60, 60)])
    _settle(window, qtbot)
    window.session.show(stems[1])  # stems[1] done already: Done & Next must pass it
    QTest.keyClick(window, Qt.Key.Key_D, CTRL)
    window.session.show(stems[0])
    QTest.keyClick(window, Qt.Key.Key_Return, SHIFT)
    assert _status(window, stems[0]) == "done" and _status(window, stems[1]) == "done"
    assert window.current_stem() == stems[2]
    assert project.done_stems() == sorted(stems[:2])
    row = window.image_list.model.row_of(stems[0])
    qtbot.waitUntil(lambda: window.image_list.model.record_at(row).status.value == "done")


def test_reset_backs_up_the_mask_and_is_undoable(window, qtbot):
    stem = _with_prediction(window, qtbot)
    project = window.session.project
    QTest.keyClick(window, Qt.Key.Key_E)
    drag(window.canvas, [(0, 0), (120, 90)])
    QTest.keyClick(window, Qt.Key.Key_D, CTRL)
    mine = window.canvas.mask().copy()
    assert _status(window, stem) == "done"
    QTest.keyClick(window, Qt.Key.Key_Backspace, CTRL | SHIFT)  # Reset Image
    _settle(window, qtbot)
    assert _status(window, stem) == "predicted" and project.done_stems() == []
    assert not project.mask_path(stem).exists()
    backups = list(project.backup_dir.iterdir())
    assert len(backups) == 1
    np.testing.assert_array_equal(io.read_mask(backups[0]), mine)
    np.testing.assert_array_equal(window.canvas.mask(), window.canvas.prediction())
    assert window.canvas.mask_is_prediction()
    QTest.keyClick(window, Qt.Key.Key_Z, CTRL)  # undo the reset: the mask comes back
    _settle(window, qtbot)
    np.testing.assert_array_equal(window.canvas.mask(), mine)
    np.testing.assert_array_equal(io.read_mask(project.mask_path(stem)), mine)
    assert _status(window, stem) == "in_progress"


def test_skip_and_the_skipped_filter(window, qtbot):
    stem = _with_prediction(window, qtbot)
    QTest.keyClick(window, Qt.Key.Key_K, CTRL)
    assert _status(window, stem) == "skipped"
    assert window.session.project.done_stems() == []
    assert not window.session.project.mask_path(stem).exists()  # nothing written
    window.image_list.set_filter("skipped")
    assert window.image_list.model.stems() == [stem]
    window.image_list.set_filter(None)
    QTest.keyClick(window, Qt.Key.Key_N)  # next not done / skipped
    assert window.current_stem() != stem


def test_held_out_badge_filter_and_use_for_training(window, qtbot):
    project = window.session.project
    stems = window.image_list.model.stems()
    for s in stems:
        project.save_mask(s, np.zeros(window.canvas.mask().shape, np.uint8))
    _, held = project.training_split()
    assert len(held) == 1
    window.image_list.model.refresh()
    window.image_list.set_filter("held_out")
    assert window.image_list.model.stems() == held
    assert "Held out" in window.image_list.model.data(window.image_list.model.index(0),
                                                      Qt.ItemDataRole.ToolTipRole)
    window.image_list.set_filter(None)
    window.session.show(held[0])
    assert "held out" in window.status_chip.text()
    assert window.action_table.use_for_training.isEnabled()
    window.action_table.use_for_training.trigger()
    assert project.training_split() == (sorted(stems), [])
    assert "moved to training by the user" in project.role_note(held[0])
    assert not window.action_table.use_for_training.isEnabled()
