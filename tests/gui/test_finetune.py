"""Issue 5 end to end: one-click fine-tune in the main window, versions, rollback, cancel, errors.

A real MobileNetV2 DeepLabV3 (ImageNet backbone from the torch hub cache) is fine-tuned in
"fast" mode on a tiny synthetic project whose masks are copied from the ground truth through
the app's own saver. The prediction worker uses a fake, instant predictor whose factory
records which model version it loaded, so reloads after a run / rollback are observable.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.training import attach_training
from app.training.latency import LatencyProbe
from app.training.panel import NO_HELD_OUT
from segcore.demo import generate_demo_project, load_ground_truth
from segcore.errors import CheckpointError, TrainingError
from segcore.project import ImageStatus
from segcore.versions import ModelStore

from .conftest import FakePredictor, make_window

N_IMAGES = 10
SIZE = (128, 160)
TRAIN_TIMEOUT_MS = 240_000


@pytest.fixture
def versioned_model(monkeypatch):
    """Fake predictions; the factory records the active version id it was asked to load."""
    from app.workers import prediction

    loaded: list[int | None] = []

    def factory(project):
        active = project.models.active()
        vid = active.id if active is not None else None
        loaded.append(vid)
        return prediction.LoadedModel(FakePredictor(), vid, f"v{vid}" if vid else "fake pretrained")

    monkeypatch.setattr(prediction, "default_model_factory", factory)
    return loaded


@pytest.fixture
def ft_dir(tmp_path):
    return generate_demo_project(tmp_path / "ft", n_images=N_IMAGES, size=SIZE, seed=5)


def _correct(window, qtbot, stems: list[str]) -> None:
    """Copy ground truth into masks through the session's AutoSaver (the canvas's save path:
    in progress), then mark them done as the user's Mark Done does."""
    session = window.session
    for stem in stems:
        gt = (load_ground_truth(session.root, stem) > 0).astype(np.uint8)
        session.saver.schedule(stem, gt)
    session.saver.flush()
    assert all(session.project.record(s).status.value == "in_progress" for s in stems)
    for stem in stems:
        session.project.set_status(stem, ImageStatus.DONE)
    session.recordChanged.emit(stems[-1])
    qtbot.waitUntil(lambda: set(stems) <= set(session.project.done_stems()), timeout=10000)


def _fast(ctrl, epochs: int = 8, budget: int = 0) -> None:
    adv = ctrl.panel.advanced
    adv.mode.setCurrentIndex(adv.mode.findData("fast"))
    adv.epochs.setValue(epochs)
    adv.budget.setValue(budget)
    adv.input_size.setValue(224)  # OS16 features of 14x14: enough to learn the demo objects


def _setup(qtbot, folder):
    torch.set_num_threads(1)
    window = make_window(qtbot, folder)
    ctrl = attach_training(window)
    return window, ctrl


def _click_train(qtbot, ctrl) -> None:
    from PySide6.QtCore import Qt

    qtbot.mouseClick(ctrl.panel.train_button, Qt.MouseButton.LeftButton)


def test_button_needs_a_corrected_image_and_explains_held_out(qtbot, ft_dir, versioned_model):
    window, ctrl = _setup(qtbot, ft_dir)
    panel = ctrl.panel
    assert not panel.train_button.isEnabled()
    assert not ctrl.fine_tune_action.isEnabled()
    assert "Finish at least one image" in panel.train_button.toolTip()
    assert ctrl.fine_tune_action.shortcut().toString() == "Ctrl+T"
    assert "Model" in window.menus
    stems = window.session.project.stems()
    _correct(window, qtbot, stems[:2])
    qtbot.waitUntil(panel.train_button.isEnabled, timeout=5000)
    assert ctrl.fine_tune_action.isEnabled()
    assert "2 done" in panel.train_button.toolTip()
    assert NO_HELD_OUT in panel.held_out_label.text()
    _correct(window, qtbot, stems[2:6])
    _, held = window.session.project.training_split()
    qtbot.waitUntil(lambda: "Held out" in panel.held_out_label.text(), timeout=5000)
    assert held[0] in panel.held_out_label.text() and held[0] in panel.held_out_label.toolTip()
    window.close()


