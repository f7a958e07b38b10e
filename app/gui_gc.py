"""Python's cyclic garbage collector, run only on the GUI thread.

CPython runs a collection in whichever thread happens to allocate past the threshold. In this
app that is often a worker (training, predictions, thumbnails, metrics). If the garbage then
holds a QObject that lives on the GUI thread (a closed session, a finished worker's signal
relay), its C++ destructor runs on the worker thread. Qt does not allow that, and it shows up
as a rare segfault with no Python frame. The remedy is pyqtgraph's ``GarbageCollector``:
turn off automatic collection and collect from a GUI-thread timer, with the same generation
thresholds. This class is written here rather than imported because pyqtgraph is not a
dependency; it is a dozen lines.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

INTERVAL_MS = 500


class GuiThreadCollector(QObject):
    """Disables automatic ``gc`` and collects on a timer in the GUI thread."""

    def __init__(self, app: QApplication, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(app)
        self.setObjectName("segloop-gui-gc")
        self.threshold = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)
        app.aboutToQuit.connect(self.collect_all)

    def check(self) -> None:
        """Collect the generations whose allocation counts passed their thresholds."""
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self.threshold[generation]:
                gc.collect(generation)
                return

    def collect_all(self) -> None:
        gc.collect()

    def remove(self) -> None:
        """Back to CPython's automatic collection (tests call this between windows)."""
        self.timer.stop()
        self.setObjectName("")
        gc.collect()
        gc.enable()
        self.deleteLater()


def install(app: QApplication | None = None) -> GuiThreadCollector:
    """Install once per QApplication (idempotent); must be called from the GUI thread."""
    app = app or QApplication.instance()
    if app is None:
        raise RuntimeError("create the QApplication first")
    found = app.findChild(GuiThreadCollector, "segloop-gui-gc")
    return found if found is not None else GuiThreadCollector(app)


def uninstall(app: QApplication | None = None) -> None:
    app = app or QApplication.instance()
    found = app.findChild(GuiThreadCollector, "segloop-gui-gc") if app is not None else None
    if found is not None:
        found.remove()
