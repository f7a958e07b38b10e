"""Issue 15, section 2: what a new user hit, driven through the real window (offscreen)."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QSize
from PySide6.QtWidgets import QApplication

from .conftest import make_window


def _after_a_run(window, qtbot):
    """The Training dock as it looks after a fine-tune: two versions, result, re-predict line."""
    ctrl = window.training
    project = window.session.project
    v1 = project.models.register("v1.pt", "deeplabv3plus_mobilenet_v2", None, {}, {})
    v2 = project.models.register("v2.pt", "deeplabv3plus_mobilenet_v2", v1,
                                 {"val_iou": 0.812, "val_biou": 0.433}, {})
    project.models.activate(v2)
    ctrl.refresh()
    p = ctrl.panel
    p.set_held_out([f"demo_{i:03d}" for i in range(7)], ["demo_007"])
    p.set_result(f"v{v2} saved and active: held-out IoU 0.812 (was 0.147), BIoU 0.433 "
                 "(was 0.017); 55 s")
    p.set_status("Training finished.")  # the controller's order: result, status, not running
    p.set_running(False)
    p.set_repredict(None)  # done: that line moves to the status bar
    p.finish_progress(True)
    qtbot.wait(50)
    QApplication.processEvents()
    return ctrl


def _visible_in(widget, viewport) -> bool:
    """The whole widget lies inside the scroll area's viewport (no scrolling needed)."""
    top_left = widget.mapTo(viewport, QPoint(0, 0))
    return (widget.isVisible() and top_left.x() >= 0 and top_left.y() >= 0
            and top_left.x() + widget.width() <= viewport.width()
            and top_left.y() + widget.height() <= viewport.height())


def test_default_size_follows_the_screen():
    from app.main_window import default_size

    assert default_size(QSize(2560, 1440)) == QSize(1400, 900)
    assert default_size(QSize(1280, 690)) == QSize(1280, 720)
    assert default_size(QSize(1366, 740)) == QSize(1366, 740)


def test_default_layout_at_1280x720_fits_after_a_run(qtbot, demo_dir, fake_model, monkeypatch):
    from app import main_window

    # a 1280x720 screen (the offscreen one is 800x800)
    monkeypatch.setattr(main_window, "default_size", lambda _avail: QSize(1280, 720))
    window = make_window(qtbot, demo_dir)
    assert window.size() == QSize(1280, 720)
    ctrl = _after_a_run(window, qtbot)
    qtbot.waitUntil(lambda: ctrl.dock.height() >= 220, timeout=3000)
    viewport = ctrl.scroll.viewport()
    assert ctrl.scroll.verticalScrollBar().maximum() == 0
    assert ctrl.scroll.horizontalScrollBar().maximum() == 0
    for button in (ctrl.panel.activate_button, ctrl.panel.rollback_button,
                   ctrl.panel.train_button, ctrl.panel.compare_button):
        assert _visible_in(button, viewport), button.text()
    assert ctrl.panel.rollback_button.isEnabled()
    assert not ctrl.panel.status_label.isVisible()  # the result line says it
    assert window.canvas.height() >= 330, window.canvas.height()  # was 289
    assert window.width() == 1280
    window.close()


def test_long_status_messages_do_not_widen_the_window_nor_get_saved(qtbot, demo_dir, fake_model):
    from app.settings import Settings

    window = make_window(qtbot, demo_dir)
    width = window.width()
    long = "x" * 40 + " a very long status message " * 12
    window.status.set_work(long)
    window.status.set_image_info("a_very_long_file_name_" * 10 + ".png", 4000, 3000)
    window.status.set_model("model: " + "v12 deeplabv3plus_mobilenet_v2 " * 6)
    window.status.showMessage(long)
    qtbot.wait(50)
    QApplication.processEvents()
    assert window.width() == width
    assert window.minimumSizeHint().width() <= width
    window.status.clearMessage()
    qtbot.wait(50)
    label, name = window.status.image_info, "a_very_long_file_name_" * 10 + ".png"
    assert label.isVisible() and 0 < label.width() < width
    # elided; the full text on hover
    assert "…" in label.shown_text() and name in label.toolTip() and label.text().startswith(name)
    # a window wider than its screen is not saved as the user's geometry
    window.resize(window.screen().availableGeometry().width() + 300, window.height())
    QApplication.processEvents()
    window.settings.save_window(window)
    assert Settings().qs.value("window/geometry") is None
    window.close()


