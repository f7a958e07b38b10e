"""The SQLite index behind :class:`segcore.project.Project`: schema, connection, disk scan.

The index is a cache of what is on disk plus app state (settings, classes, model versions,
epoch log). The files are the truth: mask files decide which images are labelled (done unless
the index says in progress or skipped), prediction PNGs under ``.segloop/predictions`` decide
which are predicted, so a deleted index is rebuilt.

Stem rule: an image's stem is its file name without the last suffix (``cat.01.jpg`` ->
``cat.01``). When several image files share that stem (``a.png`` and ``a.jpg``), the one the
index already knows keeps it (on a fresh index: the name that sorts first), and each other one
uses its full file name as stem (``a.png`` -> mask ``masks/a.png.png``). Hidden files (starting
with ``.``, which includes SegLoop's temp files) and non-image suffixes are ignored.

A file whose name is not valid UTF-8 cannot be stored in SQLite as text: it is listed under its
:func:`segcore.io.display_name` (``bad\\xff.png``) with status ``error`` and the reason
``NON_UTF8_NAME``; ``DiskState.real_names`` maps that name back to the real one. A folder that
exists but cannot be listed (no read permission) raises OSError: an empty listing would make
every corrected image look unlabelled.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from segcore._atomic import os_error_reason
from segcore.io import NON_UTF8_NAME, display_name, is_image_name, is_utf8_name

SCHEMA_VERSION = 2  # 2: image lifecycle statuses + fixed held-out roles (_migrate_v2)
BUSY_TIMEOUT_MS = 15_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    stem TEXT PRIMARY KEY,
    filename TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'unlabelled',
    updated REAL,
    mtime_ns INTEGER,
    uncertainty REAL,
    iou REAL,
    biou REAL,
    error TEXT,
    model_version INTEGER,
    role TEXT,
    role_note TEXT
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS classes (
    idx INTEGER PRIMARY KEY, name TEXT NOT NULL, r INTEGER NOT NULL, g INTEGER NOT NULL,
    b INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS model_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    parent INTEGER,
    created REAL NOT NULL,
    arch TEXT NOT NULL,
    file TEXT NOT NULL,
    metrics TEXT NOT NULL DEFAULT '{}',
    meta TEXT NOT NULL DEFAULT '{}',
    active INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS epochs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    version_id INTEGER,
    run_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    created REAL NOT NULL,
    metrics TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS epochs_run ON epochs(run_id, epoch);
CREATE INDEX IF NOT EXISTS images_status ON images(status, uncertainty);
"""

_CORRUPT_CODES = {getattr(sqlite3, "SQLITE_CORRUPT", 11), getattr(sqlite3, "SQLITE_NOTADB", 26)}
_BUSY_CODES = {getattr(sqlite3, "SQLITE_BUSY", 5), getattr(sqlite3, "SQLITE_LOCKED", 6)}


class CorruptIndexError(Exception):
    """Internal: the index file is damaged (not a database, failed integrity check)."""


class NewerSchemaError(Exception):
    """Internal: the index was written by a newer SegLoop (higher schema version)."""


def _primary_code_in(exc: sqlite3.Error, codes: set[int], words: tuple[str, ...]) -> bool:
    """Whether ``exc``'s primary result code is in ``codes`` (by message on old Pythons)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in codes
    text = str(exc).lower()
    return any(w in text for w in words)


def is_corruption(exc: sqlite3.Error) -> bool:
    """True for 'file is not a database' / 'database disk image is malformed'."""
    return _primary_code_in(exc, _CORRUPT_CODES, ("not a database", "malformed"))


def _is_busy(exc: sqlite3.Error) -> bool:
    return _primary_code_in(exc, _BUSY_CODES, ("locked", "busy"))


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL (a persistent property of the file).

    SQLite does not call the busy handler for the journal-mode change, so when two processes
    create the same fresh index at once one of them gets 'database is locked' at once (7-13 in
    900 opens by three processes). Retry until the busy timeout instead."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def connect(db_path: Path | str) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the index; raise CorruptIndexError if damaged."""
    conn = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT_MS / 1000,
                           isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if str(db_path) != ":memory:":
            _use_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            check = conn.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                raise CorruptIndexError(f"integrity check failed: {check}")
        migrate(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if isinstance(exc, sqlite3.DatabaseError) and is_corruption(exc):
            raise CorruptIndexError(str(exc)) from exc
        raise
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    """Create the tables (idempotent) and stamp ``PRAGMA user_version``."""
    with write_txn(conn):
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise NewerSchemaError(f"index schema {version} is newer than this SegLoop's "
                                   f"({SCHEMA_VERSION})")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        if version < 2:
            _migrate_v2(conn)
        if version < SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


# ---- schema 2 (image status lifecycle, fixed held-out roles) ----------------------------
USER_STATUSES = ("in_progress", "done", "skipped")  # kept by reconcile while the mask exists


def _migrate_v2(conn: sqlite3.Connection) -> None:
    """Schema 1 -> 2: ``images.role`` / ``images.role_note`` columns; 'corrected' becomes 'done'.

    Roles of the migrated done images are assigned by ``Project`` on open (segcore.roles: the
    old hash rule, so existing versions keep the held-out images they were scored on)."""
    cols = {row[1] for row in conn.execute("PRAGMA table_info(images)")}
    for col in ("role", "role_note"):
        if col not in cols:
            conn.execute(f"ALTER TABLE images ADD COLUMN {col} TEXT")
    conn.execute("UPDATE images SET status = 'done' WHERE status = 'corrected'")


class write_txn:  # noqa: N801 - used like a function: ``with write_txn(conn): ...``
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rollback on error).

    IMMEDIATE takes the write lock up front, so two processes wait on the busy timeout
    instead of failing with 'database is locked' when a read transaction tries to upgrade.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass


