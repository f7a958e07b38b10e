"""AutoSaver: every finished edit reaches masks/<stem>.png within a second, off the GUI thread.

Flow: ``schedule(stem, mask_copy)`` (GUI thread) keeps the newest mask per image and
(re)starts a short debounce timer (never delaying a write more than ``max_wait``); the timer
hands the masks to one writer thread, which calls ``project.save_mask`` (atomic) image after
image, in order. A failed write (read-only folder, disk full, …) is reported through
``failed`` / ``stateChanged("unsaved (retrying): …")`` and retried with exponential backoff;
the mask stays in memory (``pending_mask``) until a write succeeds or a newer edit replaces it.
``flush()`` blocks until everything scheduled so far was written (or failed once more).
Each mask may carry a ``tag`` (the stroke journal's sequence number); ``after_write(stem, tag)``
is called on the writer thread once a mask with that tag is on disk. ``unsaved()`` /
``discard()`` serve the quit dialog (app/recovery.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal


log = logging.getLogger(__name__)

DEBOUNCE_MS = 300
MAX_WAIT_MS = 600          # a burst of edits is still written this soon after its first edit
BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)

STATE_SAVED = "saved"
STATE_SAVING = "saving…"
STATE_RETRYING = "unsaved (retrying): {}"


@dataclass
class _Item:
    stem: str
    mask: np.ndarray
    tag: Any = None
    attempts: int = 0
    retry_at: float = 0.0
    fail_epoch: int = -1


class _SaveQueue:
    """Thread-safe ordered queue holding the newest unsaved mask per image."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: OrderedDict[str, _Item] = OrderedDict()
        self._inflight: _Item | None = None
        self._closed = False
        self._epoch = 0

    def put(self, stem: str, mask: np.ndarray, tag: Any = None) -> None:
        with self._cond:
            old = self._items.get(stem)
            if old is not None:  # newer edit replaces the unsaved one, keeps its place and backoff
                old.mask, old.tag = mask, tag
            else:
                self._items[stem] = _Item(stem, mask, tag)
            self._cond.notify_all()

    def take(self) -> _Item | None:
        """Block until an item is due; None once closed."""
        with self._cond:
            while True:
                if self._closed:
                    return None
                now = time.monotonic()
                due = next((it for it in self._items.values() if it.retry_at <= now), None)
                if due is not None:
                    del self._items[due.stem]
                    self._inflight = due
                    return due
                wait = min((it.retry_at for it in self._items.values()), default=now + 3600) - now
                self._cond.wait(timeout=max(0.01, wait))

    def done(self, item: _Item, error: str | None) -> None:
        with self._cond:
            self._inflight = None
            if error is not None:
                item.attempts += 1
                item.fail_epoch = self._epoch
                newer = self._items.get(item.stem)
                if newer is None:
                    item.retry_at = time.monotonic() + BACKOFF_S[min(item.attempts, len(BACKOFF_S)) - 1]
                    self._items[item.stem] = item
                    self._items.move_to_end(item.stem, last=False)  # keep write order
                else:
                    newer.attempts, newer.fail_epoch = item.attempts, item.fail_epoch
                    newer.retry_at = time.monotonic() + BACKOFF_S[min(item.attempts, len(BACKOFF_S)) - 1]
            self._cond.notify_all()

    def drain(self, timeout: float) -> bool:
        """Try everything now; wait until all was written or failed once more. True = all written."""
        with self._cond:
            self._epoch += 1
            epoch = self._epoch
            for it in self._items.values():
                it.retry_at = 0.0
            self._cond.notify_all()
            self._cond.wait_for(
                lambda: self._inflight is None and all(it.fail_epoch >= epoch for it in self._items.values()),
                timeout=timeout)
            return self._inflight is None and not self._items

    def mask_of(self, stem: str) -> np.ndarray | None:
        with self._cond:
            item = self._items.get(stem)
            if item is None and self._inflight is not None and self._inflight.stem == stem:
                item = self._inflight
            return None if item is None else item.mask

    def unsaved(self) -> dict[str, np.ndarray]:
        with self._cond:
            out = {} if self._inflight is None else {self._inflight.stem: self._inflight.mask}
            out.update((s, it.mask) for s, it in self._items.items())
            return out

    def discard(self, stems: set[str]) -> None:
        with self._cond:
            for stem in stems:
                self._items.pop(stem, None)
            self._cond.notify_all()

    def busy(self) -> bool:
        with self._cond:
            return self._inflight is not None or bool(self._items)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class AutoSaver(QObject):
    """Debounced, ordered, retried background writer of masks (see module docstring)."""

    saved = Signal(str)
    failed = Signal(str, str)
    stateChanged = Signal(str)
    _written = Signal(str)          # writer thread → GUI thread (queued)
    _write_failed = Signal(str, str)

    def __init__(self, project: Any, parent: QObject | None = None, debounce_ms: int = DEBOUNCE_MS,
                 max_wait_ms: int = MAX_WAIT_MS) -> None:
        super().__init__(parent)
        self._project = project
        self._debounce_ms = int(debounce_ms)
        self._max_wait_s = max_wait_ms / 1000.0
        self._pending: OrderedDict[str, tuple[np.ndarray, Any]] = OrderedDict()
        self.after_write: Callable[[str, Any], None] | None = None
        self.last_error: str | None = None
        self._first_pending_at: float | None = None
        self._queue = _SaveQueue()
        self._state = STATE_SAVED
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._hand_over)
        self._written.connect(self._on_written)
        self._write_failed.connect(self._on_failed)
        self._thread = threading.Thread(target=self._run, name="segloop-autosave", daemon=True)
        self._thread.start()
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.close)

    # ---- GUI thread -------------------------------------------------------------------------
    def schedule(self, stem: str, mask_copy: np.ndarray, tag: Any = None) -> None:
        """Write ``mask_copy`` (caller's own copy: it is not copied again) soon."""
        self._pending[stem] = (mask_copy, tag)
        self._pending.move_to_end(stem)
        now = time.monotonic()
        if self._first_pending_at is None:
            self._first_pending_at = now
        left_ms = (self._max_wait_s - (now - self._first_pending_at)) * 1000.0
        self._timer.start(int(max(0.0, min(self._debounce_ms, left_ms))))
        self._set_state(STATE_SAVING)

    def flush(self, timeout: float = 10.0) -> bool:
        """Block until every scheduled mask is written (True) or failed again / timed out (False)."""
        self._hand_over()
        ok = self._queue.drain(timeout)
        if ok:
            self._set_state(STATE_SAVED)
        return ok

    def pending_mask(self, stem: str) -> np.ndarray | None:
        """The newest mask of ``stem`` not yet on disk (e.g. after failed writes), else None."""
        if stem in self._pending:
            return self._pending[stem][0]
        return self._queue.mask_of(stem)

    def unsaved(self) -> dict[str, np.ndarray]:
        """Every image's newest mask that is not on disk yet (call after a failed flush)."""
        out = self._queue.unsaved()
        out.update((stem, mask) for stem, (mask, _tag) in self._pending.items())
        return out

    def discard(self, stems) -> None:  # iterable of stems
        """Forget the unsaved masks of ``stems`` (the user chose so, or they are kept elsewhere)."""
        stems = set(stems)
        for stem in stems:
            self._pending.pop(stem, None)
        self._queue.discard(stems)
        if self.is_idle():
            self._set_state(STATE_SAVED)

    def is_idle(self) -> bool:
        return not self._pending and not self._queue.busy()

    def state(self) -> str:
        return self._state

    def close(self, timeout: float = 10.0) -> bool:
        """Flush, then stop the writer thread. The saver cannot be used afterwards."""
        ok = self.flush(timeout)
        self._queue.close()
        self._thread.join(timeout=1.0)
        return ok

    def _hand_over(self) -> None:
        self._timer.stop()
        self._first_pending_at = None
        while self._pending:
            stem, (mask, tag) = self._pending.popitem(last=False)
            self._queue.put(stem, mask, tag)

    def _on_written(self, stem: str) -> None:
        self.saved.emit(stem)
        if self.is_idle():
            self._set_state(STATE_SAVED)

    def _on_failed(self, stem: str, message: str) -> None:
        self.failed.emit(stem, message)
        self._set_state(STATE_RETRYING.format(message))

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.stateChanged.emit(state)

    # ---- writer thread ----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.take()
            if item is None:
                return
            error: str | None = None
            try:
                self._project.save_mask(item.stem, item.mask)
            except Exception as exc:  # noqa: BLE001 — any failure is reported and retried
                error = str(exc) or type(exc).__name__
                self.last_error = error
                log.warning("autosave of %s failed: %s", item.stem, error)
            if error is None and self.after_write is not None:
                try:
                    self.after_write(item.stem, item.tag)
                except Exception:  # a hook must not stop the writer
                    log.exception("after_write hook failed")
            self._queue.done(item, error)
            try:
                if error is None:
                    self._written.emit(item.stem)
                else:
                    self._write_failed.emit(item.stem, error)
            except RuntimeError:  # the QObject was deleted during shutdown
                return