def test_crf_settings_popover_stays_on_the_screen(qtbot, window):
    window.action_table.crf_settings.trigger()
    pop = window.crf_popover
    qtbot.waitUntil(pop.isVisible, timeout=2000)
    screen = window.tools.crf_settings_button.screen().availableGeometry()
    assert screen.contains(pop.frameGeometry()), (pop.frameGeometry(), screen)
    pop.hide()


def _labels(axis) -> list[str]:  # QValueAxis with dynamic ticks
    """The tick labels the axis draws: anchor + k * interval inside the range, printf-formatted."""
    import math

    step, lo, hi = axis.tickInterval(), axis.min(), axis.max()
    k0 = math.ceil((lo - axis.tickAnchor()) / step - 1e-9)
    values = []
    k = k0
    while axis.tickAnchor() + k * step <= hi + 1e-9:
        values.append(axis.tickAnchor() + k * step)
        k += 1
    return [axis.labelFormat() % v for v in values]


def test_chart_axis_labels_have_enough_decimals(qtbot):
    from app.training.chart import TrainingChart
    from segcore.training import EpochReport

    chart = TrainingChart()
    qtbot.addWidget(chart)
    assert "0.75" in _labels(chart.score_axis) and "0.25" in _labels(chart.score_axis)
    for i, loss in enumerate((0.33, 0.29, 0.27), 1):  # the run: 0.3 0.2 0.1 0.1 0.0
        chart.add(EpochReport("fast", i, 3, loss, 0.5, 0.3, float(i), 1.0))
        labels = _labels(chart.loss_axis)
        assert len(labels) == len(set(labels)) >= 3, labels
    assert chart.loss_axis.max() >= 0.33 * 1.1 - 1e-9
    chart.add(EpochReport("fast", 4, 4, 0.012, 0.5, 0.3, 4.0, 1.0))
    chart.clear()
    for i, loss in enumerate((0.04, 0.03), 1):
        chart.add(EpochReport("fast", i, 2, loss, None, None, float(i), 1.0))
    labels = _labels(chart.loss_axis)
    assert len(labels) == len(set(labels)) and all(float(x) <= 0.05 for x in labels), labels


def test_16_bit_tiff_thumbnails_show_the_image(qtbot, tmp_path):
    import cv2
    import numpy as np
    from PIL import Image

    from app.workers.thumbnails import make_thumbnail
    from segcore.io import read_image

    ramp = np.tile(np.linspace(0, 4000, 160), (120, 1)).astype(np.uint16)  # a dim 12-bit ramp
    Image.fromarray(ramp).save(tmp_path / "gray16.tif")
    rgb = np.stack([ramp, ramp[:, ::-1], np.full_like(ramp, 1500)], axis=2)
    cv2.imwrite(str(tmp_path / "rgb16.tif"), rgb[:, :, ::-1])
    for name in ("gray16.tif", "rgb16.tif"):
        thumb = make_thumbnail(tmp_path / name, tmp_path / "cache" / f"{name}.png")
        assert (thumb.width(), thumb.height()) == (96, 72)
        ptr = thumb.constBits()
        arr = np.frombuffer(ptr, np.uint8, thumb.sizeInBytes()).reshape(
            thumb.height(), thumb.bytesPerLine())[:, : thumb.width() * 3].reshape(72, 96, 3)
        full = cv2.resize(read_image(tmp_path / name), (96, 72), interpolation=cv2.INTER_AREA)
        # what the canvas shows (read_image), not a white or black square
        assert arr.std() > 40, (name, arr.mean(), arr.std())
        assert np.abs(arr.astype(int) - full.astype(int)).mean() < 8, name


def _ink(img, color, tol: int = 60) -> int:  # QImage
    """Pixels of ``img`` within ``tol`` of ``color`` (per channel)."""
    import numpy as np

    img = img.convertToFormat(img.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes()).reshape(
        img.height(), img.bytesPerLine())[:, : img.width() * 3].reshape(img.height(), img.width(), 3)
    return int((np.abs(arr.astype(int) - np.array(color)).max(axis=2) <= tol).sum())


