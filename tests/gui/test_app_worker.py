"""Predictions, thumbnails, persistence and drag-and-drop of the main window."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from segcore import io

from .conftest import N_IMAGES, make_window


def test_worker_predicts_the_shown_image_with_a_real_model(qtbot, demo_dir, tiny_model):
    window = make_window(qtbot, demo_dir)
    stem = window.current_stem()
    project = window.session.project
    qtbot.waitUntil(lambda: window.canvas.prediction() is not None, timeout=60000)
    assert project.prediction_path(stem).is_file()
    assert project.record(stem).status.value == "predicted"
    assert io.read_mask(project.prediction_path(stem)).shape == window.canvas.mask().shape
    assert window.status.model.text() == "tiny test model"
    assert window.status.device.text() == "CPU"
    window.close()


def test_prediction_prefetches_next_images_and_switching_never_waits(window, qtbot, fake_model):
    project = window.session.project
    stems = window.image_list.model.stems()
    qtbot.waitUntil(lambda: all(project.prediction_path(s).is_file() for s in stems), timeout=10000)
    n_calls = len(fake_model.calls)
    window.action_table.next_image.trigger()
    window.action_table.previous_image.trigger()
    assert window.canvas.prediction() is not None  # loaded from disk, not predicted again
    assert len(fake_model.calls) == n_calls
    qtbot.waitUntil(lambda: window.image_list.model.record_at(1).status.value == "predicted")


def test_crf_toggle_re_refines_the_current_image(window, qtbot, fake_model):
    qtbot.waitUntil(lambda: len(fake_model.calls) == N_IMAGES, timeout=10000)
    calls = len(fake_model.calls)
    current = window.current_stem()
    with qtbot.waitSignal(window.session.worker.predicted, timeout=20000,
                          check_params_cb=lambda stem, *_: stem == current):
        window.action_table.crf.setChecked(True)
    assert "CRF on" in window.status.crf.text()
    assert len(fake_model.calls) == calls  # probabilities cached, only the CRF ran


def test_crf_refines_the_shown_image_only_and_a_background_one_when_shown(window, qtbot, fake_model,
                                                                         monkeypatch):
    """DenseCRF holds the GIL (~0.1 s per image): a re-prediction of every image must not run it
    on each one in the background, only on the image on screen, and on another when shown."""
    from segcore import crf

    refined: list[tuple[int, int]] = []

    def counting_refine(image, probs, params=None):
        refined.append(image.shape[:2])
        return probs

    monkeypatch.setattr(crf, "refine", counting_refine)
    qtbot.waitUntil(lambda: len(fake_model.calls) == N_IMAGES, timeout=10000)
    window.action_table.crf.setChecked(True)
    qtbot.waitUntil(lambda: len(refined) == 1, timeout=20000)
    worker = window.session.worker
    worker.reload_model()  # what a fine-tune does before re-predicting every image
    current = window.current_stem()
    stems = [current] + [s for s in window.image_list.model.stems() if s != current]
    worker.request(stems, force_first=True)
    qtbot.waitUntil(lambda: len(fake_model.calls) == 2 * N_IMAGES, timeout=20000)
    qtbot.wait(200)
    assert len(refined) == 2  # the shown image, not the N - 1 others
    window.action_table.next_image.trigger()
    qtbot.waitUntil(lambda: len(refined) == 3, timeout=20000)  # refined once it is on screen
    qtbot.waitUntil(lambda: window.canvas.prediction() is not None, timeout=20000)


def test_thumbnails_are_cached_on_disk(window, qtbot):
    thumbs = window.session.project.state_dir / "thumbs"
    qtbot.waitUntil(lambda: len(list(thumbs.glob("*.png"))) == N_IMAGES, timeout=10000)
    stem = window.image_list.model.stems()[0]
    qtbot.waitUntil(lambda: window.thumbs.pixmap(stem) is not None)
    assert max(window.thumbs.pixmap(stem).width(), window.thumbs.pixmap(stem).height()) <= 96


def test_settings_persist_across_windows(qtbot, demo_dir, fake_model):
    window = make_window(qtbot, demo_dir)
    window.canvas.set_brush_size(33)
    window.action_table.show_boundary.setChecked(True)
    window.image_list.set_sort("attention")
    window.set_theme("light")
    window.tools_dock.hide()
    window.close()
    again = make_window(qtbot)
    assert again.canvas.brush_size() == 33
    assert again.canvas.layer_visible("boundary")
    assert again.image_list.model.sort_key == "attention"
    assert again.settings.theme() == "light"
    assert again.settings.recent_projects()[0] == str(demo_dir.resolve())
    assert again.settings.last_project() == str(demo_dir.resolve())
    assert again.tools_dock.isHidden() and not again.images_dock.isHidden()  # dock state
    again.tools_dock.show()
    again.set_theme("dark")
    again.close()


def test_drop_a_folder_opens_it(qtbot, tmp_path, fake_model):
    from segcore.demo import generate_demo_project

    folder = generate_demo_project(tmp_path / "dropped", n_images=2, size=(64, 80), seed=5)
    window = make_window(qtbot)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    assert window.session is not None and window.session.root == folder.resolve()
    assert window.image_list.model.rowCount() == 2
    window.close()


def test_main_opens_demo_on_first_start(qtbot, monkeypatch, fake_model):
    from app import main as app_main

    folder = app_main.initial_folder(None, __import__("app.settings").settings.Settings())
    assert folder is not None and folder.is_dir()
    assert any(folder.glob("*.png"))


def test_cold_start_ranking_reorders_the_attention_list(qtbot, demo_dir, monkeypatch):
    """No model yet: the background ranking stores an order and the attention-sorted list follows it."""
    import torch

    from app.workers import cold_start, prediction
    from segcore import models, selection

    def tiny():
        torch.manual_seed(0)
        return models.build(models.DEFAULT_MODEL, num_classes=2, pretrained=False).eval()

    monkeypatch.setattr(cold_start, "ENABLED", True)
    monkeypatch.setattr(cold_start, "embedding_model", tiny)
    monkeypatch.setattr(prediction, "default_model_factory",  # as in the app: no model, no predictions
                        lambda project: prediction.LoadedModel(None, None, prediction.NO_MODEL_LABEL))
    from tests.gui.conftest import make_window

    window = make_window(qtbot)
    window.image_list.set_sort("attention")
    with qtbot.waitSignal(window.image_list.model.modelReset, timeout=60000, raising=False):
        assert window.open_project(demo_dir)
    worker = window.session.cold_start
    assert worker is not None
    qtbot.waitUntil(lambda: worker.isFinished(), timeout=60000)
    qtbot.waitUntil(lambda: window.session.project.get_setting(selection.COLD_START_KEY) is not None,
                    timeout=5000)
    stored = window.session.project.get_setting(selection.COLD_START_KEY)
    assert sorted(stored) == window.session.project.stems()
    # the embeddings are kept for the attention order after the first model (segcore.attention)
    from segcore import attention
    assert sorted(attention.load_embeddings(window.session.project.state_dir)) == sorted(stored)
    qtbot.waitUntil(lambda: window.image_list.model.stems() == stored, timeout=5000)
    # a second opening finds the order stored and does not rank again
    window.close_project()
    assert window.open_project(demo_dir) and window.session.cold_start is None
    window.close()
    # a project ranked before embeddings were kept is embedded once more
    attention.embeddings_path(demo_dir / ".segloop").unlink()
    from segcore.project import Project
    with Project.open(demo_dir) as project:
        assert cold_start.needs_cold_start(project)


def test_accept_prediction_is_enabled_only_with_a_prediction(qtbot, demo_dir, monkeypatch):
    from app.workers import prediction
    from tests.gui.conftest import FakePredictor, make_window

    monkeypatch.setattr(prediction, "default_model_factory",  # no model yet: no predictions
                        lambda project: prediction.LoadedModel(None, None, prediction.NO_MODEL_LABEL))
    window = make_window(qtbot, demo_dir)
    accept, button = window.action_table.accept_prediction, window.tools.accept_button
    qtbot.waitUntil(lambda: window.status.currentMessage() is not None and window.session.worker.pending() == 0,
                    timeout=10000)
    assert window.canvas.prediction() is None
    assert not accept.isEnabled() and not button.isEnabled()
    accept.trigger()  # a shortcut on a disabled action does nothing either
    assert not window.session.project.mask_path(window.current_stem()).exists()
    window.close_project()

    monkeypatch.setattr(prediction, "default_model_factory",
                        lambda project: prediction.LoadedModel(FakePredictor(), None, "fake model"))
    assert window.open_project(demo_dir)
    qtbot.waitUntil(lambda: window.canvas.prediction() is not None, timeout=10000)
    qtbot.waitUntil(accept.isEnabled, timeout=5000)
    assert button.isEnabled()
    window.close()
