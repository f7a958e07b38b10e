"""One editor state (app/editor_state.py) and the panel host (app/host.py), through the window."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.canvas.testing import click
from app.editor_state import DEFAULTS, brush_step

from .conftest import make_window


def _painted_by_one_click(window, qtbot) -> int:
    """Pixels a brush click paints in the middle of an emptied mask."""
    canvas = window.canvas
    qtbot.waitUntil(lambda: canvas.prediction() is not None, timeout=20000)  # the starting mask
    if canvas.mask().any():
        with qtbot.waitSignal(canvas.strokeFinished):
            window.action_table.clear_mask.trigger()
    assert not canvas.mask().any()
    h, w = canvas.mask().shape
    with qtbot.waitSignal(canvas.strokeFinished):
        click(canvas, w // 2, h // 2)
    return int(np.count_nonzero(canvas.mask()))


def test_brush_size_from_the_tools_panel_reaches_the_state_and_the_canvas(window, qtbot):
    editor, tools = window.editor, window.tools
    tools.brush_spin.setValue(5)
    assert editor.brush_size == 5 and window.canvas.brush_size() == 5
    small = _painted_by_one_click(window, qtbot)
    tools.brush_spin.setValue(31)
    assert editor.brush_size == 31 and window.canvas.brush_size() == 31
    assert tools.brush_slider.value() == 31  # the slider shows it too
    big = _painted_by_one_click(window, qtbot)
    # a disc of diameter d covers ~pi d^2 / 4 pixels: 5 px ~ 20, 31 px ~ 755
    assert 10 <= small <= 40 and 600 <= big <= 900, (small, big)
    tools.brush_slider.setValue(12)
    assert editor.brush_size == 12 and tools.brush_spin.value() == 12


def test_shortcuts_change_the_state_and_the_tools_panel_shows_it(window):
    editor, tools = window.editor, window.tools
    size = editor.brush_size
    QTest.keyClick(window, Qt.Key.Key_BracketRight)
    assert editor.brush_size == size + brush_step(size)  # one step, not two (action + canvas)
    assert tools.brush_spin.value() == editor.brush_size == window.canvas.brush_size()
    bigger = editor.brush_size
    QTest.keyClick(window, Qt.Key.Key_BracketLeft)
    assert tools.brush_spin.value() == bigger - brush_step(bigger)
    QTest.keyClick(window, Qt.Key.Key_G)
    assert editor.tool == "fill" and window.canvas.tool() == "fill"
    assert window.action_table.tool_fill.isChecked() and not window.action_table.tool_brush.isChecked()
    QTest.keyClick(window, Qt.Key.Key_D)
    assert editor.layer_visible("diff") and window.action_table.show_diff.isChecked()
    window.editor.set_layer_visible("diff", False)  # from the state back to the action
    assert not window.action_table.show_diff.isChecked() and not window.canvas.layer_visible("diff")


def test_opacity_and_boundary_width_have_one_home(window):
    window.tools.boundary_spin.setValue(6)
    assert window.editor.boundary_width == 6 == window.canvas.boundary_width()
    window.editor.set_opacity(0.25)
    assert window.tools.opacity_slider.value() == 25 and window.tools.opacity_value.text() == "25%"
    assert window.canvas.mask_opacity() == 0.25
    window.editor.set_boundary_width(3)
    assert window.tools.boundary_spin.value() == 3


def test_editor_state_survives_a_restart(qtbot, tmp_path, fake_model):
    from app.main_window import MainWindow
    from app.settings import Settings
    from segcore.crf import CRFParams

    ini = tmp_path / "cfg" / "segloop.ini"
    first = MainWindow(Settings(ini))
    qtbot.addWidget(first)
    first.show()
    assert first.editor.brush_size == DEFAULTS.brush_size and first.tools.brush_spin.value() == DEFAULTS.brush_size
    first.tools.brush_spin.setValue(40)
    first.tools.opacity_slider.setValue(30)
    first.tools.boundary_spin.setValue(5)
    first.action_table.tool_eraser.trigger()
    first.action_table.show_diff.setChecked(True)
    first.action_table.show_mask.setChecked(False)
    first.editor.set_crf_params(CRFParams(iterations=7, bilateral_compat=6.0))
    first.close()
    assert "brush_size=40" in ini.read_text()

    again = MainWindow(Settings(ini))
    qtbot.addWidget(again)
    again.show()
    e = again.editor
    assert (e.brush_size, e.opacity, e.boundary_width, e.tool) == (40, 0.3, 5, "eraser")
    assert e.layer_visible("diff") and not e.layer_visible("mask")
    assert e.crf_params == CRFParams(iterations=7, bilateral_compat=6.0)
    assert again.tools.brush_spin.value() == 40 and again.tools.opacity_value.text() == "30%"
    assert again.tools.boundary_spin.value() == 5
    assert again.canvas.tool() == "eraser" and again.action_table.tool_eraser.isChecked()
    assert again.action_table.show_diff.isChecked() and not again.action_table.show_mask.isChecked()
    assert again.crf_popover.params().iterations == 7
    again.close()


def test_session_changed_fires_on_open_and_close(qtbot, demo_dir, fake_model):
    window = make_window(qtbot)
    ctrl = window.training
    assert ctrl.session is None
    with qtbot.waitSignal(window.sessionChanged) as opened:
        assert window.open_project(demo_dir)
    assert opened.args[0] is window.session is not None
    assert ctrl.session is window.session  # followed at once, no polling
    assert "Finish at least one image" in ctrl.panel.train_button.toolTip()
    with qtbot.waitSignal(window.sessionChanged) as closed:
        window.close_project()
    assert closed.args == [None] and ctrl.session is None
    assert ctrl.panel.train_button.toolTip() == "Open a project first"
    window.close()


def test_training_actions_are_in_the_one_table_and_the_shortcuts_dialog(window, monkeypatch):
    names = {spec.name: (spec, action) for spec, action in window.action_table.all()}
    spec, action = names["fine_tune"]
    assert spec.menu == "Model" and action is window.training.fine_tune_action
    assert action in window.menus["Model"].actions()
    dialog = window.show_shortcuts()
    rows = {dialog.table.item(r, 1).text(): (dialog.table.item(r, 0).text(), dialog.table.item(r, 2).text())
            for r in range(dialog.table.rowCount())}
    assert rows["Fine-tune"] == ("Model", "Ctrl+T")
    assert rows["Cancel Training"] == ("Model", "Ctrl+Shift+T")
    assert rows["Versions"][0] == "Model"
    assert dialog.action_names().count("Fine-tune") == 1
    dialog.close()
    calls = []
    monkeypatch.setattr(window.training, "start", lambda: calls.append("start"))
    action.setEnabled(True)  # no done image yet: the controller keeps it disabled until one is
    QTest.keyClick(window, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    assert calls == ["start"]  # the shortcut runs the spec's handler on the controller