def test_list_names_keep_their_underscores_and_uncertainty_is_explained(qtbot, demo_dir,
                                                                        fake_model):
    from PySide6.QtGui import QColor, QImage, QPainter, QPalette
    from PySide6.QtWidgets import QStyleOptionViewItem

    from app.panels.image_list import ImageItemDelegate, _tooltip, metrics_text
    from segcore.project import ImageRecord

    window = make_window(qtbot, demo_dir)
    model = window.image_list.model
    qtbot.waitUntil(lambda: model.record_at(0).uncertainty is not None, timeout=10000)
    record = model.record_at(0)
    assert metrics_text(record) == f"uncertain {record.uncertainty:.0%}"
    assert "0–1 scale" in _tooltip(record) and "coin toss" in _tooltip(record)

    def render(filename: str) -> QImage:
        rec = ImageRecord(**{**record.__dict__, "filename": filename})
        index = model.index(0)
        model._rows[0] = rec
        image = QImage(240, 68, QImage.Format.Format_RGB32)
        image.fill(QColor("white"))
        option = QStyleOptionViewItem()
        option.rect = image.rect()
        option.palette.setColor(QPalette.ColorRole.Text, QColor("black"))
        option.font = window.image_list.view.font()
        painter = QPainter(image)
        ImageItemDelegate().paint(painter, option, index)
        painter.end()
        return image

    plain, underscored = render("ab  cd.png"), render("ab__cd.png")
    assert _ink(underscored, (0, 0, 0)) > _ink(plain, (0, 0, 0)) + 4  # the "__" is drawn
    window.close()


def test_corrupt_image_title_and_cursor_position_follow_the_selection(qtbot, demo_dir, tmp_path,
                                                                      fake_model):
    (demo_dir / "aaa_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    window = make_window(qtbot, demo_dir)
    stems = window.image_list.model.stems()
    window.show_stem(stems[1])
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.canvas, timeout=5000)
    assert window.windowTitle().startswith(f"{stems[1]}")
    window.image_list.view.setCurrentIndex(window.image_list.model.index(0))  # like a click
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.error_page, timeout=10000)
    assert window.windowTitle().startswith("aaa_corrupt.png")
    # a cursor position from one project is not shown for the next
    window.status.set_pixel(57, 33)
    from segcore.demo import generate_demo_project

    other = generate_demo_project(tmp_path / "other", n_images=2, size=(64, 80), seed=2)
    assert window.open_project(other)
    assert window.status.pixel.text() == "x –, y –"
    window.close()


def test_highlighted_dropdown_row_is_readable_in_both_themes(qtbot, window):
    from app.theme import COLORS

    for name in ("light", "dark"):
        window.set_theme(name)
        combo = window.image_list.filter_combo
        combo.showPopup()
        view = combo.view()
        qtbot.waitUntil(view.isVisible, timeout=2000)
        view.setCurrentIndex(combo.model().index(2, 0))
        qtbot.wait(50)
        row = view.visualRect(combo.model().index(2, 0))
        shot = view.viewport().grab(row).toImage()
        c = COLORS[name]
        highlight = tuple(int(c.highlight[i:i + 2], 16) for i in (1, 3, 5))
        assert _ink(shot, highlight, 30) > row.width() * row.height() // 3  # highlighted row
        assert _ink(shot, (255, 255, 255), 60) > 10  # with its text in white on it
        combo.hidePopup()


def test_opacity_slider_shows_its_value(qtbot, window):
    window.tools.opacity_slider.setValue(35)
    assert window.tools.opacity_value.text() == "35%"
    assert abs(window.canvas.mask_opacity() - 0.35) < 1e-6
    window.tools.set_opacity(0.8)  # restored from the settings: the label follows
    assert window.tools.opacity_value.text() == "80%"


def test_automatic_mask_colour_avoids_the_image_colours():
    import numpy as np

    from app.canvas.levels import MASK_CANDIDATES, contrast_color

    brown = np.zeros((60, 80, 3), np.uint8)
    brown[:] = (150, 75, 30)
    brown[10:50, 20:60] = (200, 60, 50)  # reddish-brown objects
    assert contrast_color(brown) != MASK_CANDIDATES[0]  # not red on brown
    gray = np.full((40, 40, 3), 128, np.uint8)
    assert contrast_color(gray) in MASK_CANDIDATES


