"""Atomic file writes (re-exported by :mod:`segcore.io`) and readable OS error reasons."""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path
from typing import IO, Callable

from segcore.errors import MaskWriteError, SegLoopError

PathLike = str | os.PathLike[str]


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], object],
                 error: type[SegLoopError] | None = MaskWriteError) -> None:
    """THE atomic write: readers of ``path`` see the old file or the new one, never a mix.

    A dot-prefixed temp file (``.<name>.<random>.tmp``) is created in the same folder,
    ``write(fh)`` fills it (a binary file object), it is flushed and fsynced, then renamed over
    ``path`` with ``os.replace``; the folder is fsynced afterwards where the platform allows. On
    any exception the temp file is removed and ``error`` (default MaskWriteError) is raised with
    the file name and the reason; ``error=None`` lets the original exception through.
    """
    p = Path(path)
    tmp = p.parent / f".{p.name[:120]}.{secrets.token_hex(4)}.tmp"
    try:
        if p.is_dir():
            raise (error or IsADirectoryError)(f"{p}: cannot write, a folder of that name exists")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        fd = os.open(tmp, flags, 0o666)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if error is None or isinstance(exc, SegLoopError):
            raise
        if isinstance(exc, Exception):
            raise error(f"{p}: cannot write ({os_error_reason(exc)}); the previous file, if any, "
                        f"is unchanged") from exc
        raise
    _fsync_dir(p.parent)


def atomic_write_bytes(path: PathLike, data: bytes,
                       error: type[SegLoopError] = MaskWriteError) -> None:
    """:func:`atomic_write` of ``data`` (bytes-like; anything else raises ``error``)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise error(f"{Path(path)}: data to write must be bytes, got {type(data).__name__}")
    atomic_write(path, lambda fh: fh.write(data), error)


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
