"""One open project on screen: the glue between the canvas, the saver and the workers.

``Session`` owns the :class:`~segcore.project.Project`, the :class:`~app.autosave.AutoSaver`,
the :class:`~app.workers.prediction.PredictionWorker` and the metrics jobs; the main window
owns the widgets and listens to the signals below. Showing an image (``show``) flushes pending
saves, decodes the one image on the GUI thread and queues its prediction; it never waits for a
model. Read-only projects are shown with editing disabled (no saver writes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal

from segcore import io
from segcore.project import ImageStatus, Project
from segcore._records import USER_STATUSES

from .autosave import AutoSaver
from .image_status import VOID, ImageStatusController
from .journaling import SessionJournal
from .recovery import store_for
from .workers import cold_start
from .workers.metrics import MetricsJobs
from .workers.prediction import PredictionWorker

HUGE_PIXELS = 50_000_000
PREFETCH = 3

# (stem, mask shape, image shape) -> True = resize the mask, False = ignore it
MaskSizeQuestion = Callable[[str, tuple, tuple], bool]


class Session(QObject):
    shown = Signal(str)                 # stem now on the canvas
    showFailed = Signal(str, str)       # stem, message (the image could not be read)
    recordChanged = Signal(str)         # a row of the image list must be refreshed
    message = Signal(str, int)          # status-bar text, timeout ms
    predictionBusy = Signal(bool, int)  # busy, items left
    modelReady = Signal(str, str)       # device, model label
    modelFailed = Signal(str)
    saveState = Signal(str)
    orderChanged = Signal()             # the needs-attention order changed (cold-start ranking)

    def __init__(self, project: Project, canvas: Any, ask_mask_resize: MaskSizeQuestion,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.canvas = canvas
        self.ask_mask_resize = ask_mask_resize
        self.current: str | None = None
        self.order: Callable[[], list[str]] = project.stems
        self.status = ImageStatusController(self)  # statuses of edits (app/image_status.py)
        self.status.message.connect(self.message)
        self.saver = AutoSaver(self.status.writer, self)
        self.saver.saved.connect(self._saved)
        self.saver.failed.connect(self._save_failed)
        self.saver.stateChanged.connect(self.saveState)
        self.journal = SessionJournal(self, store_for(project))
        self.startup_messages = self.journal.replay()  # edits a crashed session left behind
        self.metrics = MetricsJobs(self)
        self.metrics.updated.connect(self.recordChanged)
        self.worker = PredictionWorker(project, parent=self)
        self.worker.predicted.connect(self._predicted)
        self.worker.failed.connect(self.image_failed)
        self.worker.modelReady.connect(self.modelReady)
        self.worker.modelFailed.connect(self.modelFailed)
        self.worker.busyChanged.connect(self.predictionBusy)
        canvas.strokeFinished.connect(self._stroke_finished)
        if hasattr(canvas, "set_probability_source"):  # scribbles refine the model's probabilities
            canvas.set_probability_source(self.worker.probabilities)
        self._closed = False
        self._image: np.ndarray | None = None
        self._base_on_disk = False  # the mask show() put on the canvas is the file on disk
        self._unused_mask_file = False  # show(): the mask file of the image shown is not used
        self.worker.start_loading()
        self.cold_start: cold_start.ColdStartWorker | None = None
        if cold_start.needs_cold_start(project):
            self.cold_start = cold_start.ColdStartWorker(project, self)
            self.cold_start.ready.connect(self._cold_start_ready)
            self.cold_start.failed.connect(lambda text: self.message.emit(f"⚠ {text}", 10000))
            self.cold_start.start(QThread.Priority.LowPriority)

    def _cold_start_ready(self, count: int) -> None:
        if self._closed:
            return
        self.orderChanged.emit()
        self.message.emit(f"Needs attention: {count} images ranked for a first pass "
                          "(typical and varied first)", 8000)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def read_only(self) -> bool:
        return bool(self.project.read_only)

    # -- showing ----------------------------------------------------------------------------
    def show(self, stem: str) -> bool:
        """Put ``stem`` on the canvas (flushing pending saves first). False if unreadable."""
        if self._closed:
            return False
        self.saver.flush()
        self.current = stem
        try:
            size = io.image_size(self.project.image_path(stem))
            image = self.project.load_image(stem)
        except Exception as exc:  # noqa: BLE001 - ImageReadError and anything PIL throws
            self.image_failed(stem, str(exc) or type(exc).__name__)
            self.showFailed.emit(stem, str(exc))
            self.worker.request(self.neighbours(stem))
            return False
        if self.project.record(stem).error:
            self.project.set_error(stem, None)
            self.recordChanged.emit(stem)
        pending = self.saver.pending_mask(stem)  # a write that has not succeeded yet wins
        self._base_on_disk = pending is None  # _load_mask clears it when the file is not the start
        mask = pending if pending is not None else self._load_mask(stem, image.shape[:2])
        # an unreadable or ignored (wrong-size) mask file: painting replaces it, and the image
        # starts from the prediction like one without a mask, whether it is stored or arrives later
        self._unused_mask_file = mask is None and self.project.mask_path(stem).exists()
        if self._unused_mask_file:
            self._base_on_disk = False
        prediction = self.project.load_prediction(stem)
        if prediction is not None and prediction.shape != image.shape[:2]:
            prediction = None
        self._image = image
        self._put_on_canvas(stem, mask, prediction)
        if size[0] * size[1] > HUGE_PIXELS:
            self.message.emit(f"⚠ {self.project.image_path(stem).name} is huge "
                              f"({size[1]}×{size[0]} = {size[0] * size[1] / 1e6:.0f} MP): "
                              "predictions and overlays may be slow", 15000)
        self.shown.emit(stem)
        self.request_predictions()
        return True

    def _put_on_canvas(self, stem: str, mask: np.ndarray | None,
                       prediction: np.ndarray | None) -> None:
        """Without a user mask the prediction is the starting mask, drawn hatched and corrected
        in place. It is written to masks/ only when the user edits it (status in progress) or
        accepts it (done); undoing back removes it again (app/image_status.py)."""
        assert self._image is not None  # both callers show a loaded image
        from_disk = self._base_on_disk
        partial = self.status.partial
        if mask is None and partial:
            mask, from_disk = np.full(self._image.shape[:2], VOID, np.uint8), False  # only painted pixels count
        elif mask is None and prediction is not None:
            mask, from_disk = prediction.copy(), False
        self.canvas.set_partial_labels(partial)
        with self.status.quiet():  # showing is not an edit
            self.canvas.set_image(stem, self._image, mask, prediction)
        self.journal.shown(stem, from_disk)
        self._base_on_disk = False  # until show() loads it again
        self.status.image_shown(stem)

    def schedule_save(self, stem: str, mask: np.ndarray) -> None:
        """Journal ``mask`` (durable at once, app/journaling.py) and schedule its write."""
        self.saver.schedule(stem, mask, self.journal.record(stem, mask))

    def accept_prediction(self) -> None:
        """Make the prediction this image's mask (one undoable edit, or a plain save when the
        starting mask already is the prediction) and mark the image done."""
        self.status.accept_prediction()

    def clear_mask(self) -> None:
        """Set every pixel to background as one undoable edit (saved like a stroke)."""
        doc = self.canvas.document() if hasattr(self.canvas, "document") else None
        if doc is None or self.read_only:
            return
        fill = VOID if self.status.partial else 0  # partial labels: cleared = not labelled
        rect = doc.replace_all(np.full_like(self.canvas.mask(), fill))
        if rect is not None:
            self.canvas.refresh(rect)
            self.canvas.commit_edit(rect, "Clear mask")

    def _load_mask(self, stem: str, image_hw: tuple[int, int]) -> np.ndarray | None:
        path = self.project.mask_path(stem)
        if not path.is_file():
            return None
        try:
            mask = io.read_mask(path)
        except Exception as exc:  # noqa: BLE001
            self.message.emit(f"⚠ {exc}", 15000)
            return None
        if mask.shape == tuple(image_hw):
            return mask
        if self.ask_mask_resize(stem, mask.shape, tuple(image_hw)):
            import cv2

            resized = cv2.resize(mask, (image_hw[1], image_hw[0]),
                                 interpolation=cv2.INTER_NEAREST)
            if not self.read_only:
                try:
                    status = self.project.record(stem).status
                    self.project.save_mask(stem, resized, status if status in USER_STATUSES
                                           else ImageStatus.DONE)
                except Exception as exc:  # noqa: BLE001
                    self._base_on_disk = False
                    self.message.emit(f"⚠ resized mask not saved: {exc}", 15000)
            return resized
        self.message.emit(f"{path.name}: mask size {mask.shape[1]}×{mask.shape[0]} ignored "
                          f"(image is {image_hw[1]}×{image_hw[0]}); painting replaces it", 15000)
        return None

    def neighbours(self, stem: str, count: int = PREFETCH) -> list[str]:
        stems = self.order()
        try:
            i = stems.index(stem)
        except ValueError:
            return []
        return stems[i + 1:i + 1 + count]

    def request_predictions(self, force_current: bool = False) -> None:
        if self.current is None:
            return
        self.worker.request([self.current, *self.neighbours(self.current)], force_current)

    # -- edits ------------------------------------------------------------------------------
    def _stroke_finished(self, stem: str) -> None:
        if self.read_only or self._closed or stem != self.canvas.current_stem():
            return
        self.status.before_save(stem)
        self.schedule_save(stem, self.canvas.mask().copy())

    def _saved(self, stem: str) -> None:
        self.recordChanged.emit(stem)
        self.metrics.schedule(self.project, stem)

    def _save_failed(self, stem: str, message: str) -> None:
        self.message.emit(f"⚠ {stem}: not saved yet ({message}); retrying", 10000)

    # -- worker results ---------------------------------------------------------------------
    def _predicted(self, stem: str, mask: np.ndarray, _uncertainty: float) -> None:
        if self._closed:
            return
        if stem == self.current and stem == self.canvas.current_stem():
            assist = getattr(self.canvas, "assist", None)  # a box / scribble at work is an edit
            untouched = (not self.canvas.has_edits() and self.saver.pending_mask(stem) is None
                         and (self._unused_mask_file or not self.project.mask_path(stem).is_file())
                         and not self.canvas.tool_is_drawing()
                         and not (assist is not None and (assist.busy() or assist.has_scribbles())))
            if untouched and self._image is not None:
                self._put_on_canvas(stem, None, mask)  # show it as the starting mask
            else:
                self.canvas.set_prediction(mask)
                self.status.prediction_arrived()
        self.recordChanged.emit(stem)
        if self.project.mask_path(stem).is_file():
            self.metrics.schedule(self.project, stem)

    def image_failed(self, stem: str, message: str) -> None:
        """``stem`` cannot be read (decoder, thumbnailer, worker): its row says why."""
        try:
            self.project.set_error(stem, message)
        except Exception:  # noqa: BLE001 - the row keeps its status
            pass
        self.recordChanged.emit(stem)

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Write pending corrections, stop the workers, close the project. Safe twice."""
        if self._closed:
            return
        self._closed = True
        if hasattr(self.canvas, "set_probability_source"):
            self.canvas.set_probability_source(None)
            self.canvas.assist.wait()
        self.saver.close()
        self.journal.close()  # keeps its file for replay if anything is still unsaved
        if self.cold_start is not None:
            self.cold_start.stop()
        self.worker.stop()
        self.metrics.wait()
        self.project.close()

    @property
    def root(self) -> Path:
        return Path(self.project.root)
