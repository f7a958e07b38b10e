"""Quitting while the cold-start ranking is still loading its backbone (issue 14 follow-up):
the app must exit 0, not abort with "QThread: Destroyed while thread is still running" (134),
and the stopped worker must not touch the closed project afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from segcore import selection
from segcore.project import Project

ROOT = Path(__file__).resolve().parents[2]

# The app's own main(): the window is freed when main returns (which destroys the Session and
# its worker threads), then the interpreter exits. The backbone "load" takes longer than any
# wait of the close path and never looks at the stop flag, like a real load on a busy machine.
CHILD = r'''
import sys, threading, time
from app.main import create_app
app = create_app()
from PySide6.QtCore import QTimer
from tests.gui.conftest import FakePredictor
from app.workers import cold_start, prediction
from segcore import selection
prediction.default_model_factory = lambda p: prediction.LoadedModel(FakePredictor(), None, "fake")
cold_start.ENABLED = True
loading = threading.Event()

def slow_backbone():
    loading.set()
    time.sleep(float(sys.argv[2]))
    return object()

cold_start.embedding_model = slow_backbone
real_order = selection.cold_start_order

def order(*a, **k):
    print("RANKING", flush=True)
    return real_order(*a, **k)

selection.cold_start_order = order

def main():
    from app.main_window import MainWindow
    w = MainWindow()
    w.show()
    assert w.open_project(sys.argv[1])
    assert w.session.cold_start is not None and w.session.cold_start.isRunning()

    def quit_once_loading():
        if loading.is_set():
            w.close()           # Ctrl+Q's path: closeEvent closes the session
            app.quit()
        else:
            QTimer.singleShot(20, quit_once_loading)

    QTimer.singleShot(0, quit_once_loading)
    return app.exec()

code = main()
print("EXEC_RETURNED", code, flush=True)
sys.exit(code)
'''


LOAD_S = 15.0  # longer than the whole close path (it waited 5 s for this worker before the fix)


def test_quit_during_the_cold_start_exits_0_and_leaves_the_project_alone(demo_dir):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(demo_dir), str(LOAD_S)],
                          check=False, cwd=str(ROOT), env=env, capture_output=True, timeout=600)
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert "Destroyed while thread" not in err, err[-2000:]
    assert proc.returncode == 0, f"exit {proc.returncode}: {err[-2000:]}"
    assert "EXEC_RETURNED 0" in out
    assert "RANKING" not in out        # stopped during the load: no ranking of a closed project
    with Project.open(demo_dir) as p:
        assert p.get_setting(selection.COLD_START_KEY) is None
