"""The main window driven like a user: open, browse, paint, undo/redo, quit."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.canvas.testing import drag
from segcore import io

from .conftest import N_IMAGES, make_window


def _wait_idle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.session.worker.pending() == 0, timeout=10000)


def test_open_project_lists_every_image_with_status(window):
    model = window.image_list.model
    assert model.rowCount() == N_IMAGES
    stems = model.stems()
    assert window.current_stem() == stems[0]
    statuses = {model.record_at(r).status.value for r in range(N_IMAGES)}
    assert statuses <= {"unlabelled", "predicted"}
    assert window.stack.currentWidget() is window.canvas
    assert window.canvas.current_stem() == stems[0]


def test_keyboard_next_previous_and_next_unlabelled(window, qtbot):
    stems = window.image_list.model.stems()
    QTest.keyClick(window, Qt.Key.Key_PageDown)
    assert window.current_stem() == stems[1]
    assert window.canvas.current_stem() == stems[1]
    QTest.keyClick(window, Qt.Key.Key_PageUp)
    assert window.current_stem() == stems[0]
    QTest.keyClick(window, Qt.Key.Key_N)
    assert window.current_stem() == stems[1]
    # the list selection follows the shown image
    assert window.image_list.view.currentIndex().row() == 1


def test_stroke_survives_switching_images_and_is_on_disk(window, qtbot):
    canvas = window.canvas
    stems = window.image_list.model.stems()
    with qtbot.waitSignal(canvas.strokeFinished):
        drag(canvas, [(20, 30), (60, 30), (90, 40)])
    painted = canvas.mask().copy()
    assert painted[30, 40] == 1
    QTest.keyClick(window, Qt.Key.Key_PageDown)  # flushes the saver, never waits for a model
    assert window.current_stem() == stems[1]
    on_disk = io.read_mask(window.session.project.mask_path(stems[0]))
    np.testing.assert_array_equal(on_disk, painted)
    QTest.keyClick(window, Qt.Key.Key_PageUp)
    np.testing.assert_array_equal(canvas.mask(), painted)
    qtbot.waitUntil(lambda: window.image_list.model.record_at(0).status.value == "in_progress")


def test_undo_redo_through_edit_shortcuts(window, qtbot):
    canvas = window.canvas
    before = canvas.mask().copy()
    with qtbot.waitSignal(canvas.strokeFinished):
        drag(canvas, [(10, 10), (50, 50)])
    after = canvas.mask().copy()
    assert not np.array_equal(before, after)
    assert window.action_table.undo.isEnabled()
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(canvas.mask(), before)
    QTest.keyClick(window, Qt.Key.Key_Z,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    np.testing.assert_array_equal(canvas.mask(), after)
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(window, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(canvas.mask(), after)


def test_close_flushes_pending_saves(qtbot, demo_dir, fake_model):
    window = make_window(qtbot, demo_dir)
    stem = window.current_stem()
    project_mask = window.session.project.mask_path(stem)
    drag(window.canvas, [(5, 5), (100, 80)])
    painted = window.canvas.mask().copy()
    window.close()  # well before the debounce delay
    np.testing.assert_array_equal(io.read_mask(project_mask), painted)


def test_prediction_is_the_starting_mask_and_accept_saves_it(window, qtbot):
    canvas = window.canvas
    stem = window.current_stem()
    qtbot.waitUntil(lambda: canvas.prediction() is not None, timeout=10000)
    np.testing.assert_array_equal(canvas.mask(), canvas.prediction())  # shown, editable
    assert not window.session.project.mask_path(stem).exists()  # not a correction yet
    window.action_table.accept_prediction.trigger()
    window.session.saver.flush()
    np.testing.assert_array_equal(io.read_mask(window.session.project.mask_path(stem)),
                                  canvas.prediction())
    qtbot.waitUntil(lambda: window.session.project.record(stem).status.value == "done")


def test_accept_prediction_after_edits_is_one_undoable_edit(window, qtbot):
    canvas = window.canvas
    qtbot.waitUntil(lambda: canvas.prediction() is not None, timeout=10000)
    QTest.keyClick(window, Qt.Key.Key_E)  # eraser
    with qtbot.waitSignal(canvas.strokeFinished):
        drag(canvas, [(0, 0), (127, 95)])
    assert not np.array_equal(canvas.mask(), canvas.prediction())
    with qtbot.waitSignal(canvas.strokeFinished):
        window.action_table.accept_prediction.trigger()
    np.testing.assert_array_equal(canvas.mask(), canvas.prediction())
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not np.array_equal(canvas.mask(), canvas.prediction())


def test_filter_and_sort_the_list(window, qtbot):
    panel = window.image_list
    stems = panel.model.stems()
    drag(window.canvas, [(20, 20), (40, 40)])
    QTest.keyClick(window, Qt.Key.Key_PageDown)  # saves stems[0]
    _wait_idle(qtbot, window)
    panel.set_filter("in_progress")
    assert panel.model.stems() == [stems[0]]
    panel.set_filter(None)
    assert panel.model.rowCount() == N_IMAGES
    panel.set_sort("attention")
    assert panel.model.stems() == window.session.project.attention_order()
    assert panel.model.stems()[-1] == stems[0]  # edited images come after the predicted ones
    panel.set_sort("name")
    assert panel.model.stems() == sorted(stems)


def test_theme_switch_changes_palette_and_stylesheet(window, qapp):
    window.set_theme("dark")
    dark_bg = qapp.palette().window().color().name()
    dark_qss = qapp.styleSheet()
    window.set_theme("light")
    assert qapp.palette().window().color().name() != dark_bg
    assert qapp.styleSheet() != dark_qss and "light" in qapp.styleSheet()
    assert window.settings.theme() == "light"
    window.set_theme("dark")


def test_shortcuts_dialog_lists_every_action(window):
    dialog = window.show_shortcuts()
    names = dialog.action_names()
    for spec, action in window.action_table.all():
        assert spec.text.replace("&", "").rstrip("…") in names
        if spec.shortcuts:
            assert action.toolTip()
    assert "Accept Prediction" in names and "Next Unfinished" in names
    dialog.close()


def test_layer_and_tool_shortcuts_reach_the_canvas(window):
    QTest.keyClick(window, Qt.Key.Key_O)
    assert window.canvas.layer_visible("boundary")
    QTest.keyClick(window, Qt.Key.Key_E)
    assert window.canvas.tool() == "eraser"
    size = window.canvas.brush_size()
    QTest.keyClick(window, Qt.Key.Key_BracketRight)
    assert window.canvas.brush_size() > size
    assert window.tools.brush_spin.value() == window.canvas.brush_size()


def test_clear_mask_is_undoable_and_saved(window, qtbot):
    canvas = window.canvas
    stem = window.current_stem()
    with qtbot.waitSignal(canvas.strokeFinished):
        drag(canvas, [(20, 20), (60, 60)])
    painted = canvas.mask().copy()
    with qtbot.waitSignal(canvas.strokeFinished):
        window.action_table.clear_mask.trigger()
    assert not canvas.mask().any()
    window.session.saver.flush()
    assert not io.read_mask(window.session.project.mask_path(stem)).any()
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(canvas.mask(), painted)



def test_a_prediction_arriving_mid_stroke_does_not_replace_the_mask(window, qtbot):
    """The stroke being drawn decides, not Qt's global button state (which synthesized or lost
    events can leave pressed): the prediction waits beside the mask, the stroke is kept."""
    from PySide6.QtCore import QEvent

    from app.canvas.testing import send_mouse, view_pos
    canvas = window.canvas
    stem = window.current_stem()
    qtbot.waitUntil(lambda: canvas.prediction() is not None, timeout=10000)
    canvas.set_tool("brush")
    send_mouse(canvas, QEvent.Type.MouseButtonPress, view_pos(canvas, 20, 20))
    send_mouse(canvas, QEvent.Type.MouseMove, view_pos(canvas, 60, 40))
    assert canvas.tool_is_drawing()
    drawing = canvas.mask().copy()
    other = np.zeros_like(drawing)  # a new prediction: nothing anywhere
    window.session._predicted(stem, other, 0.5)
    np.testing.assert_array_equal(canvas.mask(), drawing)  # not swapped under the brush
    np.testing.assert_array_equal(canvas.prediction(), other)
    send_mouse(canvas, QEvent.Type.MouseButtonRelease, view_pos(canvas, 60, 40))
    assert canvas.mask()[40, 60] == canvas.active_class() != 0  # the stroke is kept
