"""The stroke journal of one open project (segcore.journal) wired to the canvas and the saver.

Each finished edit (``MaskCanvas.editCommitted``: stem, rect, pixels) is queued to the journal
when the session schedules its mask write; the journal's sequence number travels with the mask
through the AutoSaver, whose writer thread reports it back once that mask is on disk (so the
journal can forget it). On open, journals a crashed session left behind are replayed through
the normal save path (``Project.save_mask``); what cannot be written yet stays pending in the
saver (and in the new journal), and a mask changed outside SegLoop since is not overwritten
but put in the recovery folder, where the restore offer finds it.

``SEGLOOP_JOURNAL=0`` turns the journal off (for comparisons such as ``make probe-crash``).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, QTimer

from segcore import io, journal
from segcore.recovery import RecoveryStore

if TYPE_CHECKING:
    from .session import Session

log = logging.getLogger(__name__)

SYNC_DELAY_MS = 150


def journal_enabled() -> bool:
    return os.environ.get("SEGLOOP_JOURNAL", "1").strip().lower() not in ("0", "off", "no", "false")


class SessionJournal:
    """Journal + replay for ``session`` (None-safe: with the journal off it only passes masks)."""

    def __init__(self, session: Session, store: RecoveryStore) -> None:
        self.session = session
        self.store = store
        project = session.project
        self.dirs = [project.state_dir / "journal", store.journal_dir]
        self._last: tuple[str, Any, np.ndarray] | None = None
        self._needs_snap: set[str] = set()  # shown with a starting mask that is not on disk
        self._recorded: dict[str, tuple[np.ndarray, int | None]] = {}  # last journaled state, tag
        self._deferred: list = []
        # fsync of patches written on the GUI thread: once, SYNC_DELAY_MS after the first
        # unsynced one, so the journal thread's wake-up (a GIL hand-over, measured at ~4 ms
        # on the GUI thread of a loaded 2-core machine) does not land inside the stroke.
        self._sync_timer = QTimer(session if isinstance(session, QObject) else None)
        self._sync_timer.setSingleShot(True)
        self._sync_timer.setInterval(SYNC_DELAY_MS)
        self.journal: journal.Journal | None = None
        if journal_enabled() and not project.read_only:
            self.journal = journal.Journal(self.dirs, project.mask_path, io.read_mask)
            session.canvas.editCommitted.connect(self._edit_committed)
            session.saver.after_write = self._after_write
            self._sync_timer.timeout.connect(self.journal.sync)

    # -- edits ------------------------------------------------------------------------------
    def _edit_committed(self, stem: str, rect: Any, pixels: np.ndarray) -> None:
        self._last = (stem, rect, pixels)

    def shown(self, stem: str, base_on_disk: bool) -> None:
        """``stem`` is on the canvas; ``base_on_disk`` = its starting mask is the mask file (or
        zeros without a file). If not, its first edit is journaled as a whole-mask snap."""
        if base_on_disk:
            self._needs_snap.discard(stem)
        else:
            self._needs_snap.add(stem)

    def record(self, stem: str, full: np.ndarray) -> int | None:
        """Journal the edit just finished on ``stem`` (``full`` = the mask after it, not to be
        modified again). Returns the tag for the saver."""
        if self.journal is None:
            return None
        last, self._last = self._last, None
        if last is None and stem not in self._needs_snap and stem in self._recorded:
            seen, tag = self._recorded[stem]
            if seen.shape == full.shape and np.array_equal(seen, full):
                return tag  # the same state scheduled again (status change, stack signal): journaled
        tag = self._record(stem, full, last)
        self._recorded[stem] = (full, tag)
        return tag

    def _record(self, stem: str, full: np.ndarray, last: Any) -> int | None:
        assert self.journal is not None  # record() returns early without a journal
        if stem in self._needs_snap:  # once journaled, patches apply on top of this snap
            self._needs_snap.discard(stem)
            return self._defer(self.journal.append_snapshot, stem, full)
        if last is not None and last[0] == stem:
            r, pixels = last[1], last[2]
            rect = (r.x0, r.y0, r.x1, r.y1)
            if pixels.nbytes <= journal.INLINE_BYTES:  # written now: safe from a kill at once
                self._hand_over()                        # (after anything deferred before it)
                seq = self.journal.append_patch(stem, rect, pixels, full, sync=False)
                if not self._sync_timer.isActive():
                    self._sync_timer.start()  # its fsync follows, off the GUI thread
                return seq
            return self._defer(self.journal.append_patch, stem, rect, pixels, full)
        return self._defer(self.journal.append_snapshot, stem, full)

    def _defer(self, append, *args) -> int:
        """Queue a big record (a snap, a large patch) once the current GUI event is handled:
        the journal thread's work (zlib of up to the whole mask, write, fsync) then overlaps
        the idle event loop instead of this handler (overlapping it cost +5 ms per stroke on a
        loaded 2-core machine). The sequence number is taken now, so the saver's tag is final."""
        assert self.journal is not None  # only _record() defers, with a journal
        seq = self.journal.reserve_seq()
        self._later(lambda: append(*args, seq=seq))
        return seq

    def _later(self, call) -> None:
        self._deferred.append(call)
        if len(self._deferred) == 1:
            QTimer.singleShot(0, self._hand_over)

    def _hand_over(self) -> None:
        items, self._deferred = self._deferred, []
        for call in items:
            call()

    def _after_write(self, stem: str, tag: Any) -> None:  # writer thread
        if self.journal is not None and isinstance(tag, int):
            self.journal.mark_saved(stem, tag)

    def forget(self, stems) -> None:
        if self.journal is not None:
            self._hand_over()
            self.journal.drop(stems)

    # -- replay -----------------------------------------------------------------------------
    def replay(self) -> list[str]:
        """Apply journals left by a crashed session; returns a message per outcome."""
        project = self.session.project
        if project.read_only:
            return []
        files = journal.leftover_files(self.dirs)
        if not files:
            return []
        plan = journal.replay_plan(files, project.mask_path, io.read_mask)
        messages, written, pending, kept = [], [], [], []
        known = set(project.stems())
        for item in plan:
            if item.stem not in known:
                continue
            try:
                wrong_size = io.image_size(project.image_path(item.stem)) != item.mask.shape
            except Exception:  # noqa: BLE001 - an unreadable image: keep the edits aside
                wrong_size = True
            if item.conflict or wrong_size:
                try:
                    self.store.save({item.stem: item.mask},
                                    "journal edits for a mask changed outside SegLoop"
                                    if item.conflict else "journal edits for an image that "
                                    "changed size or cannot be read")
                    kept.append(item.stem)
                except Exception as exc:  # noqa: BLE001
                    messages.append(f"⚠ {item.stem}: journal edits not restored ({exc})")
                    return messages  # keep the journal files: nothing is lost
                continue
            try:
                project.save_mask(item.stem, item.mask, project.restored_status(item.stem))
                written.append(item.stem)
            except Exception as exc:  # noqa: BLE001 - keep it pending: retried and journaled
                tag = self.journal.append_snapshot(item.stem, item.mask) if self.journal else None
                self.session.saver.schedule(item.stem, item.mask, tag)
                pending.append(item.stem)
                log.warning("journal replay of %s not written yet: %s", item.stem, exc)
        if pending and (self.journal is None or not self.journal.flush(10.0)):
            messages.append("⚠ journal edits kept for the next start: "
                            + ", ".join(pending))
            return messages
        journal.remove_files(files)
        if written:
            messages.append(f"Restored unsaved edits from the journal: {', '.join(written)}")
        if pending:
            messages.append(f"⚠ Edits restored from the journal but not saved yet (masks folder "
                            f"not writable): {', '.join(pending)}")
        if kept:
            messages.append(f"⚠ {', '.join(kept)}: the mask or image changed outside SegLoop "
                            "after the crash; the journal's version is in the recovery folder")
        return messages

    def close(self) -> None:
        if self.journal is not None:
            self._sync_timer.stop()
            self._hand_over()
            self.journal.close()
