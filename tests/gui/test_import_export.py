"""Masks in and out through the window: Import Masks (JPEG folder, colour-coded folder with the
mapping step), Export Masks (COCO) and re-import, masks that appear while the project is open."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox

from segcore.project import ClassInfo

from .conftest import N_IMAGES, SIZE, make_window


def _button(dialog, text):
    box = dialog.findChild(QDialogButtonBox)
    return next(b for b in box.buttons() if b.text() == text)


def _gt(i):
    m = np.zeros(SIZE, np.uint8)
    m[10:40, 10 + 5 * i:70] = 1
    return m


def test_import_a_folder_of_jpeg_masks(qtbot, demo_dir, fake_model):
    (demo_dir / "labels").mkdir()
    for i, stem in enumerate(sorted(p.stem for p in demo_dir.glob("*.png"))):
        Image.fromarray(_gt(i) * 255).save(demo_dir / "labels" / f"{stem}_mask.jpg", quality=70)
    window = make_window(qtbot, demo_dir)
    assert "Import Masks" in window.model_banner.text()
    window.action_table.import_masks.trigger()
    dialog = window.import_dialog
    assert dialog.source.text().endswith("labels")
    qtbot.mouseClick(_button(dialog, "Import"), Qt.MouseButton.LeftButton)
    assert f"{N_IMAGES} mask(s) imported" in dialog.summary.text()
    assert "cleaned" in dialog.summary.text()
    project = window.session.project
    assert len(project.done_stems()) == N_IMAGES
    model = window.image_list.model
    assert {model.record_at(r).status.value for r in range(model.rowCount())} == {"done"}
    stem = project.stems()[0]
    assert abs(int(project.load_mask(stem).sum()) - int(_gt(0).sum())) < 40
    window.close()


def test_import_colour_coded_masks_with_the_mapping_step(qtbot, demo_dir, fake_model):
    window = make_window(qtbot, demo_dir)
    project = window.session.project
    project.set_classes([ClassInfo("background", (0, 0, 0)), ClassInfo("a", (255, 0, 0)),
                         ClassInfo("b", (0, 0, 255))])
    src = demo_dir.parent / "colour_masks"
    src.mkdir()
    for stem in project.stems():
        rgb = np.zeros((*SIZE, 3), np.uint8)
        rgb[5:30, 5:30] = (12, 200, 40)      # not a project colour: the user maps it to "b"
        rgb[40:60, 40:90] = (255, 0, 0)     # the colour of class "a"
        Image.fromarray(rgb).save(src / f"{stem}.png")
    window.action_table.import_masks.trigger()
    dialog = window.import_dialog
    dialog.source.setText(str(src))
    assert dialog.colors.isVisibleTo(dialog) and dialog.colors.rowCount() == 2
    for r in range(2):
        if dialog.colors.item(r, 0).text() == "#0cc828":
            dialog.colors.cellWidget(r, 1).setCurrentIndex(2)
    qtbot.mouseClick(_button(dialog, "Import"), Qt.MouseButton.LeftButton)
    assert f"{N_IMAGES} mask(s) imported" in dialog.summary.text()
    mask = project.load_mask(project.stems()[0])
    assert mask[10, 10] == 2 and mask[50, 50] == 1 and mask[0, 0] == 0
    window.close()


def test_export_coco_and_reimport_it(qtbot, demo_dir, fake_model, tmp_path):
    window = make_window(qtbot, demo_dir)
    project = window.session.project
    stems = project.stems()
    for i, s in enumerate(stems):
        project.save_mask(s, _gt(i))
    window.action_table.export_masks.trigger()
    dialog = window.export_dialog
    dialog.format.setCurrentIndex(dialog.format.findData("coco"))
    dialog.out.setText(str(tmp_path / "coco"))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "written" in dialog.summary.text(), timeout=10000)
    data = json.loads((tmp_path / "coco" / "annotations.json").read_text())
    assert len(data["images"]) == N_IMAGES and data["annotations"][0]["segmentation"]["counts"]
    window.close()
    other = tmp_path / "copy"
    other.mkdir()
    for s in stems:
        (other / f"{s}.png").write_bytes((demo_dir / f"{s}.png").read_bytes())
    window = make_window(qtbot, other)
    window.action_table.import_masks.trigger()
    dialog = window.import_dialog
    dialog.source.setText(str(tmp_path / "coco" / "annotations.json"))
    qtbot.mouseClick(_button(dialog, "Import"), Qt.MouseButton.LeftButton)
    assert f"{N_IMAGES} mask(s) imported" in dialog.summary.text()
    for i, s in enumerate(stems):
        np.testing.assert_array_equal(window.session.project.load_mask(s), _gt(i))
    window.close()


def test_a_mask_copied_in_while_open_is_picked_up(qtbot, demo_dir, fake_model):
    window = make_window(qtbot, demo_dir)
    project = window.session.project
    stem = project.stems()[-1]
    Image.fromarray(_gt(0) * 255).save(project.mask_path(stem))
    qtbot.waitUntil(lambda: stem in project.done_stems(), timeout=10000)
    model = window.image_list.model
    qtbot.waitUntil(lambda: model.record_at(model.row_of(stem)).status.value == "done",
                    timeout=5000)
    window.close()


def test_a_mask_for_the_shown_image_appearing_is_drawn_and_kept(qtbot, demo_dir, fake_model):
    window = make_window(qtbot, demo_dir)
    project = window.session.project
    stem = window.current_stem()
    qtbot.waitUntil(lambda: window.canvas.prediction() is not None, timeout=10000)
    from app.canvas.testing import drag

    drag(window.canvas, [(5, 5), (30, 30)])  # a stroke, undone: the stack is clean, not empty
    window.undo_group.undo()
    window.session.saver.flush()
    assert not project.mask_path(stem).exists()
    Image.fromarray(_gt(1) * 255).save(project.mask_path(stem))  # copied in from outside
    qtbot.waitUntil(lambda: np.array_equal(window.canvas.mask(), _gt(1)), timeout=10000)
    window.session.saver.flush()
    qtbot.wait(50)
    assert project.mask_path(stem).is_file()  # never deleted by a "revert"
    np.testing.assert_array_equal(project.load_mask(stem), _gt(1))
    assert project.record(stem).status.value == "done"
    window.close()