def test_fine_tune_end_to_end_then_roll_back(qtbot, ft_dir, versioned_model):
    from segcore import models

    window, ctrl = _setup(qtbot, ft_dir)
    project = window.session.project
    # v1 = the untrained model (ImageNet backbone, random decoder): the run starts from it
    torch.manual_seed(0)
    base = models.build(models.DEFAULT_MODEL, num_classes=2, pretrained=True)
    v1 = ModelStore(project).save_version(base, {"note": "untrained"}, None, {})
    ctrl.refresh()
    stems = project.stems()
    _correct(window, qtbot, stems[:8])
    train, held = project.training_split()
    assert held
    qtbot.waitUntil(ctrl.panel.train_button.isEnabled, timeout=5000)
    _fast(ctrl, epochs=12)
    probe = LatencyProbe(10)
    probe.start()
    with qtbot.waitSignal(ctrl.worker.finished, timeout=TRAIN_TIMEOUT_MS) as blocker:
        _click_train(qtbot, ctrl)
        assert ctrl.panel.is_running() and not ctrl.panel.train_button.isEnabled()
        assert ctrl.panel.cancel_button.isEnabled()
    probe.stop()
    result = blocker.args[0]
    stats = probe.stats()
    print(f"GUI latency during training: {stats}")
    assert stats["ticks"] >= 20  # the event loop kept running while the model trained
    assert not result.cancelled and result.parent_id == v1
    assert result.held_out == held and result.train == train
    m = result.metrics
    assert m["val_iou"] > m["start_val_iou"], m
    v2 = result.version_id
    store = ModelStore(project)
    assert store.path(v2).is_file() and project.models.active().id == v2
    # the panel shows the run
    assert ctrl.panel.chart.points()["loss"], "no loss points drawn"
    assert ctrl.panel.chart.points()["IoU"]
    assert ctrl.panel.versions.ids() == [v2, v1]
    assert f"v{v2} saved and active" in ctrl.panel.result_label.text()
    qtbot.waitUntil(lambda: not ctrl.worker.is_running(), timeout=10000)
    assert ctrl.panel.train_button.isEnabled()
    # the prediction worker reloads v2 and re-predicts every image, shown one first
    qtbot.waitUntil(lambda: "predicted" in ctrl.timings, timeout=60000)
    assert versioned_model[-1] == v2
    # a corrected image's IoU / BIoU against the new prediction is scored in the background
    # (session.metrics) after its prediction arrives: the last one may still be in flight
    qtbot.waitUntil(lambda: all(project.record(s).iou is not None for s in stems[:8]), timeout=30000)
    for stem in stems[:8]:
        rec = project.record(stem)
        assert rec.status.value == "done" and rec.iou is not None
        gt = (load_ground_truth(ft_dir, stem) > 0).astype(np.uint8)
        assert np.array_equal(project.load_mask(stem), gt)  # predictions never overwrite masks
    assert all(project.record(s).status.value == "predicted" for s in stems[8:])
    # roll back: v1 is active again, the worker loads it, its weights are v1's
    assert ctrl.panel.rollback_button.isEnabled()
    ctrl.panel.rollback_button.click()
    assert project.models.active().id == v1
    qtbot.waitUntil(lambda: versioned_model[-1] == v1, timeout=30000)
    loaded = store.load(project.models.active().id).state_dict()
    for key, value in base.state_dict().items():
        assert torch.equal(loaded[key], value), key
    trained = store.load(v2).state_dict()
    assert any(not torch.equal(trained[k], loaded[k]) for k in loaded)
    assert ctrl.panel.versions.ids() == [v2, v1]
    # and activate v2 again from the table
    ctrl.panel.versions.select_version(v2)
    ctrl.panel.activate_button.click()
    assert project.models.active().id == v2
    qtbot.waitUntil(lambda: versioned_model[-1] == v2, timeout=30000)
    window.close()


def test_cancel_keeps_the_previous_model(qtbot, ft_dir, versioned_model):
    import time

    window, ctrl = _setup(qtbot, ft_dir)
    project = window.session.project
    _correct(window, qtbot, project.stems()[:6])
    qtbot.waitUntil(ctrl.panel.train_button.isEnabled, timeout=5000)
    _fast(ctrl, epochs=0, budget=600)
    with qtbot.waitSignal(ctrl.worker.progress, timeout=TRAIN_TIMEOUT_MS):
        _click_train(qtbot, ctrl)
    t0 = time.monotonic()
    with qtbot.waitSignal(ctrl.worker.finished, timeout=60000) as blocker:
        qtbot.mouseClick(ctrl.panel.cancel_button, __import__("PySide6.QtCore").QtCore.Qt.MouseButton.LeftButton)
    print(f"cancel → finished signal: {time.monotonic() - t0:.2f} s")
    assert blocker.args[0].cancelled and blocker.args[0].version_id is None
    assert project.models.active() is None and project.models.versions() == []
    assert not list(project.models_dir.glob("v*.pt"))
    qtbot.waitUntil(lambda: not ctrl.worker.is_running(), timeout=10000)
    assert ctrl.panel.train_button.isEnabled() and not ctrl.panel.cancel_button.isEnabled()
    assert "still active" in ctrl.panel.result_label.text()
    window.close()


@pytest.mark.parametrize("error, expected", [
    (TrainingError("training stopped: the loss became nan at step 3; The previous model is unchanged."),
     "loss became nan"),
    (MemoryError(), "out of memory"),
    (RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate; out of memory"),
     "out of memory"),
    (CheckpointError("v0002.pt: could not write the checkpoint (No space left on device)"),
     "could not save the new model version"),
])
def test_failure_is_shown_and_the_app_keeps_working(qtbot, ft_dir, versioned_model, monkeypatch,
                                                    error, expected):
    from segcore import loop

    def broken(*_args, **_kwargs):
        raise error

    monkeypatch.setattr(loop, "finetune", broken)
    window, ctrl = _setup(qtbot, ft_dir)
    project = window.session.project
    _correct(window, qtbot, project.stems()[:1])
    qtbot.waitUntil(ctrl.panel.train_button.isEnabled, timeout=5000)
    with qtbot.waitSignal(ctrl.worker.failed, timeout=30000) as blocker:
        _click_train(qtbot, ctrl)
    assert expected in blocker.args[0]
    assert "previous model" in blocker.args[0]
    assert expected in ctrl.panel.result_label.text()
    qtbot.waitUntil(lambda: not ctrl.worker.is_running(), timeout=10000)
    assert ctrl.panel.train_button.isEnabled()
    assert project.models.active() is None
    window.show_stem(project.stems()[3])  # browsing still works
    assert window.current_stem() == project.stems()[3]
    window.close()
