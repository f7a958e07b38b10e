"""The stroke journal under real crashes (issue 14, item 2): a child process runs the app's main
window (its own Session, AutoSaver and journal; a fake model), paints, and is killed with
SIGKILL ~0.1 s after its last stroke, before the debounced mask write; reopening the project
replays the journal. With masks/ unwritable in the child too. SIGTERM flushes instead."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from segcore import io

from .conftest import make_window

ROOT = Path(__file__).resolve().parents[2]

CHILD = r'''
import errno, os, sys, time, types
import numpy as np
from PySide6.QtWidgets import QApplication
from app.main import create_app
app = create_app()
from tests.gui.conftest import FakePredictor
from app.workers import prediction
prediction.default_model_factory = lambda p: prediction.LoadedModel(FakePredictor(), None, "fake")
from app.workers import cold_start
cold_start.ENABLED = False
folder, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
if "unwritable" in mode:                     # masks/ refuses every write (read-only fs)
    import segcore._atomic as atomic
    masks = os.path.join(os.path.realpath(folder), "masks") + os.sep
    class FailingOs(types.SimpleNamespace):
        def __getattr__(self, name): return getattr(os, name)
        def open(self, path, *a, **k):
            if str(path).startswith(masks):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return os.open(path, *a, **k)
    atomic.os = FailingOs()
from app.main_window import MainWindow
from app.recovery import install_signal_flush
from app.canvas.testing import drag
w = MainWindow()
w.show()
w.signal_flush = install_signal_flush(w)
assert w.open_project(folder)
canvas = w.canvas
canvas.set_brush_size(5)
def pause(s):
    end = time.monotonic() + s
    while time.monotonic() < end:
        app.processEvents(); time.sleep(0.005)
pause(0.3)
for i in range(5):
    drag(canvas, [(10 + 20 * i, 10), (15 + 20 * i, 80)])
    pause(0.03)
canvas.set_tool("eraser")
drag(canvas, [(0, 40), (127, 40)])           # the last stroke
np.save(out + "/expected.npy", canvas.mask())
with open(out + "/stem.txt", "w") as fh:
    fh.write(canvas.current_stem())
print("LAST_STROKE", flush=True)
sys.exit(app.exec())
'''


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().decode().strip() if ready else ""


def _run_child(demo_dir: Path, out: Path, mode: str, sig: int, delay: float) -> int:
    out.mkdir()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT),
               SEGLOOP_JOURNAL="0" if "nojournal" in mode else "1")
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(demo_dir), str(out), mode],
                            cwd=str(ROOT), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        line = _read_line(proc, timeout=180)
        if line != "LAST_STROKE":
            proc.kill()
            raise AssertionError(f"child failed: {line!r} {proc.stderr.read().decode()[-3000:]}")
        time.sleep(delay)
        assert proc.poll() is None, "the child must still be running when it is signalled"
        os.kill(proc.pid, sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("mode", ["writable", "unwritable"])
def test_sigkill_0_1_s_after_a_stroke_loses_nothing(qtbot, demo_dir, fake_model, tmp_path, mode,
                                                     monkeypatch):
    out = tmp_path / "out"
    assert _run_child(demo_dir, out, mode, signal.SIGKILL, 0.1) == -signal.SIGKILL
    expected, stem = np.load(out / "expected.npy"), (out / "stem.txt").read_text()
    mask_file = demo_dir / "masks" / f"{stem}.png"
    if mode == "unwritable":
        assert not mask_file.exists(), "the child could not write masks/"
    else:
        on_disk = io.read_mask(mask_file) if mask_file.exists() else None
        assert on_disk is None or not np.array_equal(on_disk, expected), \
            "the kill came before the mask write (else this test proves nothing)"
    from app import recovery

    monkeypatch.setattr(recovery, "_ask_restore", lambda *a: pytest.fail("no recovery offer"))
    window = make_window(qtbot, demo_dir)       # reopen: the journal is replayed
    assert np.array_equal(io.read_mask(mask_file), expected), "strokes lost"
    assert window.session.project.record(stem).status.value == "in_progress"  # a restored edit, not marked done
    assert any("journal" in m for m in window.session.startup_messages)
    journals = list((demo_dir / ".segloop" / "journal").glob("*.sjl"))
    assert all(p.stat().st_size == 0 or p == window.session.journal.journal.path
               for p in journals), "replayed journals are removed"
    window.close()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_without_the_journal_the_same_kill_loses_the_stroke(qtbot, demo_dir, fake_model,
                                                            tmp_path):
    """The control: proves the kill lands before the mask write (SEGLOOP_JOURNAL=0)."""
    out = tmp_path / "out"
    assert _run_child(demo_dir, out, "writable-nojournal", signal.SIGKILL, 0.1) == -signal.SIGKILL
    expected, stem = np.load(out / "expected.npy"), (out / "stem.txt").read_text()
    window = make_window(qtbot, demo_dir)
    mask_file = demo_dir / "masks" / f"{stem}.png"
    assert not mask_file.exists() or not np.array_equal(io.read_mask(mask_file), expected)
    window.close()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_flush_pending_saves_before_exiting(qtbot, demo_dir, tmp_path, sig):
    out = tmp_path / "out"
    code = _run_child(demo_dir, out, "writable-nojournal", sig, 0.0)
    assert code == 0, f"exit code {code}"
    expected, stem = np.load(out / "expected.npy"), (out / "stem.txt").read_text()
    assert np.array_equal(io.read_mask(demo_dir / "masks" / f"{stem}.png"), expected)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_with_masks_unwritable_puts_them_in_the_recovery_folder(qtbot, demo_dir,
                                                                         tmp_path):
    import types

    from app import recovery

    out = tmp_path / "out"
    assert _run_child(demo_dir, out, "unwritable-nojournal", signal.SIGTERM, 0.0) == 0
    expected, stem = np.load(out / "expected.npy"), (out / "stem.txt").read_text()
    store = recovery.store_for(types.SimpleNamespace(root=demo_dir))
    assert np.array_equal(store.load(stem), expected)
