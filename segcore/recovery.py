"""Recovery folder: unsaved masks kept outside the project when ``masks/`` cannot be written.

Layout (``base`` is the app's data folder, e.g. ``~/.local/share/SegLoop``)::

    <base>/recovery/<project key>/recovery.json   {"project": "/path/to/folder", "saved": ISO
                                                   time, "reason": "...", "masks": {stem: file}}
    <base>/recovery/<project key>/<stem>.png      the mask's class indices as an 8-bit PNG
    <base>/recovery/<project key>/journal/        the stroke journal when .segloop/ is unwritable

The project key is a hash of the project's absolute path. The PNGs hold the raw class indices
(0/1 for a binary project, so they look black in a viewer); :meth:`RecoveryStore.load` reads
them back exactly. A copy is removed only after it was restored (or the user discarded it).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np

from segcore._atomic import atomic_write_bytes, os_error_reason
from segcore.errors import MaskReadError, MaskWriteError

INFO = "recovery.json"


def project_key(root: str | os.PathLike[str]) -> str:
    return hashlib.sha1(os.fsencode(str(Path(root).resolve()))).hexdigest()[:16]


class RecoveryStore:
    """The recovery folder of one project (created on first save)."""

    def __init__(self, base: str | os.PathLike[str], root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.folder = Path(base) / "recovery" / project_key(self.root)
        self.journal_dir = self.folder / "journal"

    def info(self) -> dict:
        try:
            data = json.loads((self.folder / INFO).read_text("utf-8"))
        except (OSError, ValueError):
            return {"project": str(self.root), "masks": {}}
        if not isinstance(data.get("masks"), dict):
            data["masks"] = {}
        return data

    def entries(self) -> dict[str, Path]:
        """stem -> PNG of every mask waiting to be restored."""
        return {stem: self.folder / name for stem, name in self.info()["masks"].items()
                if (self.folder / name).is_file()}

    def save(self, masks: dict[str, np.ndarray], reason: str) -> list[Path]:
        """Write ``masks`` (stem -> HxW uint8) here. Raises MaskWriteError naming the folder."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MaskWriteError(f"{self.folder}: cannot create the recovery folder "
                                 f"({os_error_reason(exc)})") from exc
        info = self.info()
        written = []
        for stem, mask in masks.items():
            ok, buf = cv2.imencode(".png", np.ascontiguousarray(mask, dtype=np.uint8))
            if not ok:
                raise MaskWriteError(f"{stem}: cannot encode the mask for recovery")
            name = f"{stem}.png"
            atomic_write_bytes(self.folder / name, buf.tobytes())
            info["masks"][stem] = name
            written.append(self.folder / name)
        info.update(project=str(self.root), reason=reason,
                    saved=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        self._write_info(info)
        return written

    def load(self, stem: str) -> np.ndarray:
        path = self.entries().get(stem)
        if path is None:
            raise MaskReadError(f"{stem}: no recovered mask in {self.folder}")
        data = np.fromfile(path, np.uint8)
        mask = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        if mask is None or mask.ndim != 2:
            raise MaskReadError(f"{path}: not a readable recovered mask")
        return mask.astype(np.uint8)

    def remove(self, stem: str) -> None:
        info = self.info()
        name = info["masks"].pop(stem, None)
        if name is not None:
            try:
                (self.folder / name).unlink()
            except OSError:
                pass
        if info["masks"]:
            self._write_info(info)
        else:
            try:
                (self.folder / INFO).unlink()
            except OSError:
                pass

    def _write_info(self, info: dict) -> None:
        atomic_write_bytes(self.folder / INFO, json.dumps(info, indent=1).encode("utf-8"))


def projects_with_recovery(base: str | os.PathLike[str]) -> list[dict]:
    """recovery.json of every project that has masks waiting (for a start-up notice)."""
    out: list[dict] = []
    try:
        folders = sorted((Path(base) / "recovery").iterdir())
    except OSError:
        return out
    for folder in folders:
        try:
            info = json.loads((folder / INFO).read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if info.get("masks"):
            out.append(info)
    return out
