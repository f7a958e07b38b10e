"""The image status lifecycle in the app (design.md, "Data model rules").

unlabelled → predicted → in progress (the user edited) → done (training data) · skipped.

* Every edit (stroke, fill, clear, undo, redo) is autosaved as before; :class:`StatusWriter`
  sits between the :class:`~app.autosave.AutoSaver` and the project and writes each mask with
  the status the edit leads to: IN_PROGRESS, or — when the undo stack is back at its clean
  index — the status the image had when it was shown (its *origin*); if it had no mask file
  then (a prediction or nothing was shown), the mask file is removed again, so a stroke plus
  undo leaves no trace.
* Mark Done / Done & Next / Accept Prediction / Skip / Reset set the origin anew and mark the
  undo stack clean there, so undoing back to that point restores that status.
* The canvas draws the mask hatched while it is the model's prediction (not yet the user's),
  and :class:`StatusChip` on the canvas names the status (and the held-out role).
* Partial (corrective) labels (Tools ▸ Partial Labels, a project setting): an image without a
  mask starts all void (255, not labelled); only painted pixels (brush = a class, eraser =
  background) are labels, the rest stays void, which training and scoring ignore. The
  prediction shows hatched under the void pixels. Masks with void are written through
  segcore.io.write_mask, which stores 255 (the lead's change to io: index 255 in the PNG).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QLabel, QWidget

from segcore.project import ROLE_HELD_OUT, ImageStatus

if TYPE_CHECKING:
    from PySide6.QtGui import QUndoStack

    from .session import Session

VOID = 255
PARTIAL_KEY = "partial_labels"  # project setting: bool

STATUS_LABELS: dict[str, str] = {  # keyed by the enum (a str enum); a status value finds its entry too
    ImageStatus.UNLABELLED: "unlabelled", ImageStatus.PREDICTED: "predicted",
    ImageStatus.IN_PROGRESS: "in progress", ImageStatus.DONE: "done",
    ImageStatus.SKIPPED: "skipped", ImageStatus.ERROR: "error",
}


@dataclass(frozen=True)
class Intent:
    """What the next write of an image's mask means: keep a mask file or not, and the status."""

    keep_mask: bool
    status: ImageStatus


class StatusWriter:
    """The object the AutoSaver writes through (``save_mask(stem, mask)`` on its thread)."""

    def __init__(self, project: Any) -> None:
        self.project = project
        self._lock = threading.Lock()
        self._intents: dict[str, Intent] = {}

    def set_intent(self, stem: str, intent: Intent) -> None:
        with self._lock:
            self._intents[stem] = intent

    def intent(self, stem: str) -> Intent:
        with self._lock:
            return self._intents.get(stem, Intent(True, ImageStatus.IN_PROGRESS))

    def save_mask(self, stem: str, mask: np.ndarray) -> None:
        intent = self.intent(stem)
        if intent.keep_mask:
            self.project.save_mask(stem, mask, intent.status)
            return
        self.project.delete_mask(stem)  # back to predicted / unlabelled
        if intent.status is ImageStatus.SKIPPED:
            self.project.set_status(stem, ImageStatus.SKIPPED)


