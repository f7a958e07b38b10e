"""Quit / folder switch while masks/ cannot be written: a dialog, a recovery folder, a restore
offer; nothing is dropped without the user's explicit choice (issue 14, item 1)."""

from __future__ import annotations

import errno
import json
import os
import types

import numpy as np
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QPushButton

import segcore._atomic as atomic
from app import recovery
from app.canvas.testing import drag
from segcore import io

from .conftest import make_window


class _FailingOs(types.SimpleNamespace):
    """``os`` for segcore._atomic: opening a temp file inside ``folder`` fails with ``err``."""

    def __init__(self, folder, err: int) -> None:
        super().__init__()
        self.folder, self.err, self.on = str(folder), err, True

    def __getattr__(self, name):
        return getattr(os, name)

    def open(self, path, *args, **kw):
        if self.on and str(path).startswith(self.folder + os.sep):
            raise OSError(self.err, os.strerror(self.err), str(path))
        return os.open(path, *args, **kw)


@pytest.fixture
def unwritable(monkeypatch, demo_dir):
    """masks/ of the demo project refuses writes (read-only file system) until ``.on = False``."""
    fake = _FailingOs(demo_dir.resolve() / "masks", errno.EROFS)
    monkeypatch.setattr(atomic, "os", fake)
    return fake


class _Answer:
    """Stands in for the dialog: records each question, answers from a list."""

    def __init__(self, *choices: str) -> None:
        self.choices, self.asked = list(choices), []

    def __call__(self, parent, stems, reason, action):
        self.asked.append((list(stems), reason, action))
        return self.choices.pop(0)


def _paint(window, qtbot):
    canvas = window.canvas
    with qtbot.waitSignal(canvas.strokeFinished):
        drag(canvas, [(20, 30), (70, 35), (100, 60)])
    assert canvas.mask()[30, 40] == 1
    return canvas.current_stem(), canvas.mask().copy()


def _wait_failing(window, qtbot) -> None:
    qtbot.waitUntil(lambda: window.session.saver.state().startswith("unsaved"), timeout=10000)


def test_quit_shows_the_dialog_and_recovery_keeps_the_masks_then_restore_offer(
        qtbot, demo_dir, fake_model, unwritable, monkeypatch):
    window = make_window(qtbot, demo_dir)
    stem, painted = _paint(window, qtbot)
    _wait_failing(window, qtbot)
    seen = {}

    def click_recover() -> None:  # the real dialog, answered like a user
        box = QApplication.activeModalWidget()
        if box is None or box.objectName() != "unsaved_dialog":
            QTimer.singleShot(20, click_recover)
            return
        seen["text"] = box.text() + "\n" + box.informativeText()
        box.findChild(QPushButton, "unsaved_recover").click()

    QTimer.singleShot(0, click_recover)
    assert window.close(), "the window closes once the masks are safe"
    assert stem in seen["text"] and "read-only file system" in seen["text"]
    assert not window.session
    assert not (demo_dir / "masks" / f"{stem}.png").exists()
    store = recovery.store_for(types.SimpleNamespace(root=demo_dir))
    assert store.folder.parent.parent == recovery.recovery_base()
    info = json.loads((store.folder / "recovery.json").read_text())
    assert info["project"] == str(demo_dir.resolve()) and info["saved"] and info["masks"] == {
        stem: f"{stem}.png"}
    assert np.array_equal(store.load(stem), painted)

    unwritable.on = False          # the disk is back; the project is opened again
    offered = []
    monkeypatch.setattr(recovery, "_ask_restore",
                        lambda parent, stems, info: offered.append(stems) or "restore")
    window2 = make_window(qtbot, demo_dir)
    assert offered == [[stem]]
    on_disk = io.read_mask(demo_dir / "masks" / f"{stem}.png")
    assert np.array_equal(on_disk, painted), "restored through the normal save path"
    assert window2.session.project.record(stem).status.value == "in_progress"  # a restored edit, not marked done
    if window2.current_stem() == stem:
        assert np.array_equal(window2.canvas.mask(), painted)
    assert store.entries() == {}, "the recovery copy is removed once restored"
    window2.close()


