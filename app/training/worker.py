"""Fine-tuning off the GUI thread: one QThread running :func:`segcore.loop.finetune`.

``FinetuneWorker.start(root, config)`` opens its *own* :class:`~segcore.project.Project` on
the folder inside the thread (so closing or switching the GUI's project never pulls the index
out from under a running fit) and calls ``finetune`` with a ``threading.Event`` for cancel.
segcore's callbacks run in the training thread; they are forwarded as Qt signals, which Qt
delivers queued to the GUI thread:

- ``progress(step, total, eta_s, elapsed_s)`` at most every :data:`PROGRESS_INTERVAL_S` (plus the last),
- ``epoch(EpochReport)``, ``message(str)``,
- exactly one of ``finished(FinetuneResult)`` (also when cancelled: ``result.cancelled``) or
  ``failed(str)`` per run, then ``runningChanged(False)``.

Cancel: ``cancel()`` sets the event; the Trainer checks it before every step and while it
builds its feature cache, and finetune then returns without saving or activating anything,
so the previous active version stays. Errors are turned into one readable sentence by
:func:`describe_error`; the active version is only changed by a successful save.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

# Imported here, on the GUI thread, on purpose: the first import of torchvision's model code
# from a worker thread held the GIL for up to ~170 ms at a time (dlopen and module set-up),
# stalling the GUI at the start of the first fine-tune (measured in bench_memory).
import segcore.inference
import segcore.models  # noqa: F401

from segcore.errors import CheckpointError, ReadOnlyProjectError, TrainingError
from segcore.training import EpochReport, StepEta, TrainCallbacks, TrainConfig
from app.workers.project_job import opened_project

PROGRESS_INTERVAL_S = 0.1
KEEP = "The previous model is unchanged and still active."


def _is_oom(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "out of memory" in text or "can't allocate memory" in text


def describe_error(exc: BaseException, root: Path | str = "") -> str:
    """One clear sentence for the user: what failed, why, and that the old model is kept."""
    where = f"{root}: " if root else ""
    if isinstance(exc, TrainingError):
        text = str(exc)
        return text if "unchanged" in text else f"{text} {KEEP}"
    if _is_oom(exc):
        return (f"{where}out of memory while fine-tuning ({type(exc).__name__}). Try a smaller input "
                f"size or batch size under Advanced, or close other programs. {KEEP}")
    if isinstance(exc, ReadOnlyProjectError):
        return f"{exc}. {KEEP}"
    if isinstance(exc, (CheckpointError, OSError)):
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return f"{where}could not save the new model version ({reason}; is the disk full?). {KEEP}"
    return f"{where}fine-tuning failed ({type(exc).__name__}: {exc}). {KEEP}"


class _Forwarder(TrainCallbacks):
    """segcore callbacks (training thread) → the worker's signals, progress throttled."""

    def __init__(self, worker: FinetuneWorker, config: TrainConfig) -> None:
        super().__init__()
        self.worker = worker
        self.config = config
        self.t0 = time.monotonic()
        self.last_emit = 0.0
        self.eta = StepEta(config.time_budget_s)  # segcore's ETA between epochs

    def on_step(self, step: int, total: int, loss: float) -> None:
        now = time.monotonic()
        self.eta.step(now)
        if now - self.last_emit >= PROGRESS_INTERVAL_S or step >= total:
            self.last_emit = now
            self.worker.progress.emit(step, total, self.eta.eta(step, total, now), now - self.t0)

    def on_epoch(self, report: EpochReport) -> None:
        self.eta.epoch(report)
        self.worker.epoch.emit(report)

    def on_message(self, text: str) -> None:
        self.worker.message.emit(text)


class _Thread(QThread):
    def __init__(self, worker: FinetuneWorker, root: Path, config: TrainConfig) -> None:
        super().__init__()
        self.worker, self.root, self.config = worker, root, config
        self.setObjectName("FinetuneThread")

    def run(self) -> None:
        from segcore import loop
        from segcore.memory import release_free_memory

        w = self.worker
        try:
            with opened_project(self.root) as project:
                result = loop.finetune(project, self.config, _Forwarder(w, self.config), w.cancel_event)
        except BaseException as exc:  # noqa: BLE001 - every failure is shown, the app keeps going
            release_free_memory()
            w.failed.emit(describe_error(exc, self.root))
        else:
            release_free_memory()  # before re-predicting: what the run freed goes back to the OS
            w.finished.emit(result)


class FinetuneWorker(QObject):
    """Runs one fine-tune at a time; see the module docstring for the signal contract."""

    progress = Signal(int, int, float, float)  # step, total (estimate), eta s (nan = unknown), elapsed s
    epoch = Signal(object)               # EpochReport
    message = Signal(str)
    finished = Signal(object)            # FinetuneResult (result.cancelled when cancelled)
    failed = Signal(str)                 # readable message
    runningChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cancel_event = threading.Event()
        self._thread: _Thread | None = None
        self.root: Path | None = None
        self.started_at = 0.0

    def is_running(self) -> bool:
        return self._thread is not None

    def start(self, root: Path | str, config: TrainConfig) -> bool:
        """Start a run on the project folder ``root``; False if one is already running."""
        if self._thread is not None:
            return False
        config.validate()
        self.cancel_event = threading.Event()
        self.root = Path(root)
        self.started_at = time.monotonic()
        thread = _Thread(self, self.root, config)
        thread.finished.connect(self._thread_done)
        self._thread = thread
        self.runningChanged.emit(True)
        thread.start(QThread.Priority.LowPriority)
        return True

    def cancel(self) -> None:
        """Ask the run to stop before its next step (returns at once)."""
        self.cancel_event.set()

    def wait(self, msecs: int = 30000) -> bool:
        """Block until the thread ends (used on quit, after cancel()). True if it ended."""
        thread = self._thread
        return True if thread is None else thread.wait(msecs)

    def _thread_done(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.deleteLater()
        self.runningChanged.emit(False)

    def shutdown(self, msecs: int = 30000) -> bool:
        """Cancel and wait (window closing). True if no thread is left running."""
        if self._thread is None:
            return True
        self.cancel()
        return self.wait(msecs)


def config_summary(config: TrainConfig) -> dict[str, Any]:
    """The settings the panel exposes, for messages and tests."""
    return {"mode": config.mode, "time_budget_s": config.time_budget_s, "epochs": config.epochs,
            "lr_head": config.lr_head, "input_size": config.input_size}
