"""A click whose model is surely worse on the held-out images: the Training dock says so, the
parent stays active and nothing is re-predicted (segcore.loop.surely_worse)."""

from __future__ import annotations

import torch

from segcore import loop, models
from segcore.demo import generate_demo_project
from segcore.versions import ModelStore
from tests.test_keep_parent import _ConstantTrainer

from .conftest import make_window
from .test_finetune import TRAIN_TIMEOUT_MS, _click_train, _correct, _fast, versioned_model  # noqa: F401


def test_a_worse_click_leaves_the_parent_active_and_says_so(qtbot, tmp_path, monkeypatch, versioned_model):  # noqa: F811
    from app.training import attach_training

    folder = generate_demo_project(tmp_path / "kp", n_images=10, size=(128, 160), seed=5)
    torch.set_num_threads(1)
    window = make_window(qtbot, folder)
    ctrl = attach_training(window)
    project = window.session.project
    # v1 marks everything foreground: held-out IoU = each object's share of its image (> 0)
    torch.manual_seed(0)
    parent = models.build(models.DEFAULT_MODEL, num_classes=2, pretrained=False)
    with torch.no_grad():
        parent.decoder.classifier.weight.zero_()
        parent.decoder.classifier.bias.fill_(50.0)
    v1 = ModelStore(project).save_version(parent, {"note": "everything foreground"}, None, {})
    ctrl.refresh()
    _correct(window, qtbot, project.stems()[:8])
    qtbot.waitUntil(ctrl.panel.train_button.isEnabled, timeout=5000)
    _fast(ctrl, epochs=1)
    # the click's model marks nothing: IoU 0 on every held-out image
    monkeypatch.setattr(_ConstantTrainer, "bias", -50.0)
    monkeypatch.setattr(loop, "Trainer", _ConstantTrainer)
    monkeypatch.setattr(loop, "KEEP_LARGE_DROP", 0.05)  # the demo's objects cover 10-30 %
    with qtbot.waitSignal(ctrl.worker.finished, timeout=TRAIN_TIMEOUT_MS) as blocker:
        _click_train(qtbot, ctrl)
    result = blocker.args[0]
    v2 = result.version_id
    assert result.kept_parent and result.parent_id == v1 and v2 != v1
    assert project.models.active().id == v1
    assert ctrl.panel.versions.ids() == [v2, v1]
    text = ctrl.panel.result_label.text()
    assert f"v{v2} scored lower than v{v1}" in text and f"v{v1} stays active" in text
    qtbot.waitUntil(lambda: not ctrl.worker.is_running(), timeout=10000)
    qtbot.wait(300)
    assert v2 not in versioned_model  # the prediction worker never loaded the worse version
    assert "predicted" not in ctrl.timings
    window.close()