def test_mask_colour_is_automatic_until_chosen_then_kept_in_the_project(qtbot, demo_dir,
                                                                        fake_model, monkeypatch):
    from PySide6.QtGui import QColor
    from PySide6.QtWidgets import QColorDialog

    from app.canvas.levels import contrast_color
    from segcore.project import Project

    window = make_window(qtbot, demo_dir)
    qtbot.waitUntil(lambda: window.canvas.image_rgb() is not None, timeout=5000)
    auto = contrast_color(window.canvas.image_rgb())
    assert window.canvas._overlays.colors[1] == auto
    assert window.tools.color_auto_action.isChecked()
    monkeypatch.setattr(QColorDialog, "getColor", staticmethod(lambda *a, **k: QColor(10, 200, 30)))
    window.tools.choose_color()  # the "Choose colour…" menu entry
    assert window.canvas._overlays.colors[1] == (10, 200, 30)
    assert not window.tools.color_auto_action.isChecked()
    window.action_table.next_image.trigger()
    qtbot.wait(100)
    assert window.canvas._overlays.colors[1] == (10, 200, 30)  # not re-picked per image
    window.close()
    project = Project.open(demo_dir)
    assert project.classes[1].color == (10, 200, 30)
    project.close()
    again = make_window(qtbot, demo_dir)
    qtbot.waitUntil(lambda: again.canvas.image_rgb() is not None, timeout=5000)
    assert again.canvas._overlays.colors[1] == (10, 200, 30)
    again.tools.color_auto_action.trigger()  # back to automatic
    assert again.canvas._overlays.colors[1] == contrast_color(again.canvas.image_rgb())
    again.close()


def test_brightness_contrast_change_the_display_only(qtbot, demo_dir, fake_model):
    import numpy as np

    from segcore import io

    (demo_dir / "masks").mkdir(exist_ok=True)
    window = make_window(qtbot, demo_dir)
    # the prediction becomes the starting mask when it arrives: let it, before comparing
    qtbot.waitUntil(lambda: window.canvas.prediction() is not None, timeout=10000)
    window.action_table.show_mask.setChecked(False)
    stem = window.current_stem()
    before_rgb = window.canvas.image_rgb().copy()
    before_mask = window.canvas.mask().copy()
    files = {p: p.read_bytes() for p in demo_dir.rglob("*.png") if ".segloop" not in p.parts}

    def drawn() -> np.ndarray:
        QApplication.processEvents()
        img = window.canvas.viewport().grab().toImage().convertToFormat(
            window.canvas.viewport().grab().toImage().Format.Format_RGB888)
        return np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes()).reshape(
            img.height(), img.bytesPerLine())[:, : img.width() * 3].astype(float)

    plain = drawn().mean()
    window.tools.brightness_slider.setValue(60)
    qtbot.wait(150)
    assert drawn().mean() > plain + 15
    assert window.tools.display_box.title() == "Display: brightness +60, contrast +0"
    window.tools.set_levels(0, 0)
    window.tools.auto_levels_button.click()
    assert window.tools.levels() != (0, 0)  # the demo is not full-range
    window.tools.reset_levels_button.click()
    qtbot.wait(150)
    assert abs(drawn().mean() - plain) < 1.0
    # the data are untouched
    np.testing.assert_array_equal(window.canvas.image_rgb(), before_rgb)
    np.testing.assert_array_equal(window.canvas.mask(), before_mask)
    np.testing.assert_array_equal(window.canvas.image_rgb(), io.read_image(window.session.project.image_path(stem)))
    window.close()
    assert {p: p.read_bytes() for p in files} == files


def test_check_mode_opens_the_folder_shows_an_image_and_exits_0(qtbot, demo_dir, fake_model,
                                                                capsys):
    from app import main as app_main

    assert app_main.main(["--check", str(demo_dir)]) == 0  # what the bundle's smoke test runs
    out = capsys.readouterr().out
    assert "demo_000 shown, 128x96" in out
    assert app_main.main(["--check", str(demo_dir / "missing")]) == 1
