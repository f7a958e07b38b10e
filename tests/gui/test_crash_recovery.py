"""kill -9 a painting session 1.5 s after its last stroke: reopening shows every stroke."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from segcore.project import Project

ROOT = Path(__file__).resolve().parents[2]
H, W = 120, 160

CHILD = r'''
import sys, time
import numpy as np
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.autosave import AutoSaver
from app.canvas import MaskCanvas
from app.canvas.testing import drag
from segcore.project import Project

folder, out = sys.argv[1], sys.argv[2]
project = Project.open(folder)
saver = AutoSaver(project)
canvas = MaskCanvas()
canvas.resize(320, 260)
canvas.show()
canvas.strokeFinished.connect(lambda stem: saver.schedule(stem, canvas.mask().copy()))

def show(stem):
    saver.flush()                       # what the main window does on image switch
    canvas.set_image(stem, project.load_image(stem), project.load_mask(stem), None)

def pause(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)

show("img0")
canvas.set_brush_size(5)
for i in range(6):
    drag(canvas, [(10 + 20 * i, 10), (15 + 20 * i, 100)])
    pause(0.05)
np.save(out + "/img0.npy", canvas.mask())
show("img1")
for i in range(4):
    drag(canvas, [(5, 10 + 25 * i), (150, 20 + 25 * i)])
    pause(0.02)
canvas.set_tool("eraser")
drag(canvas, [(70, 0), (70, 119)])         # the last stroke: no time to rest before the kill
np.save(out + "/img1.npy", canvas.mask())
print("LAST_STROKE", flush=True)
app.exec()                                 # idle in the event loop until killed
'''


def _make_project(folder: Path) -> None:
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"img{i}.png"), np.full((H, W, 3), 80 + 50 * i, np.uint8))


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        return ""
    return proc.stdout.readline().decode().strip()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_kill_9_after_the_last_stroke_loses_nothing(tmp_path):
    folder, out = tmp_path / "proj", tmp_path / "out"
    _make_project(folder)
    out.mkdir()
    Project.open(folder).close()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(folder), str(out)], cwd=str(ROOT),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = _read_line(proc, timeout=120)
        if line != "LAST_STROKE":
            proc.kill()
            raise AssertionError(f"child failed: {line!r} {proc.stderr.read().decode()[-2000:]}")
        time.sleep(1.5)
        assert proc.poll() is None, "the child must still be running when it is killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    project = Project.open(folder)
    try:
        for stem in ("img0", "img1"):
            expected = np.load(out / f"{stem}.npy")
            assert expected.sum() > 0
            on_disk = project.load_mask(stem)
            assert on_disk is not None, f"{stem}: no mask on disk after the crash"
            assert np.array_equal(on_disk, expected), f"{stem}: strokes lost"
            assert project.record(stem).status.value == "done"
        assert not [p for p in project.masks_dir.iterdir() if p.name.endswith(".tmp")], "temp files left"
    finally:
        project.close()
