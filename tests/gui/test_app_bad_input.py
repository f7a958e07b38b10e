"""Bad input in the app: corrupt images, read-only folders, mask size mismatch, huge images."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.canvas.testing import drag
from app.panels.image_list import metrics_text
from segcore import io

from .conftest import N_IMAGES, SIZE, make_window


def _status(window, stem):
    return window.session.project.record(stem).status.value


def test_corrupt_image_gets_an_error_row_and_the_app_keeps_working(qtbot, demo_dir, fake_model):
    (demo_dir / "aaa_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    window = make_window(qtbot, demo_dir)
    model = window.image_list.model
    assert model.rowCount() == N_IMAGES + 1
    assert model.stems()[0] == "aaa_corrupt"
    qtbot.waitUntil(lambda: _status(window, "aaa_corrupt") == "error", timeout=10000)
    assert window.stack.currentWidget() is window.error_page
    assert "aaa_corrupt" in window.error_page.detail.text()
    qtbot.waitUntil(lambda: model.record_at(0).status.value == "error")
    assert "cannot be read" in metrics_text(model.record_at(0))
    QTest.keyClick(window, Qt.Key.Key_PageDown)  # next image works
    shown = window.current_stem()
    assert shown == model.stems()[1]
    assert window.stack.currentWidget() is window.canvas
    # the prediction becomes the starting mask when it arrives: wait for it, then paint where
    # it is background (painting over foreground changes no pixel and emits nothing)
    qtbot.waitUntil(lambda: window.canvas.prediction() is not None, timeout=10000)
    ys, xs = np.nonzero(window.canvas.mask() == 0)
    x, y = int(xs[len(xs) // 2]), int(ys[len(ys) // 2])
    with qtbot.waitSignal(window.canvas.strokeFinished):
        drag(window.canvas, [(x, y), (x, y)])
    window.close()
    assert io.read_mask(demo_dir / "masks" / f"{shown}.png")[y, x] == 1


def test_read_only_project_shows_a_warning_and_disables_editing(qtbot, demo_dir, fake_model,
                                                                monkeypatch):
    import segcore.project

    monkeypatch.setattr(segcore.project, "_folder_writable", lambda folder: False)
    window = make_window(qtbot, demo_dir)
    assert window.session.read_only
    assert window.banner.isVisible()
    assert "Read-only" in window.banner.text()
    assert not window.action_table.tool_brush.isEnabled()
    assert window.canvas.tool() == "pan"
    assert "read-only" in window.status.save.text()
    before = window.canvas.mask().copy()
    drag(window.canvas, [(10, 10), (60, 60)])  # pans, does not paint
    np.testing.assert_array_equal(window.canvas.mask(), before)
    window.close()
    assert not (demo_dir / "masks").exists() or not any((demo_dir / "masks").iterdir())


def test_mask_of_wrong_size_offers_resize(qtbot, demo_dir, fake_model):
    stems = sorted(p.stem for p in demo_dir.glob("*.png"))
    small = np.zeros((SIZE[0] // 2, SIZE[1] // 2), np.uint8)
    small[10:20, 10:30] = 1
    (demo_dir / "masks").mkdir(exist_ok=True)
    io.write_mask(demo_dir / "masks" / f"{stems[0]}.png", small)
    io.write_mask(demo_dir / "masks" / f"{stems[1]}.png", small)
    asked: list[tuple] = []
    window = make_window(qtbot, demo_dir, lambda stem, m, i: asked.append((stem, m, i))
                         or stem == stems[0])
    assert asked[0] == (stems[0], small.shape, SIZE)
    assert window.canvas.mask().shape == SIZE
    assert window.canvas.mask()[30, 30] == 1  # resized nearest: (15, 15) → (30, 30)
    assert io.read_mask(demo_dir / "masks" / f"{stems[0]}.png").shape == SIZE
    QTest.keyClick(window, Qt.Key.Key_PageDown)  # "Ignore": the file's mask is not used, file untouched
    assert asked[-1][0] == stems[1]
    # the image starts empty, or from the model's prediction once it arrives (which may come
    # before this line under load): wait for it, then the mask is the prediction, not the file's
    qtbot.waitUntil(lambda: window.canvas.prediction() is not None, timeout=10000)
    predicted = window.canvas.prediction()
    assert predicted is not None and predicted.shape == SIZE
    np.testing.assert_array_equal(window.canvas.mask(), predicted)
    assert io.read_mask(demo_dir / "masks" / f"{stems[1]}.png").shape == small.shape
    window.close()


def test_huge_image_opens_with_a_status_warning(qtbot, demo_dir, fake_model, monkeypatch):
    import app.session

    monkeypatch.setattr(app.session, "HUGE_PIXELS", 1000)  # the demo images count as huge
    window = make_window(qtbot, demo_dir)
    assert "huge" in window.status.currentMessage()
    assert window.stack.currentWidget() is window.canvas
    window.close()


def test_model_load_failure_is_reported_and_editing_still_works(qtbot, demo_dir, monkeypatch):
    from app.workers import prediction

    def broken(project):
        raise RuntimeError("checkpoint v7.pt is corrupt")

    monkeypatch.setattr(prediction, "default_model_factory", broken)
    window = make_window(qtbot, demo_dir)
    qtbot.waitUntil(lambda: window.model_banner.isVisible(), timeout=10000)
    assert "corrupt" in window.model_banner.text()
    assert "unavailable" in window.status.model.text()
    with qtbot.waitSignal(window.canvas.strokeFinished):
        drag(window.canvas, [(10, 10), (30, 30)])
    QTest.keyClick(window, Qt.Key.Key_PageDown)
    assert window.stack.currentWidget() is window.canvas
    window.close()
