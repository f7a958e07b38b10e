"""Stroke journal, the read side: record format, parsing and replay (no threads, no Qt).

The format (see :mod:`segcore.journal` for the writer): ``b"SLJ1" | u32 header length | u32
body length | u32 crc32(header + body) | header (JSON) | body (zlib of the rectangle's uint8
pixels after the edit)``. A torn or corrupt record ends a file.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from segcore._atomic import os_error_reason

try:  # POSIX; elsewhere journals are not locked (one app instance per project assumed)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

MAGIC = b"SLJ1"
_HEAD = struct.Struct("<4sIII")
SUFFIX = ".sjl"
ZLEVEL = 1

Rect4 = tuple[int, int, int, int]


def encode(kind: str, stem: str, seq: int, t_ns: int, shape: tuple[int, int], rect: Rect4,
           pixels: np.ndarray, base: list[int] | None) -> bytes:
    pix = np.ascontiguousarray(pixels, dtype=np.uint8)
    x0, y0, x1, y1 = (int(v) for v in rect)
    if pix.shape != (y1 - y0, x1 - x0):
        raise ValueError(f"pixels {pix.shape} do not fit rect {rect}")
    header = json.dumps({"k": kind, "stem": stem, "seq": int(seq), "t": int(t_ns),
                         "shape": [int(shape[0]), int(shape[1])], "rect": [x0, y0, x1, y1],
                         "base": base}).encode("utf-8", "surrogateescape")
    body = zlib.compress(memoryview(pix).cast("B"), ZLEVEL)
    return _HEAD.pack(MAGIC, len(header), len(body), zlib.crc32(body, zlib.crc32(header))) + header + body


@dataclass
class Record:
    kind: str
    stem: str
    seq: int
    t_ns: int
    shape: tuple[int, int]
    rect: Rect4
    base: list[int] | None
    body: bytes = field(repr=False)

    def pixels(self) -> np.ndarray:
        x0, y0, x1, y1 = self.rect
        return np.frombuffer(zlib.decompress(self.body), np.uint8).reshape(y1 - y0, x1 - x0)


def parse(data: bytes) -> list[Record]:
    """Every intact record of ``data``, stopping at the first torn or corrupt one."""
    out: list[Record] = []
    pos = 0
    while pos + _HEAD.size <= len(data):
        magic, hlen, blen, crc = _HEAD.unpack_from(data, pos)
        start = pos + _HEAD.size
        end = start + hlen + blen
        if magic != MAGIC or end > len(data):
            break
        header, body = data[start:start + hlen], data[start + hlen:end]
        if zlib.crc32(body, zlib.crc32(header)) != crc:
            break
        try:
            h = json.loads(header.decode("utf-8", "surrogateescape"))
            out.append(Record(h["k"], h["stem"], int(h["seq"]), int(h["t"]), tuple(h["shape"]),
                              tuple(h["rect"]), h.get("base"), body))
        except (ValueError, KeyError, TypeError):
            break
        pos = end
    return out


def file_stat(path: Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [int(st.st_mtime_ns), int(st.st_size)]


# ---------------------------------------------------------------------------- replay
def apply_records(records: list[Record], disk: Callable[[], np.ndarray | None]) -> np.ndarray:
    """The mask after ``records`` (one stem, in order), starting from the last snap or, when
    the chain starts with a patch, from ``disk()`` (zeros if there is no mask file)."""
    start = 0
    for i, r in enumerate(records):
        if r.kind == "snap":
            start = i
    h, w = records[start].shape
    if records[start].kind == "snap":
        mask = records[start].pixels().copy()
        start += 1
    else:
        base = disk()
        mask = np.zeros((h, w), np.uint8) if base is None or base.shape != (h, w) else base.copy()
    for r in records[start:]:
        if tuple(r.shape) != (h, w):
            continue
        x0, y0, x1, y1 = r.rect
        mask[y0:y1, x0:x1] = r.pixels()
    return mask


@dataclass
class Replay:
    """What a stem's leftover journal records amount to."""

    stem: str
    mask: np.ndarray
    newest_ns: int
    conflict: bool  # the mask file was changed after the journal by something else


def leftover_files(dirs: Iterable[Path]) -> list[Path]:
    """Journal files in ``dirs`` no running session holds (oldest first)."""
    out = []
    for d in dirs:
        try:
            names = sorted(Path(d).glob(f"*{SUFFIX}"))
        except OSError:
            continue
        for path in names:
            if fcntl is not None:
                try:
                    fd = os.open(path, os.O_RDONLY)
                except OSError:
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live session's journal
                finally:
                    os.close(fd)
            out.append(path)
    return sorted(out, key=lambda p: (p.stat().st_mtime_ns, p.name))


def replay_plan(files: list[Path], mask_path: Callable[[str], Path],
                read_mask: Callable[[Path], np.ndarray]) -> list[Replay]:
    """Per stem, the mask its journal records give, where that differs from the mask file.

    A stem is a *conflict* when its mask file's stat is none the journal recorded and the file
    is newer than the stem's last record by more than 2 s (written later by something else):
    the caller must not overwrite it blindly.
    """
    by_stem: dict[str, list[Record]] = {}
    for path in files:
        try:
            records = parse(path.read_bytes())
        except OSError as exc:
            log.warning("journal %s unreadable: %s", path, os_error_reason(exc))
            continue
        for r in records:
            by_stem.setdefault(r.stem, []).append(r)
    out = []
    for stem, records in by_stem.items():
        path = mask_path(stem)

        def disk(p: Path = path) -> np.ndarray | None:
            try:
                return read_mask(p) if p.is_file() else None
            except Exception:  # noqa: BLE001 - an unreadable mask is replaced by the journal
                return None

        mask = apply_records(records, disk)
        current = disk()
        if current is not None and current.shape == mask.shape and np.array_equal(current, mask):
            continue
        stat = file_stat(path)
        newest = max(r.t_ns for r in records)
        known = {tuple(r.base) for r in records if r.base} | {None}
        conflict = (stat is not None and tuple(stat) not in known
                    and stat[0] > newest + 2_000_000_000)
        out.append(Replay(stem, mask, newest, conflict))
    return out


def remove_files(files: Iterable[Path]) -> None:
    for path in files:
        try:
            os.unlink(path)
        except OSError:
            pass

