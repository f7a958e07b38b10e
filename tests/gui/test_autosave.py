"""AutoSaver: every edit reaches masks/<stem>.png soon, off the GUI thread, in order, retried."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.autosave import AutoSaver
from app.canvas import MaskCanvas
from app.canvas.testing import drag
from segcore.errors import ReadOnlyProjectError
from segcore.project import Project

H, W = 120, 160


@pytest.fixture
def project(tmp_path) -> Project:
    folder = tmp_path / "proj"
    folder.mkdir()
    for i in range(2):
        img = np.full((H, W, 3), 60 + 40 * i, np.uint8)
        cv2.imwrite(str(folder / f"img{i}.png"), img)
    proj = Project.open(folder)
    yield proj
    proj.close()


@pytest.fixture
def saver(project, qtbot):
    s = AutoSaver(project)
    yield s
    s.close(timeout=5)


@pytest.fixture
def canvas(qtbot, project, saver) -> MaskCanvas:
    c = MaskCanvas()
    qtbot.addWidget(c)
    c.resize(300, 240)
    c.show()
    qtbot.waitExposed(c)
    c.strokeFinished.connect(lambda stem: saver.schedule(stem, c.mask().copy()))
    c.set_image("img0", project.load_image("img0"), project.load_mask("img0"), None)
    return c


def _on_disk(project: Project, stem: str) -> np.ndarray | None:
    try:
        return project.load_mask(stem)
    except Exception:  # noqa: BLE001 — not there yet
        return None


def _disk_equals(project: Project, stem: str, expected: np.ndarray) -> bool:
    mask = _on_disk(project, stem)
    return mask is not None and np.array_equal(mask, expected)


def test_a_stroke_is_on_disk_soon_and_equals_the_screen(canvas, project, saver, qtbot):
    canvas.set_brush_size(7)
    with qtbot.waitSignal(saver.saved, timeout=5000) as blocker:
        drag(canvas, [(10, 10), (100, 80), (150, 20)])
    assert blocker.args == ["img0"]
    qtbot.waitUntil(lambda: _disk_equals(project, "img0", canvas.mask()), timeout=5000)
    assert canvas.mask().sum() > 0
    assert project.record("img0").status.value == "done"  # AutoSaver on a bare project
    assert saver.state() == "saved"


def test_undo_and_redo_are_saved_too(canvas, project, saver, qtbot):
    drag(canvas, [(20, 20), (60, 60)])
    painted = canvas.mask().copy()
    qtbot.waitUntil(lambda: _disk_equals(project, "img0", painted), timeout=5000)
    canvas.undo_stack().undo()
    qtbot.waitUntil(lambda: _disk_equals(project, "img0", np.zeros((H, W), np.uint8)), timeout=5000)
    canvas.undo_stack().redo()
    qtbot.waitUntil(lambda: _disk_equals(project, "img0", painted), timeout=5000)


def test_flush_blocks_until_written(canvas, project, saver):
    drag(canvas, [(5, 100), (150, 100)])
    assert saver.state() == "saving…"
    assert saver.flush(timeout=10)
    assert _disk_equals(project, "img0", canvas.mask())
    assert saver.is_idle() and saver.state() == "saved"


def test_failed_write_is_reported_retried_and_succeeds_later(canvas, project, saver, qtbot):
    masks = project.masks_dir
    hidden = masks.with_name("masks-away")
    masks.rename(hidden)
    masks.write_text("not a folder")          # every write into masks/ now fails
    states: list[str] = []
    saver.stateChanged.connect(states.append)
    with qtbot.waitSignal(saver.failed, timeout=5000) as blocker:
        drag(canvas, [(30, 30), (120, 90)])
    stem, message = blocker.args
    assert stem == "img0" and message
    assert saver.state().startswith("unsaved (retrying): ")
    kept = saver.pending_mask("img0")
    assert kept is not None and np.array_equal(kept, canvas.mask()), "latest mask kept in memory"
    assert not saver.flush(timeout=5), "flush reports the write is still failing (and returns)"
    masks.unlink()
    hidden.rename(masks)
    with qtbot.waitSignal(saver.saved, timeout=15000):
        pass
    assert _disk_equals(project, "img0", canvas.mask())
    assert saver.state() == "saved" and saver.pending_mask("img0") is None
    assert any(s.startswith("unsaved") for s in states) and states[-1] == "saved"


class _RecordingProject:
    """Stands in for Project: slow writes, records the order; can be read-only."""

    def __init__(self, folder: Path, read_only: bool = False) -> None:
        self.folder = folder
        self.read_only = read_only
        self.writes: list[tuple[str, int]] = []
        self.threads: set[str] = set()

    def save_mask(self, stem: str, mask: np.ndarray) -> None:
        self.threads.add(threading.current_thread().name)
        if self.read_only:
            raise ReadOnlyProjectError(f"{self.folder}: project is read-only (the folder is not writable)")
        time.sleep(0.02)
        self.writes.append((stem, int(mask[0, 0])))
        np.save(self.folder / f"{stem}.npy", mask)


def test_writes_happen_in_order_off_the_gui_thread_keeping_the_latest(tmp_path, qtbot):
    proj = _RecordingProject(tmp_path)
    saver = AutoSaver(proj, debounce_ms=50, max_wait_ms=100)
    try:
        for version in range(1, 30):
            saver.schedule("a", np.full((4, 4), version, np.uint8))
            saver.schedule("b", np.full((4, 4), 100 + version, np.uint8))
            if version % 7 == 0:
                qtbot.wait(60)
        assert saver.flush(timeout=10)
        for stem, last in (("a", 29), ("b", 129)):
            versions = [v for s, v in proj.writes if s == stem]
            assert versions == sorted(versions), f"{stem} written out of order: {versions}"
            assert versions[-1] == last
            assert np.load(tmp_path / f"{stem}.npy")[0, 0] == last
        assert threading.main_thread().name not in proj.threads
    finally:
        saver.close(timeout=5)


def test_read_only_project_reports_and_keeps_the_mask(tmp_path, qtbot):
    proj = _RecordingProject(tmp_path, read_only=True)
    saver = AutoSaver(proj, debounce_ms=10)
    try:
        with qtbot.waitSignal(saver.failed, timeout=5000) as blocker:
            saver.schedule("a", np.ones((4, 4), np.uint8))
        assert "read-only" in blocker.args[1]
        qtbot.waitUntil(lambda: saver.state().startswith("unsaved (retrying): "), timeout=2000)
        assert saver.pending_mask("a") is not None
        assert not saver.flush(timeout=5)
    finally:
        saver.close(timeout=1)
