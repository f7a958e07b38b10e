"""After a model change: reload the session's prediction worker and re-predict every image.

Uses only the public API of :class:`app.workers.prediction.PredictionWorker`
(``reload_model``, ``request`` and its ``predicted`` / ``failed`` / ``modelReady`` /
``modelFailed`` / ``busyChanged`` signals), so the one worker thread and its one model do all
predictions. Order: the shown image first, then ``project.attention_order()`` (uncorrected,
least confident first; corrected last — their predictions only refresh per-image IoU/BIoU,
which the session computes when a corrected image's prediction arrives; their masks are
never written, ``Project.save_prediction`` keeps status CORRECTED).

``request`` replaces the worker's queue, so when the user shows another image the session's
request (that image + prefetch) goes first; when the worker is idle again the rest is queued
again. A prediction that was in flight with the old model when ``reload_model`` was called is
re-done (forced) after the new model is ready.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QObject, Signal

MAX_IDLE_WITHOUT_RESULTS = 2


class Repredictor(QObject):
    progress = Signal(int, int)   # done, total
    finished = Signal(int, float)  # images predicted, seconds since start()
    failed = Signal(str)

    def __init__(self, session: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.worker = session.worker
        self.pending: list[str] = []
        self.total = 0
        self.done = 0
        self.active = False
        self._awaiting_model = False
        self._stale: list[str] = []
        self._results_since_push = 0
        self._idle_strikes = 0
        self.t0 = 0.0

    def start(self) -> None:
        project = self.session.project
        stems = project.attention_order()
        current = self.session.current
        if current in stems:
            stems = [current] + [s for s in stems if s != current]
        self.pending, self.total, self.done = stems, len(stems), 0
        self._stale, self._idle_strikes = [], 0
        self.t0 = time.monotonic()
        self.active = True
        self._awaiting_model = True
        w = self.worker
        w.predicted.connect(self._result)
        w.failed.connect(self._failed_item)
        w.modelReady.connect(self._model_ready)
        w.modelFailed.connect(self._model_failed)
        w.busyChanged.connect(self._busy)
        w.reload_model()
        self._push()

    def stop(self) -> None:
        if not self.active:
            return
        self.active = False
        w = self.worker
        for signal, slot in ((w.predicted, self._result), (w.failed, self._failed_item),
                             (w.modelReady, self._model_ready), (w.modelFailed, self._model_failed),
                             (w.busyChanged, self._busy)):
            try:
                signal.disconnect(slot)
            except (RuntimeError, TypeError):
                pass

    # -- queue ------------------------------------------------------------------------------
    def _push(self) -> None:
        if not self.active:
            return
        if not self.pending:
            self._finish()
            return
        order = list(self.pending)
        current = self.session.current
        force = False
        if self._stale and not self._awaiting_model:
            head = self._stale.pop(0)
            order = [head] + [s for s in order if s != head]
            force = True
        elif current in order:
            order = [current] + [s for s in order if s != current]
        self._results_since_push = 0
        self.worker.request(order, force)

    def _take(self, stem: str) -> None:
        if stem in self.pending:
            self.pending.remove(stem)
            self.done += 1
            self._results_since_push += 1
            self._idle_strikes = 0
            self.progress.emit(self.done, self.total)

    def _result(self, stem: str, *_: Any) -> None:
        if not self.active:
            return
        if self._awaiting_model:  # finished with the previous model: do it again later
            if stem in self.pending and stem not in self._stale:
                self._stale.append(stem)
            return
        self._take(stem)
        if not self.pending:
            self._finish()

    def _failed_item(self, stem: str, _message: str) -> None:
        if self.active:
            self._take(stem)
            if not self.pending:
                self._finish()

    def _model_ready(self, *_: Any) -> None:
        self._awaiting_model = False

    def _model_failed(self, message: str) -> None:
        if self.active:
            self.stop()
            self.failed.emit(message)

    def _busy(self, busy: bool, _left: int) -> None:
        if busy or not self.active:
            return
        if self._awaiting_model:
            return  # the worker has not loaded the new model yet; it will get busy again
        if self._results_since_push == 0:
            self._idle_strikes += 1
            if self._idle_strikes > MAX_IDLE_WITHOUT_RESULTS:  # the rest were done elsewhere
                self._finish()
                return
        self._push()

    def _finish(self) -> None:
        if self.active:
            self.stop()
            self.finished.emit(self.done, time.monotonic() - self.t0)
