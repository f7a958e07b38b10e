"""The ``model_versions`` table of a project index (SQL only; private).

segcore.versions.ModelStore (``project.models``) is the public API of model versions: it runs
these functions on the project's connection inside ``Project._reading()`` / ``Project._txn()``
(lock held; sqlite errors become ProjectError) and owns the files and ``models/ACTIVE``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Callable

from ._records import ModelVersion

# (file, parent_file, arch, metrics, meta) of a checkpoint found in models_dir
Entry = tuple[str, "str | None", str, dict, dict]


def _version(row: tuple) -> ModelVersion:
    return ModelVersion(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]),
                        json.loads(row[6]), bool(row[7]))


def all_versions(conn: sqlite3.Connection) -> list[ModelVersion]:
    """All versions, oldest first."""
    return [_version(r) for r in conn.execute("SELECT * FROM model_versions ORDER BY id").fetchall()]


def version(conn: sqlite3.Connection, version_id: int) -> ModelVersion | None:
    row = conn.execute("SELECT * FROM model_versions WHERE id = ?", (version_id,)).fetchone()
    return _version(row) if row else None


def active_version(conn: sqlite3.Connection) -> ModelVersion | None:
    row = conn.execute("SELECT * FROM model_versions WHERE active = 1 ORDER BY id DESC LIMIT 1").fetchone()
    return _version(row) if row else None


def register(conn: sqlite3.Connection, parent: int | None, arch: str, file: str,
             metrics: dict, meta: dict, update: bool) -> int:
    """The id of ``file``'s row: inserted, or the existing one (given these values if ``update``)."""
    row = conn.execute("SELECT id FROM model_versions WHERE file = ? ORDER BY id LIMIT 1",
                       (file,)).fetchone()
    values = (parent, arch, json.dumps(metrics or {}), json.dumps(meta or {}))
    if row is not None:
        if update:
            conn.execute("UPDATE model_versions SET parent = ?, arch = ?, metrics = ?, meta = ?"
                         " WHERE id = ?", (*values, row[0]))
        return int(row[0])
    cur = conn.execute("INSERT INTO model_versions (parent, arch, metrics, meta, created, file)"
                       " VALUES (?, ?, ?, ?, ?, ?)", (*values, time.time(), file))
    assert cur.lastrowid is not None  # an INSERT always sets it
    return int(cur.lastrowid)


def register_files(conn: sqlite3.Connection, entries: list[Entry],
                   recorded_active: Callable[[], str | None]) -> list[int]:
    """Register entries (oldest first) not yet registered, parents linked by file name. If then no
    version is active: the one ``recorded_active()`` names ("" = none; None = unknown → the last
    entry). Returns the ids of the entries. Call inside one write transaction."""
    ids: dict[str, int] = {f: i for i, f in conn.execute(
        "SELECT id, file FROM model_versions ORDER BY id DESC")}
    out = []
    for file, parent_file, arch, metrics, meta in entries:
        if file not in ids:
            parent = ids.get(parent_file) if parent_file else None
            ids[file] = register(conn, parent, arch, file, metrics, meta, update=False)
        out.append(ids[file])
    if out and conn.execute("SELECT 1 FROM model_versions WHERE active = 1").fetchone() is None:
        recorded = recorded_active()
        active = out[-1] if recorded is None else ids.get(recorded) if recorded else None
        set_active(conn, active)
    return out


def set_active(conn: sqlite3.Connection, version_id: int | None) -> None:
    """``version_id`` the only active row (None: none)."""
    conn.execute("UPDATE model_versions SET active = (id IS ?)", (version_id,))


def merge_metrics(conn: sqlite3.Connection, version_id: int, metrics: dict) -> bool:
    """Merge ``metrics`` into the row's (existing keys overwritten); False if there is no such row."""
    rows = conn.execute("SELECT metrics FROM model_versions WHERE id = ?", (version_id,)).fetchall()
    if not rows:
        return False
    merged = {**json.loads(rows[0][0]), **metrics}
    conn.execute("UPDATE model_versions SET metrics = ? WHERE id = ?", (json.dumps(merged), version_id))
    return True
