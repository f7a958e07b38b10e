"""Stroke journal: every finished edit is durable before (and independently of) the mask write.

One append-only file per editing session, ``<dir>/<time_ns>-<pid>.sjl`` (``dir`` is
``.segloop/journal/`` or, when that cannot be written, a fallback such as the app's recovery
folder), held with an exclusive ``flock`` while the session lives. Each record is::

    b"SLJ1" | u32 header length | u32 body length | u32 crc32(header + body) | header | body

``header`` is JSON: ``k`` (``"snap"`` = the whole mask, ``"patch"`` = one changed rectangle),
``stem``, ``seq`` (per file, increasing), ``t`` (``time.time_ns()`` of the edit), ``shape``
(the full mask's HxW), ``rect`` ``[x0, y0, x1, y1]`` (half-open; the whole mask for a snap) and
``base`` (``[mtime_ns, size]`` of the mask file when the record was written, or None if absent).
``body`` is ``zlib`` (level 1) of the rectangle's uint8 pixels *after* the edit. A torn last
record (crash mid-append) fails its length or CRC check and is ignored.

Pixels are absolute, so applying a stem's records in order to the mask on disk gives the
edited mask whatever prefix of them the (asynchronous) mask writer had already saved. When the
editor's starting mask was never on disk (e.g. a prediction shown as the starting mask, or a
mask whose write is still failing), the caller journals a snap first (``append_snapshot``).

Bounded: records of a stem are dropped from memory once a mask containing them is on disk
(:meth:`Journal.mark_saved`); with nothing live the file is truncated, and when it grows past
``max_bytes`` it is rewritten (atomically) with one snap per stem that still has live edits.

Small patches are written by the caller's thread when nothing is queued before them (and
fsynced by the journal thread); everything else runs on the journal's own thread, in order
(the caller hands over arrays it will not modify again). :func:`leftover_files` and
:func:`replay_plan` (in :mod:`segcore.journal_format`, re-exported here) read the journals a
crashed session left behind (files nobody holds a lock on).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from segcore._atomic import os_error_reason
from segcore.journal_format import (  # noqa: F401 - the read side, re-exported
    SUFFIX, Rect4, Record, Replay, apply_records, encode, fcntl, file_stat, leftover_files, parse,
    remove_files, replay_plan)

log = logging.getLogger(__name__)

MAX_BYTES = 64 * 1024 * 1024
#: A patch up to this size is compressed and written on the caller's thread (~0.1-1 ms), so
#: it is in the kernel — safe from a process kill — before the call returns; its fsync (power
#: loss) follows on the journal thread. Bigger patches and snaps go through the thread.
INLINE_BYTES = 512 * 1024


@dataclass
class _Op:
    kind: str                     # "patch" | "snap" | "saved" | "drop" | "flush"
    stem: str = ""
    seq: int = 0
    t_ns: int = 0
    rect: Rect4 | None = None
    pixels: np.ndarray | None = None
    full: np.ndarray | None = None
    done: threading.Event | None = None
    stems: tuple[str, ...] = ()


class Journal:
    """One session's journal (see the module docstring). Thread-safe; work runs on its thread.

    ``dirs``: folders to try in order (the first that can be written is used; on a write error
    the journal moves to the next, rewriting what is live). ``mask_path(stem)`` is the mask file
    (its stat goes into each record; it is read when compacting a chain that starts on disk).
    ``read_mask(path)`` reads a mask file as class indices.
    """

    def __init__(self, dirs: Iterable[Path], mask_path: Callable[[str], Path],
                 read_mask: Callable[[Path], np.ndarray], max_bytes: int = MAX_BYTES,
                 fsync: bool = True) -> None:
        self._dirs = [Path(d) for d in dirs]
        self._mask_path = mask_path
        self._read_mask = read_mask
        self._max_bytes = int(max_bytes)
        self._fsync = fsync
        self._seq = 0
        self._seq_lock = threading.Lock()
        self._ops: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._lock = threading.Lock()        # file, live records (the thread holds it per op)
        self._count_lock = threading.Lock()
        self._queued = 0                     # ops put and not handled yet
        self.written_seq = 0                 # records up to this seq are in the kernel
        self._live: dict[str, list[tuple[int, bytes]]] = {}   # stem -> [(seq, record bytes)]
        self._saved_upto: dict[str, int] = {}                 # stem -> newest seq on disk
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self.error: str | None = None          # the last write failure, None when healthy
        self.durable_seq = 0                   # every record with seq <= this is fsynced
        self._thread = threading.Thread(target=self._run, name="segloop-journal", daemon=True)
        self._thread.start()

    # ---- any thread ---------------------------------------------------------------------
    def _next_seq(self) -> int:
        with self._seq_lock:
            self._seq += 1
            return self._seq

    def reserve_seq(self) -> int:
        """A sequence number for a record queued later (``append_*(..., seq=n)``)."""
        return self._next_seq()

    def append_patch(self, stem: str, rect: Rect4, pixels: np.ndarray, full: np.ndarray,
                     seq: int | None = None, sync: bool = True) -> int:
        """Queue one finished edit: ``pixels`` = the rectangle after it, ``full`` = the whole
        mask after it (only its shape is used). Returns the record's seq. ``sync=False``: a
        patch written on this thread is fsynced only at the next :meth:`sync` (or record)."""
        seq = self._next_seq() if seq is None else int(seq)
        t_ns, r = time.time_ns(), tuple(int(v) for v in rect)
        if pixels.nbytes <= INLINE_BYTES and self._write_inline(stem, seq, t_ns, r, pixels, full):
            if sync:
                self.sync()
            return seq
        self._put(_Op("patch", stem, seq, t_ns, r, pixels, full))
        return seq

    def _write_inline(self, stem: str, seq: int, t_ns: int, rect: Rect4, pixels: np.ndarray,
                      full: np.ndarray) -> bool:
        """Append a small patch on this thread if nothing is queued and the file is healthy."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            with self._count_lock:
                if self._queued:
                    return False
            if self._fd is None or self.error is not None or self._size > self._max_bytes:
                return False
            rec = encode("patch", stem, seq, t_ns, full.shape[:2], rect, pixels,
                         file_stat(self._mask_path(stem)))
            try:
                os.write(self._fd, rec)
            except OSError:
                return False  # the journal thread retries it (and handles the error)
            self._live.setdefault(stem, []).append((seq, rec))
            self._size += len(rec)
            self.written_seq = max(self.written_seq, seq)
            return True
        finally:
            self._lock.release()

    def _put(self, op: _Op | None) -> None:
        if op is not None:
            with self._count_lock:
                self._queued += 1
        self._ops.put(op)

    def append_snapshot(self, stem: str, full: np.ndarray, seq: int | None = None) -> int:
        seq = self._next_seq() if seq is None else int(seq)
        self._put(_Op("snap", stem, seq, time.time_ns(), None, None, full))
        return seq

    def sync(self) -> None:
        """Queue an fsync of everything written so far."""
        self._put(_Op("fsync", seq=self.written_seq))

    def mark_saved(self, stem: str, seq: int) -> None:
        """A mask of ``stem`` containing every edit up to ``seq`` is now on disk."""
        self._put(_Op("saved", stem, int(seq)))

    def drop(self, stems: Iterable[str]) -> None:
        """Forget ``stems``' edits (discarded by the user, or kept safe elsewhere)."""
        self._put(_Op("drop", stems=tuple(stems)))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far was handled (written, or failed)."""
        if not self._thread.is_alive():
            return False
        ev = threading.Event()
        self._put(_Op("flush", done=ev))
        return ev.wait(timeout) and self.error is None

    def live_stems(self) -> list[str]:
        return [s for s, recs in list(self._live.items()) if recs]

    @property
    def path(self) -> Path | None:
        return self._path

    def close(self, timeout: float = 5.0) -> None:
        """Flush and stop. The file is deleted if nothing in it is live, else kept for replay."""
        self.sync()
        self.flush(timeout)
        self._ops.put(None)
        self._thread.join(timeout)

    # ---- journal thread -----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            op = self._ops.get()
            if op is None:
                self._finish()
                return
            try:
                with self._lock:
                    self._handle(op)
            except Exception as exc:  # never let the journal thread die
                log.exception("journal: %s failed", op.kind)
                self.error = str(exc) or type(exc).__name__
            finally:
                with self._count_lock:
                    self._queued -= 1
                if op.done is not None:
                    op.done.set()

    def _handle(self, op: _Op) -> None:
        if op.kind in ("patch", "snap"):
            self._append(op)
        elif op.kind == "fsync":
            if self._fd is not None:
                try:
                    self._sync(self._fd)
                    self.durable_seq = max(self.durable_seq, op.seq)
                except OSError as exc:
                    self.error = f"{self._path}: {os_error_reason(exc)}"
                    self._restart()
        elif op.kind == "saved":
            self._saved_upto[op.stem] = max(op.seq, self._saved_upto.get(op.stem, 0))
            recs = self._live.get(op.stem)
            if recs:
                recs[:] = [r for r in recs if r[0] > op.seq]
            if not any(self._live.values()):
                self._live.clear()
                self._truncate()
        elif op.kind == "drop":
            for stem in op.stems:
                self._live.pop(stem, None)
                self._saved_upto[stem] = self._seq
            if any(self._live.values()):
                self._restart()
            else:
                self._live.clear()
                self._truncate()

    def _append(self, op: _Op) -> None:
        if op.seq <= self._saved_upto.get(op.stem, 0):
            return  # queued late: a mask with this edit is already on disk
        full = op.full
        base = file_stat(self._mask_path(op.stem))
        shape = full.shape[:2] if full is not None else op.pixels.shape
        if op.kind == "snap" or op.rect is None:
            rec = encode("snap", op.stem, op.seq, op.t_ns, shape, (0, 0, shape[1], shape[0]),
                         full, base)
        else:
            rec = encode("patch", op.stem, op.seq, op.t_ns, shape, op.rect, op.pixels, base)
        self._live.setdefault(op.stem, []).append((op.seq, rec))
        if self._size + len(rec) > self._max_bytes and self._size > 0:
            self._compact()
        else:
            self._write(rec)
        if self.error is None:
            self.written_seq = max(self.written_seq, op.seq)
            self.durable_seq = max(self.durable_seq, op.seq)

    def _records(self) -> Iterable[bytes]:
        for recs in self._live.values():
            for _seq, rec in recs:
                yield rec

    def _sync(self, fd: int) -> None:
        if self._fsync:
            os.fsync(fd)

    def _write(self, rec: bytes) -> None:
        """Append ``rec``; without a file, or when appending fails, start a fresh file holding
        everything live (trying each folder in order)."""
        if self._fd is not None:
            try:
                os.write(self._fd, rec)
                self._sync(self._fd)
                self._size += len(rec)
                self.error = None
                return
            except OSError as exc:
                self.error = f"{self._path}: {os_error_reason(exc)}"
                log.warning("journal write failed: %s", self.error)
        self._restart()

    def _restart(self) -> bool:
        """Write every live record into a new file (first folder that works), then remove the
        old file: a crash in between leaves at least one complete copy. True on success."""
        data = b"".join(self._records())
        errors = []
        for d in self._dirs:
            path = d / f"{time.time_ns()}-{os.getpid()}{SUFFIX}"
            try:
                d.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            except OSError as exc:
                errors.append(f"{d}: {os_error_reason(exc)}")
                continue
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.write(fd, data)
                self._sync(fd)
            except OSError as exc:
                os.close(fd)
                self._remove(path)
                errors.append(f"{d}: {os_error_reason(exc)}")
                continue
            old_fd, old_path = self._fd, self._path
            self._fd, self._path, self._size = fd, path, len(data)
            if old_fd is not None:
                os.close(old_fd)
            if old_path is not None:
                self._remove(old_path)
            self.error = None
            return True
        self.error = "journal cannot be written: " + "; ".join(errors)
        log.warning("%s", self.error)
        return False

    def _truncate(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            self._sync(self._fd)
            self._size = 0
        except OSError as exc:
            log.warning("journal truncate failed: %s", os_error_reason(exc))

    def _compact(self) -> None:
        """One snap per stem with live edits (the chain replayed in memory), then rewrite."""
        new_live: dict[str, list[tuple[int, bytes]]] = {}
        for stem, recs in self._live.items():
            if not recs:
                continue
            records = parse(b"".join(r for _s, r in recs))
            mask = apply_records(records, lambda s=stem: self._disk_mask(s))
            last = records[-1]
            rec = encode("snap", stem, last.seq, last.t_ns, mask.shape, (0, 0, mask.shape[1],
                         mask.shape[0]), mask, file_stat(self._mask_path(stem)))
            new_live[stem] = [(last.seq, rec)]
        self._live = new_live
        self._restart()

    def _disk_mask(self, stem: str) -> np.ndarray | None:
        path = self._mask_path(stem)
        if not path.is_file():
            return None
        return self._read_mask(path)

    def _finish(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._path is not None and not any(self._live.values()):
            self._remove(self._path)

    @staticmethod
    def _remove(path: Path) -> None:
        try:
            os.unlink(path)
        except OSError:
            pass