class ImageStatusController(QObject):
    """Per-session status logic; the window's actions call ``mark_done``, ``skip``, ``reset``…"""

    changed = Signal(str)       # stem whose status or look changed
    message = Signal(str, int)

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.session = session
        self.writer = StatusWriter(session.project)
        self._origin: dict[str, Intent] = {}
        self._stack: QUndoStack | None = None
        self._quiet = False  # set while an action moves the clean index itself
        self.partial = bool(session.project.get_setting(PARTIAL_KEY, False))

    def set_partial(self, on: bool) -> None:
        """Switch partial labels for this project (stored); the shown image follows if it has
        no mask of the user's yet."""
        self.partial = bool(on)
        if not self.session.read_only:
            self.project.set_setting(PARTIAL_KEY, self.partial)
        stem = self.canvas.current_stem()
        origin = self._origin.get(stem or "")
        if stem and origin is not None and not origin.keep_mask and not self.canvas.has_edits():
            self.session.show(stem)
        else:
            self.canvas.set_partial_labels(self.partial)

    @property
    def project(self) -> Any:
        return self.session.project

    @property
    def canvas(self) -> Any:
        return self.session.canvas

    # -- showing ----------------------------------------------------------------------------
    @contextmanager
    def quiet(self) -> Iterator[None]:
        """Stack signals while a new image (or mask) is put on the canvas are not edits: a
        stack cleared because the mask changed on disk must not write anything."""
        old, self._quiet = self._quiet, True
        try:
            yield
        finally:
            self._quiet = old

    def image_shown(self, stem: str) -> None:
        """Record the shown state as the origin and follow the image's undo stack."""
        record = self.project.record(stem)
        had_mask = self.project.mask_path(stem).is_file()
        status = record.status if record.status in (ImageStatus.IN_PROGRESS, ImageStatus.DONE,
                                                    ImageStatus.SKIPPED) else None
        self._origin[stem] = Intent(had_mask, status or (ImageStatus.IN_PROGRESS if had_mask
                                                          else ImageStatus.PREDICTED))
        if self._stack is not None:
            try:
                self._stack.indexChanged.disconnect(self._stack_changed)
                self._stack.cleanChanged.disconnect(self._stack_changed)
            except (RuntimeError, TypeError):
                pass
        self._stack = self.canvas.undo_stack()
        self._stack.indexChanged.connect(self._stack_changed)
        self._stack.cleanChanged.connect(self._stack_changed)
        self._update_look()

    def shown_without_mask(self, stem: str) -> bool:
        """``stem`` was shown without a mask file of the user's (a prediction or nothing)."""
        origin = self._origin.get(stem)
        return origin is not None and not origin.keep_mask

    def is_prediction_shown(self) -> bool:
        stem = self.canvas.current_stem()
        if stem is None or self.canvas.prediction() is None:
            return False
        origin = self._origin.get(stem)
        return (not self.partial and origin is not None and not origin.keep_mask
                and self.canvas.undo_stack().isClean())

    def _update_look(self) -> None:
        self.canvas.set_mask_is_prediction(self.is_prediction_shown())
        stem = self.canvas.current_stem()
        if stem is not None:
            self.changed.emit(stem)

    def prediction_arrived(self) -> None:
        self._update_look()

    # -- edits ------------------------------------------------------------------------------
    def intent_for_current(self) -> Intent:
        """IN_PROGRESS after an edit, the origin when the undo stack is back at clean."""
        stem = self.canvas.current_stem()
        origin = self._origin.get(stem or "")
        if origin is not None and self.canvas.undo_stack().isClean():
            if not origin.keep_mask and origin.status is not ImageStatus.SKIPPED:
                status = (ImageStatus.PREDICTED if self.project.prediction_path(stem).is_file()
                          else ImageStatus.UNLABELLED)
                return Intent(False, status)
            return origin
        return Intent(True, ImageStatus.IN_PROGRESS)

    def before_save(self, stem: str) -> None:
        """Called by the session right before it schedules ``stem``'s mask."""
        if stem == self.canvas.current_stem():
            self.writer.set_intent(stem, self.intent_for_current())

    def _stack_changed(self, *_: object) -> None:
        """Undo/redo/push/clean: the index moved after the patch was applied, so re-decide."""
        stem = self.canvas.current_stem()
        s = self.session
        if stem is None or s.read_only or s.closed or self._quiet:
            return
        self.before_save(stem)
        s.schedule_save(stem, self.canvas.mask().copy())
        self._update_look()

    def _commit(self, stem: str, intent: Intent) -> bool:
        """Write the current mask with ``intent`` now and make this the clean point."""
        s = self.session
        self.writer.set_intent(stem, intent)
        s.schedule_save(stem, self.canvas.mask().copy())
        if not s.saver.flush():
            self.message.emit(f"⚠ {stem}: not saved yet; status unchanged", 10000)
            return False
        self._origin[stem] = Intent(intent.keep_mask, intent.status)
        with self.quiet():
            self.canvas.undo_stack().setClean()
        self._update_look()
        s.recordChanged.emit(stem)
        return True

    # -- actions ----------------------------------------------------------------------------
    def _current(self) -> str | None:
        s = self.session
        stem = self.canvas.current_stem()
        if stem is None or s.read_only or stem != s.current:
            return None
        return stem

    def mark_done(self) -> bool:
        """The shown mask is finished: it becomes training data (or held-out)."""
        stem = self._current()
        if stem is None:
            return False
        ok = self._commit(stem, Intent(True, ImageStatus.DONE))
        if ok:
            role = self.project.record(stem).role
            self.message.emit(f"{self.project.image_path(stem).name}: done"
                              + (" — held out to score the model, never trained on"
                                 if role == ROLE_HELD_OUT else ""), 4000)
        return ok

    def accept_prediction(self) -> bool:
        """Copy the prediction into the mask (one undoable edit) and mark the image done."""
        stem = self._current()
        prediction = self.canvas.prediction()
        if stem is None or prediction is None:
            return False
        if not np.array_equal(self.canvas.mask(), prediction):
            self.canvas.accept_prediction()
        return self.mark_done()

    def skip(self) -> bool:
        """Leave this image out of training for now (its mask, if any, is kept)."""
        stem = self._current()
        if stem is None:
            return False
        # keep a mask only if there is one of the user's (on disk or edited): skipping an
        # untouched image writes nothing, so a rebuilt index never mistakes it for done
        keep = self.project.mask_path(stem).is_file() or self.canvas.has_edits()
        ok = self._commit(stem, Intent(keep, ImageStatus.SKIPPED))
        if ok:
            self.message.emit(f"{self.project.image_path(stem).name}: skipped (not trained on)",
                              4000)
        return ok

    def reset(self) -> bool:
        """Back to not labelled: the mask file moves to .segloop/backup/, the canvas shows the
        prediction (or nothing); one undoable edit (undo brings the mask back, in progress)."""
        stem = self._current()
        if stem is None:
            return False
        s = self.session
        if not s.saver.flush():
            self.message.emit(f"⚠ {stem}: not saved yet; reset later", 10000)
            return False
        try:
            backup = self.project.reset_image(stem)
        except Exception as exc:  # noqa: BLE001 - MaskWriteError names the file and the reason
            self.message.emit(f"⚠ {exc}", 15000)
            return False
        prediction = self.canvas.prediction()
        status = ImageStatus.PREDICTED if prediction is not None else ImageStatus.UNLABELLED
        self._origin[stem] = Intent(False, status)
        doc = self.canvas.document()
        if self.partial:
            target = np.full_like(self.canvas.mask(), VOID)
        else:
            target = prediction if prediction is not None else np.zeros_like(self.canvas.mask())
        rect = doc.replace_all(target.copy()) if doc is not None else None
        if rect is not None:
            self.canvas.refresh(rect)
            self.canvas.commit_edit(rect, "Reset image")
        self.canvas.undo_stack().setClean()
        self.before_save(stem)
        self._update_look()
        s.recordChanged.emit(stem)
        where = f"; the mask is kept in {backup.parent.name}/{backup.name}" if backup else ""
        self.message.emit(f"{self.project.image_path(stem).name}: reset{where} (Ctrl+Z undoes)",
                          8000)
        return True

    def use_for_training(self) -> bool:
        stem = self.canvas.current_stem()
        if stem is None or self.session.read_only:
            return False
        try:
            self.project.use_for_training(stem)
        except Exception as exc:  # noqa: BLE001 - ProjectError: not held out
            self.message.emit(str(exc), 6000)
            return False
        self.message.emit(f"{self.project.image_path(stem).name}: moved from held out into "
                          "training (recorded); the next done image is held out instead", 8000)
        self.session.recordChanged.emit(stem)
        self._update_look()
        return True


