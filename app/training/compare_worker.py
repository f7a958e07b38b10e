"""Version comparison off the GUI thread: one QThread at a time running a segcore.compare job.

``CompareWorker.compare(root, a, b)`` runs :func:`segcore.compare.compare_images` on its *own*
Project (as the fine-tune worker does) and emits ``progress(done, total)`` then exactly one of
``compared(list[ImageChange], cancelled)`` or ``failed(str)``. ``pair(root, a, b, stem)``
predicts (or reads from the cache) both versions' masks of one image and emits
``pairReady(stem, codes)`` with :func:`segcore.compare.diff_codes` for the canvas' diff layer.
``cancel()`` stops a comparison before its next image. ``predictor_factory`` (None: the
versions' own models) is what tests replace with known predictions.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, QThread, Signal
from app.workers.project_job import opened_project

predictor_factory: Callable[[Any, int], Any] | None = None  # (project, version id) -> .predict(image)


class _Thread(QThread):
    def __init__(self, worker: CompareWorker, root: Path, job: Callable[[Any, threading.Event], None],
                 cancel: threading.Event) -> None:
        super().__init__()
        self.worker, self.root, self.job, self.cancel = worker, root, job, cancel
        self.setObjectName("CompareThread")

    def run(self) -> None:
        try:
            with opened_project(self.root) as project:
                self.job(project, self.cancel)
        except BaseException as exc:  # noqa: BLE001 - shown in the view, the app keeps going
            self.worker.failed.emit(f"{self.root}: comparison failed ({type(exc).__name__}: {exc})")

class CompareWorker(QObject):
    progress = Signal(int, int)          # images done, total
    compared = Signal(object, bool)      # list[ImageChange] (largest drop first), cancelled
    pairReady = Signal(str, object)      # stem, uint8 diff codes (HxW)
    failed = Signal(str)
    runningChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cancel_event = threading.Event()
        self._thread: _Thread | None = None

    def is_running(self) -> bool:
        return self._thread is not None

    def _start(self, root: Path | str, job: Callable[[Any, threading.Event], None]) -> bool:
        if self._thread is not None:
            return False
        self.cancel_event = threading.Event()
        thread = _Thread(self, Path(root), job, self.cancel_event)
        thread.finished.connect(self._thread_done)
        self._thread = thread
        self.runningChanged.emit(True)
        thread.start(QThread.Priority.LowPriority)
        return True

    def _predictions(self, project: Any) -> Any:
        from segcore.compare import Predictions
        return Predictions(project, predictor_factory)

    def compare(self, root: Path | str, a: int, b: int) -> bool:
        """Compare versions ``a`` (earlier) and ``b`` on every held-out and done image."""
        from segcore.compare import compare_images

        def job(project: Any, cancel: threading.Event) -> None:
            changes = compare_images(project, a, b, progress=lambda d, t, _s: self.progress.emit(d, t),
                                     cancel=cancel, predictions=self._predictions(project))
            self.compared.emit(changes, cancel.is_set())
        return self._start(root, job)

    def pair(self, root: Path | str, a: int, b: int, stem: str) -> bool:
        """Both versions' predictions of ``stem`` → ``pairReady(stem, diff codes)``."""
        from segcore.compare import diff_codes

        def job(project: Any, _cancel: threading.Event) -> None:
            mask = project.load_mask(stem)
            if mask is None:
                raise ValueError(f"{stem} has no mask to compare the predictions with")
            image = project.load_image(stem)
            preds = self._predictions(project)
            pa, pb = preds.get(a, stem, image), preds.get(b, stem, image)
            self.pairReady.emit(stem, diff_codes(mask, pa, pb, project.num_classes))
        return self._start(root, job)

    def cancel(self) -> None:
        self.cancel_event.set()

    def _thread_done(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.deleteLater()
        self.runningChanged.emit(False)

    def shutdown(self, msecs: int = 30000) -> bool:
        """Cancel and wait (window closing). True if no thread is left running."""
        thread = self._thread
        if thread is None:
            return True
        self.cancel()
        return thread.wait(msecs)
