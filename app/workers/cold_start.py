"""Cold-start "needs attention" order: ranks a project's images before any model is trained.

Started by the Session when the project has no model version yet and no stored order covering
its images, or when some image has no embedding yet (an image added after the first model). In
its thread it embeds those images with the ImageNet backbone (``segcore.selection``: the
embeddings are kept in the project) and stores the typical-and-diverse order; ``ready(count)``
then lets the image list re-sort. Once a fine-tuned model exists its uncertainties take over,
spread over the same embeddings (``Project.attention_order``, ``segcore.attention``).
``stop()`` ends it between two images; a worker still busy
(loading the backbone, embedding one image) is detached (app.workers.detach) and never touches
the project again, so quitting or switching folders during the cold start exits cleanly.
"""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import QThread, Signal

from .detach import stop_or_detach

ENABLED = True  # tests switch the background ranking off where it is not under test
STOP_WAIT_MS = 2000  # then detached (the GUI does not wait for a backbone load to end)


def embedding_model() -> Any:
    """The ImageNet backbone of the fine-tune default architecture (module-level: patchable)."""
    from segcore import selection
    from segcore.training import TrainConfig
    return selection.embedding_model(TrainConfig())


def needs_cold_start(project: Any) -> bool:
    """Writable, and: with no model version yet, some image missing from the stored order (or
    no embeddings stored at all: a project from before they were kept); with a model, some
    readable image without an embedding."""
    from segcore import attention, selection
    if not ENABLED:
        return False
    from segcore.project import ImageStatus
    from segcore.versions import ModelStore
    try:
        if project.read_only:
            return False
        embedded = set(attention.load_embeddings(project.state_dir))
        if ModelStore(project).active() is not None:
            readable = {r.stem for r in project.records() if r.status != ImageStatus.ERROR}
            return bool(readable - embedded)
        stored = set(project.get_setting(selection.COLD_START_KEY) or [])
        return bool(set(project.stems()) - stored) or (bool(stored) and not embedded)
    except Exception:  # noqa: BLE001 - an unreadable index: nothing to rank
        return False


class ColdStartWorker(QThread):
    ready = Signal(int)        # images ranked
    failed = Signal(str)       # message
    progress = Signal(int, int)

    def __init__(self, project: Any, parent=None) -> None:
        super().__init__(parent)
        import segcore.models  # first import on the GUI thread (see app.training.worker)
        import segcore.selection  # noqa: F401
        self.project = project
        self._stop = threading.Event()
        self.setObjectName("ColdStartWorker")

    def stop(self, wait_ms: int | None = None) -> bool:
        """Stop (between two steps); True if it ended within ``wait_ms``, else it is detached."""
        self._stop.set()
        return stop_or_detach(self, STOP_WAIT_MS if wait_ms is None else wait_ms)

    def run(self) -> None:
        from segcore.memory import release_free_memory
        try:
            self._rank()
        finally:  # the backbone and its activations over every image are gone: give them back
            release_free_memory()

    def _rank(self) -> None:
        from segcore import selection
        stopped = self._stop.is_set

        def on_progress(i: int, n: int) -> None:
            if not stopped():
                self.progress.emit(i, n)

        try:
            model = embedding_model()
            if stopped():  # the session closed while the backbone loaded: its project too
                return
            order = selection.cold_start_order(self.project, model, should_stop=stopped,
                                               on_progress=on_progress)
            if order is None or stopped():
                return
            selection.store_cold_start_order(self.project, order)
        except Exception as exc:  # noqa: BLE001 - the list keeps its name order
            if not stopped():      # after a stop: the project was closed under it, not a failure
                self.failed.emit(f"could not rank images for a first pass: {exc}")
            return
        if not stopped():
            self.ready.emit(len(order))