class StatusChip(QLabel):
    """A small label in the canvas' top-left corner: the status, the role, and — while the mask
    shown is the model's — a legend for the hatched prediction."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("statusChip")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.move(10, 10)
        self.hide()

    def show_state(self, status: str | None, role: str | None, prediction: bool,
                   partial: bool = False) -> None:
        if status is None:
            self.hide()
            return
        from .panels.image_list import STATUS_COLORS

        color = STATUS_COLORS.get(status, "#7b8494")
        text = (f"<span style='color:{color}'>●</span> {STATUS_LABELS.get(status, status)}")
        if role == ROLE_HELD_OUT:
            text += " · <span style='color:#4aa3df'>held out</span>"
        if partial:
            text += ("<br>partial labels: only painted pixels count "
                     "(<span style='color:#d89b21'>▨</span> = prediction, not labelled)")
        if prediction:
            text += ("<br><span style='color:#d89b21'>▨ prediction</span> — not yours yet: "
                     "paint to correct, Ctrl+Return accepts")
        self.setText(text)
        self.setStyleSheet("QLabel#statusChip { background: rgba(20, 22, 26, 200); color: #e8e8e8;"
                           " border-radius: 6px; padding: 4px 8px; }")
        self.adjustSize()
        self.show()
        self.raise_()