def copy_into_memory(db_path: Path) -> sqlite3.Connection | None:
    """Best effort: a writable in-memory copy of a (read-only) index, or None."""
    if not db_path.is_file():
        return None
    try:
        uri = db_path.resolve().as_uri() + "?mode=ro&immutable=1"
        src = sqlite3.connect(uri, uri=True, timeout=1.0)
        try:
            mem = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            src.backup(mem)
        finally:
            src.close()
        migrate(mem)
        return mem
    except (sqlite3.Error, OSError, NewerSchemaError, ValueError):
        return None


# --------------------------------------------------------------------------- disk scan
@dataclass
class DiskState:
    """What a scan of the folder found: image name -> mtime_ns, stems with masks/predictions."""

    images: dict[str, int]
    masks: dict[str, float]  # stem -> mask mtime (seconds)
    predictions: set[str]
    real_names: dict[str, str] = field(default_factory=dict)  # display name -> undecodable name


def bad_name_error(display: str) -> str:
    """The per-image error recorded for an image whose file name is not valid UTF-8."""
    return f"{display}: {NON_UTF8_NAME}; rename the file to use it in SegLoop"


def _scan_dir(folder: Path) -> dict[str, os.DirEntry[str]]:
    """Visible entries of ``folder``; {} if it does not exist. Other OSErrors propagate."""
    try:
        with os.scandir(folder) as it:
            return {e.name: e for e in it if not e.name.startswith(".")}
    except (FileNotFoundError, NotADirectoryError):
        return {}


def scan(root: Path, masks_dir: Path, predictions_dir: Path) -> DiskState:
    """Names and mtimes only (``os.scandir`` + stat); never opens an image file."""
    images: dict[str, int] = {}
    real_names: dict[str, str] = {}
    for name, entry in _scan_dir(root).items():
        if not is_image_name(name):
            continue
        try:
            if not entry.is_file():
                continue
            mtime = entry.stat().st_mtime_ns
        except OSError:
            continue
        if not is_utf8_name(name):
            shown = display_name(name)
            if shown in images or shown in real_names:
                continue  # a file really has that name; the undecodable one is not listed
            real_names[shown], name = name, shown
        images[name] = mtime
    _drop_mask_files(images)
    masks: dict[str, float] = {}
    for name, entry in _scan_dir(masks_dir).items():
        if name.lower().endswith(".png"):
            try:
                if entry.is_file():
                    masks[name[:-4]] = entry.stat().st_mtime
            except OSError:
                continue
    preds = {n[:-4] for n in _scan_dir(predictions_dir) if n.lower().endswith(".png")}
    return DiskState(images, masks, preds, real_names)


MASK_NAME_SUFFIXES = ("_mask", "_label", "_labels", "_gt")  # segcore.mask_import's names


def _drop_mask_files(images: dict[str, int]) -> None:
    """``a_mask.png`` beside ``a.jpg`` is a mask to import (segcore.mask_import), not an image."""
    bases = {os.path.splitext(n)[0] for n in images}
    for name in list(images):
        base = os.path.splitext(name)[0]
        for suffix in MASK_NAME_SUFFIXES:
            if base.lower().endswith(suffix) and base[: -len(suffix)] in bases:
                del images[name]
                break