def test_restore_later_keeps_the_copy_and_a_failed_restore_keeps_it_too(
        qtbot, demo_dir, fake_model, unwritable, monkeypatch):
    window = make_window(qtbot, demo_dir)
    monkeypatch.setattr(recovery, "ask_unsaved", _Answer(recovery.RECOVER))
    stem, painted = _paint(window, qtbot)
    assert window.close()
    store = recovery.store_for(types.SimpleNamespace(root=demo_dir))
    monkeypatch.setattr(recovery, "_ask_restore", lambda *a: "later")
    w2 = make_window(qtbot, demo_dir)
    assert list(store.entries()) == [stem]
    assert w2.close()
    warnings = []
    monkeypatch.setattr(recovery.QMessageBox, "warning", lambda *a: warnings.append(a[2]))
    monkeypatch.setattr(recovery, "_ask_restore", lambda *a: "restore")
    w3 = make_window(qtbot, demo_dir)            # masks/ still read-only: restore fails
    assert warnings and stem in warnings[0] and "read-only" in warnings[0]
    assert list(store.entries()) == [stem], "kept until restored"
    assert w3.close()


def test_discard_loses_the_strokes_only_after_the_explicit_choice(
        qtbot, demo_dir, fake_model, unwritable, monkeypatch):
    window = make_window(qtbot, demo_dir)
    answer = _Answer(recovery.CANCEL, recovery.RETRY, recovery.DISCARD)
    monkeypatch.setattr(recovery, "ask_unsaved", answer)
    stem, painted = _paint(window, qtbot)
    window.close()
    assert window.session is not None and window.isVisible(), "Cancel keeps the window open"
    assert np.array_equal(window.session.saver.pending_mask(stem), painted)
    assert window.close()
    assert [a[0] for a in answer.asked] == [[stem]] * 3
    assert answer.asked[0][2] == "quit"
    unwritable.on = False
    monkeypatch.setattr(recovery, "_ask_restore", lambda *a: pytest.fail("nothing to restore"))
    w2 = make_window(qtbot, demo_dir)
    assert not (demo_dir / "masks" / f"{stem}.png").exists(), "discarded: not replayed either"
    assert w2.session.startup_messages == []
    assert w2.close()


def test_retry_succeeds_once_the_folder_is_writable_again(
        qtbot, demo_dir, fake_model, unwritable, monkeypatch):
    window = make_window(qtbot, demo_dir)
    stem, painted = _paint(window, qtbot)

    def retry_after_fixing(parent, stems, reason, action):
        unwritable.on = False
        return recovery.RETRY

    monkeypatch.setattr(recovery, "ask_unsaved", retry_after_fixing)
    assert window.close()
    assert np.array_equal(io.read_mask(demo_dir / "masks" / f"{stem}.png"), painted)


def test_opening_another_folder_asks_too(qtbot, demo_dir, fake_model, unwritable, monkeypatch,
                                         tmp_path):
    from segcore.demo import generate_demo_project

    other = generate_demo_project(tmp_path / "other", n_images=2, size=(96, 128), seed=5)
    window = make_window(qtbot, demo_dir)
    answer = _Answer(recovery.CANCEL, recovery.RECOVER)
    monkeypatch.setattr(recovery, "ask_unsaved", answer)
    stem, painted = _paint(window, qtbot)
    assert not window.open_project(other), "cancelled: the old project stays open"
    assert window.session.root == demo_dir.resolve()
    assert window.open_project(other)
    assert window.session.root == other.resolve()
    assert answer.asked[-1][2] == "open another folder"
    store = recovery.store_for(types.SimpleNamespace(root=demo_dir))
    assert np.array_equal(store.load(stem), painted)
    unwritable.on = False
    window.close()


def test_other_projects_with_recovered_masks_are_named_on_open(qtbot, demo_dir, fake_model,
                                                               tmp_path):
    from segcore.demo import generate_demo_project
    from segcore.recovery import RecoveryStore

    other = generate_demo_project(tmp_path / "other", n_images=2, size=(96, 128), seed=5)
    RecoveryStore(recovery.recovery_base(), other).save({"demo_000": np.ones((96, 128),
                                                                                np.uint8)}, "test")
    assert str(other.resolve()) in recovery.other_projects_notice(demo_dir)
    assert recovery.other_projects_notice(other) is None
    window = make_window(qtbot, demo_dir)
    assert str(other.resolve()) in window.status.currentMessage()
    window.close()
