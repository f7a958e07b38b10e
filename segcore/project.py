"""A SegLoop project: a folder of images, ``masks/`` beside them, app state in ``.segloop/``.

Layout::

    <folder>/<image files>                 any of segcore.io.IMAGE_SUFFIXES; hidden files ignored
    <folder>/masks/<stem>.png              the user's masks (the truth; see segcore.io.write_mask)
    <folder>/.segloop/index.sqlite         SQLite index (WAL); rebuilt from the files if lost
    <folder>/.segloop/predictions/<stem>.png   latest prediction per image
    <folder>/.segloop/models/              checkpoints and ACTIVE: ``project.models``
                                           (segcore.versions.ModelStore) owns them and their rows
    <folder>/.segloop/backup/<stem>.<time>.png  masks set aside by reset_image
    <folder>/.segloop/embeddings.npz       ImageNet embedding per image (segcore.attention; a cache)

Image status (``ImageStatus``): unlabelled → predicted → in progress → done · skipped. Only DONE
images are training data (``done_stems``); each gets a fixed train / held-out role when it first
becomes done (``segcore.roles``; ``training_split``).
Stems follow the rule in :mod:`segcore._index` (file name without suffix; duplicates such as
``a.png`` + ``a.jpg`` use the full file name). Opening reads names and mtimes only, never pixels.
A writable open also deletes the temp files (``.<name>.<hex>.tmp``) that a killed atomic write
left in ``masks/`` and ``.segloop/`` (``segcore._atomic.remove_stale_temps``; a write still in
progress in another process holds a lock on its temp file and is left alone).

Threads: one ``Project`` may be shared by threads; an ``RLock`` guards the connection (opened
with ``check_same_thread=False``). Processes: each opens its own ``Project``; SQLite's WAL
locking plus ``BEGIN IMMEDIATE`` and a busy timeout keep the index consistent.

Read-only: if the folder is not writable or ``.segloop/`` cannot be created (or the index is
locked by a newer SegLoop), the project opens with an in-memory index, ``read_only`` is True,
``read_only_reason`` says why, and every write method raises :class:`ReadOnlyProjectError`.

Errors: unknown stems, closed projects, unusable indexes and folders that cannot be listed
(no read permission) raise :class:`ProjectError`. A file whose name is not valid UTF-8 does not
stop the folder from opening: it is listed with status ERROR and a "file name is not valid
UTF-8" error (see :mod:`segcore._index`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from segcore import _index, io
from segcore._atomic import os_error_reason, remove_stale_temps
from segcore import roles
from segcore._records import (DEFAULT_CLASSES, ROLE_HELD_OUT, ROLE_TRAIN, USER_STATUSES, ClassInfo,
                              ImageRecord, ImageStatus, ModelVersion)
from segcore.errors import MaskReadError, MaskWriteError, ProjectError, ReadOnlyProjectError

if TYPE_CHECKING:  # the type only: segcore.versions imports torch
    from segcore.versions import ModelStore


__all__ = ["ClassInfo", "DEFAULT_CLASSES", "ImageRecord", "ImageStatus", "ModelVersion", "Project",
           "ROLE_HELD_OUT", "ROLE_TRAIN", "STATE_DIR"]

STATE_DIR = ".segloop"
_IMAGE_COLS = "stem, filename, status, updated, uncertainty, iou, biou, error, model_version, role"
_USER_SQL = "('in_progress', 'done', 'skipped')"  # USER_STATUSES in SQL


def _record(row: tuple) -> ImageRecord:
    return ImageRecord(row[0], row[1], ImageStatus(row[2]), *row[3:])


def _opt_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _folder_writable(folder: Path) -> bool:
    """Separate function so tests can simulate a read-only folder (tests run as root)."""
    return os.access(folder, os.W_OK)


COLD_START_KEY = "cold_start_order"  # setting: segcore.selection's order for unpredicted images


class Project:
    """A project folder and its index. Create with :meth:`Project.open`."""

    def __init__(self, root: Path, conn: sqlite3.Connection, read_only_reason: str | None) -> None:
        self.root = root
        self.masks_dir = root / "masks"
        self.state_dir = root / STATE_DIR
        self.predictions_dir = self.state_dir / "predictions"
        self.models_dir = self.state_dir / "models"
        self.read_only_reason = read_only_reason
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.RLock()
        self._real_names: dict[str, str] = {}  # listed name -> undecodable (non-UTF-8) name

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, folder: str | os.PathLike[str]) -> Project:
        """Open ``folder`` (creating ``masks/`` and ``.segloop/`` when writable) and sync the
        index with the files. Raises ProjectError only if ``folder`` is not a folder."""
        root = Path(folder).expanduser().resolve()
        if not root.is_dir():
            raise ProjectError(f"{root}: not a folder" if root.exists()
                               else f"{root}: folder does not exist")
        state = root / STATE_DIR
        reason = None if _folder_writable(root) else "the folder is not writable"
        if reason is None:
            try:
                for sub in (root / "masks", state, state / "predictions", state / "models"):
                    sub.mkdir(exist_ok=True)
            except OSError as exc:
                reason = f"cannot create {sub} ({os_error_reason(exc)})"
        if reason is None:  # temp files of writes a kill interrupted (never read as masks)
            for sub in (root / "masks", state / "predictions", state / "models", state):
                remove_stale_temps(sub)
        conn = None
        if reason is None:
            conn, reason = _index.open_index(state / "index.sqlite")
        if conn is None:
            conn = _index.copy_into_memory(state / "index.sqlite") or _index.connect(":memory:")
        project = cls(root, conn, reason)
        try:
            project.rescan()
        except BaseException:
            project.close()
            raise
        return project

    def rescan(self) -> None:
        """Re-read the folder (names + mtimes) and reconcile the index with the files.

        ProjectError if a folder cannot be listed (e.g. no read permission)."""
        try:
            disk = _index.scan(self.root, self.masks_dir, self.predictions_dir)
        except OSError as exc:
            where = exc.filename or self.root
            raise ProjectError(f"{io.display_name(where)}: cannot list the folder "
                               f"({os_error_reason(exc)})") from exc
        stale: list[str] = []
        with self._lock:
            self._real_names = dict(disk.real_names)
            try:
                _index.reconcile(self._db(), disk, None if self.read_only else stale)
                self._assign_roles()
            except sqlite3.Error as exc:
                raise ProjectError(f"{self.state_dir / 'index.sqlite'}: cannot update the "
                                   f"index ({exc})") from exc
        for stem in stale:
            try:
                self.prediction_path(stem).unlink()
            except OSError:
                pass

    def close(self) -> None:
        """Close the index; later calls raise ProjectError. Safe to call twice."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r}{', read-only' if self.read_only else ''})"

    @property
    def read_only(self) -> bool:
        return self.read_only_reason is not None

    # ------------------------------------------------------------------ helpers
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ProjectError(f"project {self.root} is closed")
        return self._conn

    def _writable(self) -> None:
        if self.read_only:
            raise ReadOnlyProjectError(f"project {self.root} is open read-only "
                                       f"({self.read_only_reason}); changes cannot be saved")

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db().execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise ProjectError(f"{self.state_dir / 'index.sqlite'}: {exc}") from exc

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """Lock + the connection for reads; sqlite errors become ProjectError. With _txn, what
        segcore's table owners (segcore.versions.ModelStore) run their SQL in."""
        with self._lock:
            try:
                yield self._db()
            except sqlite3.Error as exc:
                raise ProjectError(f"{self.state_dir / 'index.sqlite'}: {exc}") from exc

    @contextmanager
    def _txn(self) -> Iterator[sqlite3.Connection]:
        """Lock + IMMEDIATE write transaction; sqlite errors become ProjectError."""
        self._writable()
        with self._lock:
            try:
                with _index.write_txn(self._db()) as conn:
                    yield conn
            except sqlite3.Error as exc:
                raise ProjectError(f"{self.state_dir / 'index.sqlite'}: {exc}") from exc

    def _write(self, sql: str, args: tuple = ()) -> int:
        """Run one write statement in its own transaction; returns the row count."""
        with self._txn() as conn:
            return conn.execute(sql, args).rowcount

    def _update_image(self, stem: str, sql: str, args: tuple) -> None:
        if self._write(f"UPDATE images SET {sql} WHERE stem = ?", (*args, stem)) == 0:
            raise ProjectError(f"{self.root}: no image with stem {stem!r}")

    # ------------------------------------------------------------------ images
    def records(self) -> list[ImageRecord]:
        """All images, sorted by stem."""
        return [_record(r) for r in self._query(f"SELECT {_IMAGE_COLS} FROM images ORDER BY stem")]

    def record(self, stem: str) -> ImageRecord:
        rows = self._query(f"SELECT {_IMAGE_COLS} FROM images WHERE stem = ?", (stem,))
        if not rows:
            raise ProjectError(f"{self.root}: no image with stem {stem!r}")
        return _record(rows[0])

    def stems(self) -> list[str]:
        return [r[0] for r in self._query("SELECT stem FROM images ORDER BY stem")]

    def __len__(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM images")[0][0])

    def image_path(self, stem: str) -> Path:
        name = self.record(stem).filename
        return self.root / self._real_names.get(name, name)

    def mask_path(self, stem: str) -> Path:
        return self.masks_dir / f"{stem}.png"

    def prediction_path(self, stem: str) -> Path:
        return self.predictions_dir / f"{stem}.png"

    def load_image(self, stem: str) -> np.ndarray:
        """The image as HxWx3 uint8 RGB (segcore.io.read_image). Raises ImageReadError."""
        return io.read_image(self.image_path(stem))

    def load_mask(self, stem: str) -> np.ndarray | None:
        """The corrected mask, or None. MaskReadError if unreadable or not the image's size."""
        path = self.mask_path(stem)
        if not path.is_file():
            return None
        mask = io.read_mask(path, self.num_classes)
        self._check_size(stem, mask, path, MaskReadError)
        return mask

    def load_prediction(self, stem: str) -> np.ndarray | None:
        """The latest stored prediction (class indices), or None if absent or unreadable."""
        path = self.prediction_path(stem)
        if not path.is_file():
            return None
        try:
            return io.read_mask(path, self.num_classes)
        except MaskReadError:
            return None

    def _check_size(self, stem: str, mask: np.ndarray, path: Path, error: type) -> None:
        try:
            size = io.image_size(self.image_path(stem))
        except io.ImageReadError:
            return  # the image's own error is reported when it is loaded
        if getattr(mask, "shape", None) != size:
            raise error(f"{path}: mask is {getattr(mask, 'shape', '?')} (HxW) but image "
                        f"{self.image_path(stem).name} is {size[0]}x{size[1]}")

    def save_mask(self, stem: str, mask: np.ndarray,
                  status: ImageStatus = ImageStatus.DONE) -> None:
        """Write masks/<stem>.png atomically and set the image's status (default DONE: a label
        given headlessly, e.g. by the CLI or the simulator, is finished; the app's autosave
        passes IN_PROGRESS for strokes). SKIPPED keeps the mask but no training use.

        Raises ReadOnlyProjectError, ProjectError (unknown stem) or MaskWriteError (bad array,
        wrong size, disk problem; the previous mask is intact)."""
        self._writable()
        status = ImageStatus(status)
        if status not in USER_STATUSES:
            raise ProjectError(f"save_mask: status must be one of "
                               f"{[s.value for s in USER_STATUSES]}, got {status.value!r}")
        path = self.mask_path(stem)
        self._check_size(stem, mask, path, MaskWriteError)
        io.write_mask(path, mask, self.num_classes, [c.color for c in self.classes])
        self.set_status(stem, status)

    def restored_status(self, stem: str) -> ImageStatus:
        """The status a restored edit (stroke journal replay, recovery folder) saves with: the
        image's own user status if it has one (done stays done), else IN_PROGRESS: an edit the
        user never marked done is not training data."""
        try:
            current = self.record(stem).status
        except Exception:  # noqa: BLE001 - unknown stem: save_mask reports it
            return ImageStatus.IN_PROGRESS
        return current if current in USER_STATUSES and current != ImageStatus.SKIPPED \
            else ImageStatus.IN_PROGRESS

    def set_status(self, stem: str, status: ImageStatus) -> None:
        """Set a user status (IN_PROGRESS, DONE, SKIPPED) of an image whose mask is on disk, or
        SKIPPED without one. DONE gives the image its fixed role if it has none yet."""
        status = ImageStatus(status)
        if status not in USER_STATUSES:
            raise ProjectError(f"set_status: use save_mask / reset_image for {status.value!r}")
        if status is not ImageStatus.SKIPPED and not self.mask_path(stem).is_file():
            raise ProjectError(f"{self.mask_path(stem)}: no mask, so {stem!r} cannot be "
                               f"{status.value.replace('_', ' ')}")
        with self._txn() as conn:
            if conn.execute("UPDATE images SET status = ?, updated = ? WHERE stem = ?",
                            (status.value, time.time(), stem)).rowcount == 0:
                raise ProjectError(f"{self.root}: no image with stem {stem!r}")
            if status is ImageStatus.DONE:
                self._assign_roles()

    def _assign_roles(self) -> None:
        """Give every DONE image without a role its role (segcore.roles). Call inside a write
        transaction (or it opens one); read-only projects assign in memory only."""
        conn = self._db()
        rows = conn.execute("SELECT stem FROM images WHERE status = 'done' AND role IS NULL"
                            " ORDER BY stem").fetchall()
        if not rows:
            return
        counts = dict(conn.execute("SELECT role, COUNT(*) FROM images WHERE role IS NOT NULL"
                                   " GROUP BY role").fetchall())
        new = roles.assign([r[0] for r in rows], counts.get(ROLE_TRAIN, 0),
                           counts.get(ROLE_HELD_OUT, 0))
        args = [(role, stem) for stem, role in new.items()]
        if conn.in_transaction:
            conn.executemany("UPDATE images SET role = ? WHERE stem = ?", args)
        else:
            with _index.write_txn(conn):
                conn.executemany("UPDATE images SET role = ? WHERE stem = ?", args)

    def use_for_training(self, stem: str) -> None:
        """Move a held-out image into training (the user's explicit choice, recorded in
        ``images.role_note``); the next done image refills the held-out share."""
        record = self.record(stem)
        if record.role != ROLE_HELD_OUT:
            raise ProjectError(f"{stem!r} is not held out (role: {record.role or 'none yet'})")
        note = f"held out, moved to training by the user at {time.strftime('%Y-%m-%d %H:%M:%S')}"
        self._update_image(stem, "role = ?, role_note = ?", (ROLE_TRAIN, note))

    def role_note(self, stem: str) -> str | None:
        rows = self._query("SELECT role_note FROM images WHERE stem = ?", (stem,))
        return rows[0][0] if rows else None

    def delete_mask(self, stem: str) -> None:
        """Remove the mask; the image goes back to PREDICTED or UNLABELLED (role kept)."""
        self._writable()
        self.record(stem)
        try:
            self.mask_path(stem).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise MaskWriteError(f"{self.mask_path(stem)}: cannot delete "
                                 f"({os_error_reason(exc)})") from exc
        has_prediction = self.prediction_path(stem).is_file()
        status = ImageStatus.PREDICTED if has_prediction else ImageStatus.UNLABELLED
        self._update_image(stem, "status = ?, updated = ?, iou = NULL, biou = NULL",
                           (status.value, time.time()))

    @property
    def backup_dir(self) -> Path:
        return self.state_dir / "backup"

    def reset_image(self, stem: str) -> Path | None:
        """Return an image to not labelled: its mask is moved to ``.segloop/backup/`` (returned;
        None if there was no mask), the status becomes PREDICTED or UNLABELLED as for
        delete_mask. The held-out role, once given, stays."""
        self._writable()
        self.record(stem)
        src = self.mask_path(stem)
        backup = None
        if src.is_file():
            backup = self.backup_dir / f"{stem}.{time.strftime('%Y%m%d-%H%M%S')}.{time.time_ns() % 10**6:06d}.png"
            try:
                self.backup_dir.mkdir(exist_ok=True)
                os.replace(src, backup)
            except OSError as exc:
                raise MaskWriteError(f"{src}: cannot move to {self.backup_dir} "
                                     f"({os_error_reason(exc)}); the mask is unchanged") from exc
        self.delete_mask(stem)
        return backup

    def save_prediction(self, stem: str, mask: np.ndarray, uncertainty: float,
                        model_version: int | None) -> None:
        """Store the latest prediction (PNG under .segloop/predictions) and its uncertainty.

        The status becomes PREDICTED unless the user set one (in progress, done, skipped); a
        previous error is cleared."""
        self._writable()
        self.record(stem)
        io.write_mask(self.prediction_path(stem), mask, self.num_classes,
                      [c.color for c in self.classes])
        self._update_image(
            stem, f"status = CASE WHEN status IN {_USER_SQL} THEN status ELSE 'predicted' END, "
                  "uncertainty = ?, model_version = ?, error = NULL, updated = ?",
            (_opt_float(uncertainty), model_version, time.time()))

    def set_image_metrics(self, stem: str, iou: float | None, biou: float | None) -> None:
        """Scores of the corrected mask against the active model's prediction (None = unknown)."""
        self._update_image(stem, "iou = ?, biou = ?", (_opt_float(iou), _opt_float(biou)))

    def set_error(self, stem: str, message: str | None) -> None:
        """Record that an image failed (status ERROR unless a user status); None clears it."""
        if message is None:
            restore = "CASE WHEN uncertainty IS NULL THEN 'unlabelled' ELSE 'predicted' END"
            self._update_image(stem, f"error = NULL, status = CASE WHEN status = 'error' THEN "
                                     f"{restore} ELSE status END", ())
        else:
            self._update_image(stem, f"error = ?, updated = ?, status = CASE WHEN status IN "
                                     f"{_USER_SQL} THEN status ELSE 'error' END",
                               (str(message), time.time()))

    def done_stems(self) -> list[str]:
        """The training data: images whose status is DONE, sorted."""
        return [r[0] for r in self._query(
            "SELECT stem FROM images WHERE status = 'done' ORDER BY stem")]

    corrected_stems = done_stems  # the old name (before image statuses): the same definition

    def training_split(self) -> tuple[list[str], list[str]]:
        """(train stems, held-out stems) among the DONE images, by their fixed roles."""
        rows = self._query("SELECT stem, role FROM images WHERE status = 'done' ORDER BY stem")
        held = [s for s, role in rows if role == ROLE_HELD_OUT]
        return [s for s, role in rows if role != ROLE_HELD_OUT], held

    def held_out_stems(self) -> list[str]:
        """Every image whose role is held out (done or not), sorted."""
        return [r[0] for r in self._query(
            "SELECT stem FROM images WHERE role = ? ORDER BY stem", (ROLE_HELD_OUT,))]

    def attention_order(self) -> list[str]:
        """Stems in suggested order: predicted (uncertain first, spread over the data by
        segcore.attention.spread), never predicted (in the stored cold-start order of
        segcore.selection, then by name), in progress, failed (ERROR), then skipped and done."""
        from . import attention
        rank = {s: i for i, s in enumerate(self.get_setting(COLD_START_KEY) or [])}
        rows = self._query("SELECT stem, status, uncertainty FROM images")

        def key(row: tuple) -> tuple:
            stem, status, uncertainty = row
            group = (4 if status in ("done", "skipped") else 3 if status == "error"
                     else 2 if status == "in_progress" else 1 if uncertainty is None else 0)
            by_uncertainty = -float(uncertainty) if uncertainty is not None else float("inf")  # NULLs last
            return (group, by_uncertainty, rank.get(stem, len(rank)) if group == 1 else 0, stem)

        ordered = sorted(rows, key=key)
        predicted = [(r[0], float(r[2])) for r in ordered if key(r)[0] == 0]
        if len(predicted) < 2:
            return [r[0] for r in ordered]
        corrected = [r[0] for r in rows if r[1] in ("done", "in_progress")]
        spread = attention.spread(predicted, corrected, attention.load_embeddings(self.state_dir))
        return spread + [r[0] for r in ordered[len(predicted):]]

    # ------------------------------------------------------------------ settings, classes
    def get_setting(self, key: str, default: Any = None) -> Any:
        rows = self._query("SELECT value FROM settings WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def set_setting(self, key: str, value: Any) -> None:
        try:
            text = json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ProjectError(f"setting {key!r}: value is not JSON-serialisable ({exc})") from exc
        self._write("INSERT INTO settings (key, value) VALUES (?, ?)"
                    " ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, text))

    @property
    def classes(self) -> list[ClassInfo]:
        """Class names/colours; index in the list = class index. Default: background/foreground."""
        rows = self._query("SELECT name, r, g, b FROM classes ORDER BY idx")
        if not rows:
            return [ClassInfo(c.name, c.color) for c in DEFAULT_CLASSES]
        return [ClassInfo(n, (r, g, b)) for n, r, g, b in rows]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def set_classes(self, classes: list[ClassInfo]) -> None:
        """Replace the class list (2..256 entries, index 0 = background)."""
        self._writable()
        items = [c if isinstance(c, ClassInfo) else ClassInfo(*c) for c in classes]
        if not 2 <= len(items) <= 256:
            raise ProjectError(f"a project needs 2..256 classes, got {len(items)}")
        rows = []
        for i, c in enumerate(items):
            color = tuple(int(v) for v in c.color)
            if len(color) != 3 or not all(0 <= v <= 255 for v in color) or not str(c.name).strip():
                raise ProjectError(f"class {i}: needs a name and an RGB colour 0..255, got {c!r}")
            rows.append((i, str(c.name), *color))
        with self._txn() as conn:
            conn.execute("DELETE FROM classes")
            conn.executemany("INSERT INTO classes (idx, name, r, g, b)"
                             " VALUES (?, ?, ?, ?, ?)", rows)

    # ------------------------------------------------------------------ model versions, epoch log
    @property
    def models(self) -> ModelStore:
        """The project's model versions (segcore.versions.ModelStore: the one API for them)."""
        from segcore.versions import ModelStore
        return ModelStore(self)

    def log_epoch(self, version_id: int | None, run_id: str, epoch: int, metrics: dict) -> None:
        self._write("INSERT INTO epochs (version_id, run_id, epoch, created, metrics)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (version_id, run_id, int(epoch), time.time(), json.dumps(metrics)))

    def epoch_history(self, run_id: str) -> list[dict]:
        """Logged epochs of a run, in order: the metrics plus epoch, run_id, version_id, time."""
        rows = self._query("SELECT epoch, version_id, created, metrics FROM epochs"
                           " WHERE run_id = ? ORDER BY epoch, id", (run_id,))
        return [{**json.loads(m), "epoch": e, "run_id": run_id, "version_id": v, "time": t}
                for e, v, t, m in rows]
