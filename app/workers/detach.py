"""Stopping a worker QThread at quit or project switch without blocking the GUI for long.

A QThread object destroyed while its thread runs aborts the process ("QThread: Destroyed while
thread is still running", exit 134); its parent (the Session) is destroyed on every close. So a
worker that does not end within ``wait_ms`` of being told to stop (a model still loading, one
image still being embedded) is *detached*: unparented and kept referenced here until its
``run()`` returns; the interpreter's exit waits for it. The worker itself must have been told
to stop first and must no longer touch the project (it is closed right after).
"""

from __future__ import annotations

import atexit

from PySide6.QtCore import QThread

_DETACHED: set[QThread] = set()
JOIN_TIMEOUT_MS = 120_000


def stop_or_detach(worker: QThread, wait_ms: int) -> bool:
    """Wait up to ``wait_ms`` for ``worker`` (already told to stop) to end; True if it did.
    Otherwise detach it (see the module docstring) and return False."""
    if worker.wait(wait_ms):
        return True
    _DETACHED.add(worker)
    worker.setParent(None)
    worker.finished.connect(lambda: _DETACHED.discard(worker))
    return False


def detached() -> list[QThread]:
    return [w for w in _DETACHED if w.isRunning()]


@atexit.register
def join_detached(timeout_ms: int = JOIN_TIMEOUT_MS) -> None:
    """Let detached workers end before the interpreter (and Qt) go away."""
    for worker in list(_DETACHED):
        worker.wait(timeout_ms)
