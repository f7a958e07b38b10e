"""Atomic file writes (re-exported by :mod:`segcore.io`) and readable OS error reasons.

The temp file of a write lives beside its target (``.<name>.<8 hex>.tmp``) and is held with an
exclusive ``flock`` while it is written. A process killed mid-write leaves it behind, unlocked:
:func:`remove_stale_temps` (called by ``Project.open`` on the project's folders) deletes such
files and leaves the temp file of a write still in progress (locked) alone.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import time
from pathlib import Path
from typing import IO, Callable

from segcore.errors import MaskWriteError, SegLoopError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; stale temps are removed by age
    fcntl = None  # type: ignore[assignment]

PathLike = str | os.PathLike[str]

TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")
#: Without flock (Windows) a temp file is taken as stale only once it is this old.
STALE_AGE_S = 3600.0


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], object],
                 error: type[SegLoopError] | None = MaskWriteError) -> None:
    """THE atomic write: readers of ``path`` see the old file or the new one, never a mix.

    A dot-prefixed temp file (``.<name>.<random>.tmp``, flock-ed while written) is created in
    the same folder, ``write(fh)`` fills it (a binary file object), it is flushed and fsynced,
    then renamed over ``path`` with ``os.replace``; the folder is fsynced afterwards where the
    platform allows. On any exception the temp file is removed and ``error`` (default
    MaskWriteError) is raised with the file name and the reason; ``error=None`` lets the
    original exception through.
    """
    p = Path(path)
    for attempt in range(2):
        tmp = p.parent / f".{p.name[:120]}.{secrets.token_hex(4)}.tmp"
        try:
            if p.is_dir():
                raise (error or IsADirectoryError)(f"{p}: cannot write, a folder of that name exists")
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            fd = os.open(tmp, flags, 0o666)
            with os.fdopen(fd, "wb") as fh:
                _lock(fh.fileno())  # "being written": not stale
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
                try:
                    os.replace(tmp, p)  # while the lock is held
                except FileNotFoundError:
                    # removed as stale between our create and lock (remove_stale_temps in
                    # another process); write again under a new name, once
                    if attempt == 0 and p.parent.is_dir() and not os.path.lexists(tmp):
                        continue
                    raise
            break
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if error is None or isinstance(exc, SegLoopError):
                raise
            if isinstance(exc, Exception):
                raise error(f"{p}: cannot write ({os_error_reason(exc)}); the previous file, "
                            f"if any, is unchanged") from exc
            raise
    _fsync_dir(p.parent)


def atomic_write_bytes(path: PathLike, data: bytes,
                       error: type[SegLoopError] = MaskWriteError) -> None:
    """:func:`atomic_write` of ``data`` (bytes-like; anything else raises ``error``)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise error(f"{Path(path)}: data to write must be bytes, got {type(data).__name__}")
    atomic_write(path, lambda fh: fh.write(data), error)


def _lock(fd: int) -> None:
    """Best effort: a file system without flock (some network mounts) still gets the write;
    its temp files then also refuse the cleaner's lock and are kept."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass


def is_temp_name(name: str) -> bool:
    """``name`` is a temp file of :func:`atomic_write` (never a mask or an image)."""
    return bool(TEMP_NAME.match(name))


def remove_stale_temps(folder: PathLike) -> list[str]:
    """Delete the temp files a killed write left in ``folder``; returns their names.

    A temp file is stale when nobody holds its flock (its writer is gone); one being written
    right now is kept. Without flock (Windows) only temps older than STALE_AGE_S go. Errors
    (a folder that cannot be listed or written) are ignored: the files are harmless, only
    clutter, and are never read as masks."""
    removed: list[str] = []
    try:
        with os.scandir(folder) as it:
            names = [e.name for e in it if is_temp_name(e.name)]
    except OSError:
        return removed
    for name in names:
        path = os.path.join(folder, name)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live writer holds it
            elif time.time() - os.fstat(fd).st_mtime < STALE_AGE_S:
                continue
            if os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False)):
                os.unlink(path)
                removed.append(name)
        except OSError:
            continue
        finally:
            os.close(fd)
    return removed


def _fsync_dir(folder: Path) -> None:
    """Persist a rename on POSIX (best effort; not possible on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_ERRNO_REASONS = {
    errno.ENOSPC: "no space left on the disk",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOENT: "the folder does not exist",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder",
    errno.ENAMETOOLONG: "file name too long",
    getattr(errno, "EDQUOT", -1): "disk quota exceeded",
}


def os_error_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        if exc.errno in _ERRNO_REASONS:
            return _ERRNO_REASONS[exc.errno]
        if exc.strerror:
            return exc.strerror
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