def assign_stems(new_names: list[str], taken: set[str]) -> dict[str, str]:
    """Stems for newly found files, following the module's stem rule. Updates ``taken``."""
    out: dict[str, str] = {}
    for name in sorted(new_names):
        stem = os.path.splitext(name)[0]
        if stem in taken:
            stem = name
            n = 2
            while stem in taken:
                stem = f"{name}~{n}"
                n += 1
        taken.add(stem)
        out[name] = stem
    return out


def reconcile(conn: sqlite3.Connection, disk: DiskState,
              stale_prediction: list[str] | None = None) -> None:
    """Bring the ``images`` table in line with ``disk`` in one write transaction.

    Vanished files are dropped, new ones added, statuses fixed: a mask on disk keeps a user
    status (in progress, done, skipped) and otherwise means done (a mask without index info is
    a finished label); in progress / done without a mask -> predicted (prediction file present)
    or unlabelled; a changed
    image file (new mtime) loses its prediction and error. Stems of stale predictions are
    appended to ``stale_prediction`` so the caller can delete the files.
    """
    now = time.time()
    with write_txn(conn):
        rows = conn.execute("SELECT stem, filename, status, mtime_ns, uncertainty, error,"
                            " model_version FROM images").fetchall()
        vanished = [(r[0],) for r in rows if r[1] not in disk.images]
        conn.executemany("DELETE FROM images WHERE stem = ?", vanished)
        known = {r[1]: r for r in rows if r[1] in disk.images}
        taken = {r[0] for r in known.values()}
        new = assign_stems([n for n in disk.images if n not in known], taken)
        inserts = []
        for name, stem in new.items():
            status, updated = _fresh_status(stem, disk)
            error = None
            if name in disk.real_names:
                status, updated, error = "error", now, bad_name_error(name)
            inserts.append((stem, name, status, updated, disk.images[name], error))
        conn.executemany("INSERT INTO images (stem, filename, status, updated, mtime_ns, error)"
                         " VALUES (?, ?, ?, ?, ?, ?)", inserts)
        updates = []
        for name, (stem, _, status, mtime_ns, unc, err, ver) in known.items():
            changed = mtime_ns != disk.images[name]
            if changed and stem in disk.predictions and stale_prediction is not None:
                stale_prediction.append(stem)
            has_pred = stem in disk.predictions and not changed
            new_status = status
            if stem in disk.masks:
                new_status = status if status in USER_STATUSES else "done"
            elif changed or status in ("in_progress", "done") or (status == "predicted" and not has_pred):
                new_status = "predicted" if has_pred else "unlabelled"
            elif status == "unlabelled" and has_pred:
                new_status = "predicted"
            new_unc = unc if has_pred else None
            new_ver = ver if has_pred else None
            new_err = None if changed else err
            if name in disk.real_names:
                new_status, new_err = "error", bad_name_error(name)
            if (new_status, new_unc, new_ver, new_err, changed) != (status, unc, ver, err, False):
                updated = disk.masks.get(stem, now) if new_status == "done" else now
                updates.append((new_status, new_unc, new_ver, new_err, disk.images[name],
                                updated, stem))
        conn.executemany("UPDATE images SET status = ?, uncertainty = ?, model_version = ?,"
                         " error = ?, mtime_ns = ?, updated = ? WHERE stem = ?", updates)


def _fresh_status(stem: str, disk: DiskState) -> tuple[str, float | None]:
    if stem in disk.masks:
        return "done", disk.masks[stem]
    if stem in disk.predictions:
        return "predicted", None
    return "unlabelled", None


def open_index(db_path: Path) -> tuple[sqlite3.Connection | None, str | None]:
    """Open the on-disk index; a corrupt file is moved aside and rebuilt.

    Returns (connection, None) or (None, reason to open read-only)."""
    for _attempt in range(2):
        try:
            return connect(db_path), None
        except CorruptIndexError as exc:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            try:
                for suffix in ("", "-wal", "-shm"):
                    side = Path(f"{db_path}{suffix}")
                    if side.exists():
                        os.replace(side, Path(f"{db_path}.corrupt-{stamp}{suffix}"))
            except OSError as move_exc:
                return None, (f"the index {db_path} is damaged ({exc}) and cannot be moved "
                              f"aside ({os_error_reason(move_exc)})")
        except NewerSchemaError as exc:
            return None, f"{db_path} was written by a newer SegLoop ({exc})"
        except sqlite3.Error as exc:
            return None, f"the index {db_path} cannot be opened ({exc})"
    return None, f"the index {db_path} is still damaged after rebuilding"
