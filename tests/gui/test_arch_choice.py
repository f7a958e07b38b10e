"""Issue 12: the architecture chosen in the Training dock's Advanced panel is what the next
fine-tune builds; another architecture than the active version's starts a new lineage, and
the versions table labels it."""

from __future__ import annotations

import torch

from segcore.demo import generate_demo_project
from segcore.models import ARCHITECTURES, DEFAULT_MODEL
from segcore.versions import ModelStore

from .conftest import make_window
from .test_finetune import TRAIN_TIMEOUT_MS, _click_train, _correct, versioned_model  # noqa: F401


def test_advanced_lists_every_architecture_with_its_good_for_line(qtbot):
    from PySide6.QtCore import Qt

    from app.training.advanced import AdvancedSettings
    adv = AdvancedSettings()
    qtbot.addWidget(adv)
    names = [adv.arch.itemData(i) for i in range(adv.arch.count())]
    assert names[0] == "" and names[1:] == list(ARCHITECTURES)
    cfg = adv.config()  # "keep": continue the active version, default arch for a new project
    assert cfg.arch == "auto" and cfg.arch_for(2) == DEFAULT_MODEL and not cfg.switch_arch
    adv.set_arch("pspnet")
    assert adv.config().arch == "pspnet" and adv.config().switch_arch
    assert adv.arch_note.text() == ARCHITECTURES["pspnet"].good_for_line
    assert "measured: one click at k = 20 / 50" in adv.arch_note.text() and "msrc" in adv.arch_note.text()
    tip = adv.arch.itemData(adv.arch.currentIndex(), Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("pspnet: Good for")



def test_picking_a_gpu_only_architecture_on_a_cpu_shows_a_warning(qtbot, monkeypatch):
    """U-Net (fresh weights) on a machine without CUDA: the note under the choice says it needs
    a GPU; the default architecture has no such warning. With CUDA the warning is gone."""
    from app.training.advanced import AdvancedSettings
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    adv = AdvancedSettings()
    qtbot.addWidget(adv)
    adv.set_open(True)
    adv.arch.setCurrentIndex(adv.arch.findText(ARCHITECTURES["unet"].title))  # as the popup does

    assert adv.arch_note.isVisibleTo(adv) and "Needs a GPU" in adv.arch_note.text()
    adv.setFixedWidth(330)  # the dock's width: the four-line note gets the height it needs
    adv.show()
    qtbot.waitExposed(adv)
    note = adv.arch_note
    assert note.height() >= note.heightForWidth(note.width()) > 3 * note.fontMetrics().height()
    adv.set_arch(DEFAULT_MODEL)
    assert "GPU" not in adv.arch_note.text()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    adv.set_arch("unet")
    assert "Needs a GPU" not in adv.arch_note.text()


def test_next_fine_tune_builds_the_architecture_picked_in_advanced(qtbot, tmp_path, versioned_model):  # noqa: F811
    from app.training import attach_training

    torch.set_num_threads(1)
    folder = generate_demo_project(tmp_path / "arch", n_images=6, size=(96, 128), seed=3)
    window = make_window(qtbot, folder)
    ctrl = attach_training(window)
    project = window.session.project
    from segcore import models
    v1 = ModelStore(project).save_version(models.build(DEFAULT_MODEL, num_classes=2, pretrained=False),
                                          {"note": "untrained"}, None, {})
    ctrl.refresh()
    _correct(window, qtbot, project.stems()[:5])
    qtbot.waitUntil(ctrl.panel.train_button.isEnabled, timeout=5000)
    adv = ctrl.panel.advanced
    adv.set_open(True)
    adv.mode.setCurrentIndex(adv.mode.findData("fast"))
    adv.epochs.setValue(1)
    adv.budget.setValue(0)
    adv.input_size.setValue(64)
    adv.set_arch("fcn8s")
    with qtbot.waitSignal(ctrl.worker.finished, timeout=TRAIN_TIMEOUT_MS) as blocker:
        _click_train(qtbot, ctrl)
    result = blocker.args[0]
    assert not result.cancelled and result.version_id is not None
    v = project.models.get(result.version_id)
    assert v.arch == "fcn8s" and v.parent is None and result.parent_id is None and v1 != v.id
    loaded = ModelStore(project).load(v.id)
    assert loaded.arch == "fcn8s" and type(loaded.decoder).__name__ == "FCNDecoder"
    ctrl.refresh()
    table = ctrl.panel.versions
    qtbot.waitUntil(lambda: table.rowCount() == 2, timeout=5000)
    assert table.item(0, 0).text() == f"● v{v.id} new FCN8"  # newest first, active, a new lineage
    window.close()
