"""Classes driven like a user: the Classes dialog (add, rename, recolour, reorder, delete with
mask remapping + backup), keys 1–9 pick the class, a 3-class project fine-tuned in the window
shows per-class scores, masks with more classes than the project are offered / reported."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtTest import QTest

from app.canvas.testing import drag
from segcore import io

from .conftest import SIZE, make_window

CTRL = Qt.KeyboardModifier.ControlModifier


def _add_classes(window, names):
    dialog = window.show_classes()
    for name in names:
        dialog.add_class()
        dialog.rename(len(dialog.entries) - 1, name)
    assert dialog.apply()
    return dialog


def test_add_classes_and_paint_with_number_keys(window, qtbot):
    _add_classes(window, ["dog", "cat"])  # foreground, dog, cat
    project = window.session.project
    assert [c.name for c in project.classes] == ["background", "foreground", "dog", "cat"]
    assert window.tools.class_combo.count() == 4  # three classes + void
    stem = window.current_stem()
    for key, (x, y) in ((Qt.Key.Key_1, (10, 10)), (Qt.Key.Key_2, (40, 40)),
                        (Qt.Key.Key_3, (80, 70))):
        QTest.keyClick(window, key)
        drag(window.canvas, [(x, y), (x + 6, y)])
    mask = window.canvas.mask()
    assert (mask[10, 12], mask[40, 42], mask[70, 82]) == (1, 2, 3)
    QTest.keyClick(window, Qt.Key.Key_4)  # no class 4: a message, the class stays
    assert window.canvas.active_class() == 3 and "No class 4" in window.status.currentMessage()
    QTest.keyClick(window, Qt.Key.Key_D, CTRL)
    on_disk = io.read_mask(project.mask_path(stem))
    assert (on_disk[10, 12], on_disk[40, 42], on_disk[70, 82]) == (1, 2, 3)
    assert window.canvas.zoom() > 0 and window.action_table.zoom_actual.shortcut().toString() == "Ctrl+1"


def test_delete_merges_and_reorder_remap_masks_with_a_backup(window, qtbot):
    _add_classes(window, ["dog", "cat"])
    project = window.session.project
    stem = window.current_stem()
    m = np.zeros(SIZE, np.uint8)
    m[0:10], m[20:30], m[40:50] = 1, 2, 3
    project.save_mask(stem, m)
    dialog = window.show_classes()
    dialog.list.setCurrentRow(3)      # cat
    dialog.move_class(-1)             # background, foreground, cat, dog
    dialog.list.setCurrentRow(1)
    dialog.recolour(QColor(0, 200, 0))
    dialog.list.setCurrentRow(3)      # dog
    dialog.delete("foreground")       # dog's pixels become foreground
    dialog.ask = False
    assert dialog.apply()
    assert "1 mask file(s) will be rewritten" in dialog.last_confirmation
    assert [c.name for c in project.classes] == ["background", "foreground", "cat"]
    assert project.classes[1].color == (0, 200, 0)
    out = project.load_mask(stem)
    assert (out[5, 5], out[25, 5], out[45, 5]) == (1, 1, 2)
    backup = dialog.backup / f"{stem}.png"
    np.testing.assert_array_equal(io.read_mask(backup), m)
    np.testing.assert_array_equal(window.canvas.mask(), out)  # the canvas shows the remapped mask


def test_masks_with_more_classes_are_offered_on_open(qtbot, demo_dir, fake_model):
    from segcore.project import Project

    with Project.open(demo_dir) as p:
        stems = p.stems()
    m = np.zeros(SIZE, np.uint8)
    m[:20], m[40:60] = 1, 2
    Image.fromarray(m).save(demo_dir / "masks" / f"{stems[0]}.png")
    (demo_dir / "masks" / "classes.txt").write_text("bg\nroad\ncar\n")
    asked = []
    window = make_window(qtbot, None)
    window.ask_adopt_classes = lambda names, why: asked.append((names, why)) or True
    assert window.open_project(demo_dir)
    qtbot.waitUntil(lambda: bool(asked), timeout=10000)  # masks are read off the GUI thread
    assert asked[0][0] == ["bg", "road", "car"] and "outside" in asked[0][1]
    qtbot.waitUntil(lambda: window.session.project.num_classes == 3, timeout=5000)
    assert [c.name for c in window.session.project.classes] == ["bg", "road", "car"]
    assert window.tools.class_combo.count() == 3  # road, car, void
    window.close()
    window = make_window(qtbot, None)  # a second folder, refusing: reported, not trained
    folder2 = demo_dir.parent / "two"
    folder2.mkdir()
    for s in stems:
        (folder2 / f"{s}.png").write_bytes((demo_dir / f"{s}.png").read_bytes())
    (folder2 / "masks").mkdir()
    Image.fromarray(m).save(folder2 / "masks" / f"{stems[0]}.png")
    window.ask_adopt_classes = lambda names, why: False
    assert window.open_project(folder2)
    qtbot.waitUntil(lambda: "outside the project's 2 classes" in window.status.currentMessage(),
                    timeout=10000)
    window.close()


def test_three_class_fine_tune_in_the_window_shows_per_class_scores(qtbot, demo_dir, fake_model):
    import torch

    torch.set_num_threads(1)
    window = make_window(qtbot, demo_dir)
    _add_classes(window, ["b", "c"])
    ctrl = window.training
    project = window.session.project
    for stem in project.stems():
        window.session.show(stem)
        for key, y in ((Qt.Key.Key_1, 10), (Qt.Key.Key_2, 40), (Qt.Key.Key_3, 70)):
            QTest.keyClick(window, key)
            drag(window.canvas, [(5, y), (120, y)])
        QTest.keyClick(window, Qt.Key.Key_D, CTRL)
    assert len(project.done_stems()) == 4
    adv = ctrl.panel.advanced
    adv.mode.setCurrentIndex(adv.mode.findData("fast"))
    adv.epochs.setValue(1)
    adv.budget.setValue(0)
    adv.input_size.setValue(64)
    qtbot.waitUntil(ctrl.panel.train_button.isEnabled, timeout=5000)
    with qtbot.waitSignal(ctrl.worker.finished, timeout=240_000) as blocker:
        qtbot.mouseClick(ctrl.panel.train_button, Qt.MouseButton.LeftButton)
    result = blocker.args[0]
    scores = result.metrics["class_iou"]
    assert list(scores) == ["background", "foreground", "b", "c"]
    assert list(result.metrics["class_biou"]) == ["background", "foreground", "b", "c"]
    label = ctrl.panel.class_scores_label
    assert label.isVisibleTo(ctrl.panel) and "Per class" in label.text() and "worst" in label.text()
    assert "IoU mean" in label.text() and "BIoU mean" in label.text()
    window.close()


def test_training_dock_shows_per_class_iou_and_biou_means_and_worst(qtbot):
    from app.training.panel import TrainingPanel
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.show()
    iou = {"background": 0.9, "cat": 0.5, "dog": 0.1, "sky": None}
    biou = {"background": 0.8, "cat": 0.05, "dog": 0.35, "sky": None}
    panel.set_class_scores(iou, biou)
    text = panel.class_scores_label.text()
    assert text == ("Per class (held out): IoU mean 0.50 · worst dog 0.10, cat 0.50. "
                    "BIoU mean 0.40 · worst cat 0.05, dog 0.35")
    tip = panel.class_scores_label.toolTip()
    assert "cat: 0.500 / 0.050" in tip and "sky: – / –" in tip
    panel.set_class_scores(None, None)
    assert not panel.class_scores_label.isVisible()
