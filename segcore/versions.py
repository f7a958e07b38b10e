"""Model checkpoints and the project's model versions.

Checkpoint file (``torch.save`` of a plain dict, loadable with ``torch.load(weights_only=True)``):
    {"format": "segloop-checkpoint", "format_version": 1,
     "state_dict": {name: tensor}, "meta_json": "<JSON text>"}
The metadata is JSON text, so loading never unpickles anything but tensors and plain containers.
Metadata keys written by save_checkpoint: arch, model_config (SegModel.config()), classes,
num_classes, mean, std, created (epoch seconds), torch_version, plus whatever the caller passes
(parent, parent_file, data (stems), metrics, weights_source, train_config...).

Versions: ``<project>/.segloop/models/v0001.pt``, ``v0002.pt``... registered in the project index
(its ``model_versions`` table; SQL in segcore._version_rows). ModelStore (``project.models``) is
the one public API of versions. A sidecar ``v0001.json`` holds the same metadata for fast listing.
File names are allocated atomically: the next free ``vNNNN.pt`` is created with ``O_EXCL``
before the weights are written into it, so two fine-tunes finishing together get two files.
If the index lost its versions (``.segloop/index`` deleted but models/ kept), ModelStore
re-registers them from the files, rebuilding parent links from ``parent_file``, once (a lock per
models folder within a process; one index transaction that skips registered files across
processes), and re-activates the version named in ``models/ACTIVE`` (rewritten atomically with
every activation, so a rollback survives the loss of the index).

Loading refuses, with the file named: a file that is not a zip (torch.save's format), pickled
objects, a foreign dict, weights that do not fit the architecture, and NaN/inf weights.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, TYPE_CHECKING

import torch
from torch import nn

from . import _version_rows as _rows
from ._atomic import atomic_write, atomic_write_bytes
from ._records import ModelVersion
from .errors import CheckpointError, ProjectError

if TYPE_CHECKING:  # the type only: no import cycle at run time
    from .project import Project

ACTIVE_FILE = "ACTIVE"  # in models_dir: the active version's file name ("" = none), outside the index
FORMAT = "segloop-checkpoint"
FORMAT_VERSION = 1
_VERSION_FILE = re.compile(r"^v(\d{4,})\.pt$")
_REBUILD_LOCKS: dict[str, threading.Lock] = {}
_REBUILD_LOCKS_GUARD = threading.Lock()


def _json_safe(meta: dict[str, Any], path: Path) -> str:
    try:
        return json.dumps(meta, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: metadata is not JSON-able ({exc})") from exc


def _atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save through segcore._atomic.atomic_write (the one atomic write)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: torch.save(obj, fh), CheckpointError)


def _atomic_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), CheckpointError)


def model_meta(model: nn.Module) -> dict[str, Any]:
    """The metadata save_checkpoint derives from a SegModel."""
    meta: dict[str, Any] = {
        "arch": getattr(model, "arch", type(model).__name__),
        "model_config": model.config() if hasattr(model, "config") else {},
        "num_classes": int(getattr(model, "num_classes", 2)),
        "mean": list(getattr(model, "mean", (0.485, 0.456, 0.406))),
        "std": list(getattr(model, "std", (0.229, 0.224, 0.225))),
        "torch_version": torch.__version__,
    }
    record = getattr(model, "meta", None)
    if isinstance(record, dict) and record:
        init = record.get("init", record)
        meta["init"] = record
        if isinstance(init, dict) and "weights_source" in init:
            meta["weights_source"] = init["weights_source"]
    return meta


def save_checkpoint(path: str | Path, model: nn.Module, meta: dict[str, Any] | None = None) -> Path:
    """Write model weights + JSON-able metadata atomically (temp file, fsync, os.replace)."""
    path = Path(path)
    _save(path, model, meta)
    return path


def _save(path: Path, model: nn.Module, meta: dict[str, Any] | None) -> dict[str, Any]:
    full = model_meta(model)
    full["created"] = time.time()
    full.update(meta or {})
    full.setdefault("classes", None)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    _atomic_torch_save({"format": FORMAT, "format_version": FORMAT_VERSION,
                        "state_dict": state, "meta_json": _json_safe(full, path)}, path)
    return full


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state_dict, meta) without building a model. torch.load(weights_only=True) only."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    _check_container(path)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt zip, truncated file, pickled objects refused...
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            reason = f"it contains pickled Python objects, which SegLoop refuses to load ({text[:200]})"
        else:
            reason = f"the file is corrupt or truncated ({type(exc).__name__}: {text[:200]})"
        raise CheckpointError(f"{path}: cannot load checkpoint: {reason}") from exc
    if not isinstance(blob, dict) or blob.get("format") != FORMAT or "state_dict" not in blob:
        raise CheckpointError(f"{path}: not a SegLoop checkpoint (missing 'format'/'state_dict' entries)")
    if int(blob.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {blob.get('format_version')} is newer than "
                              f"this SegLoop understands ({FORMAT_VERSION})")
    try:
        meta = json.loads(blob.get("meta_json") or "{}")
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: checkpoint metadata is not valid JSON ({exc})") from exc
    state = blob["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: state_dict is not a mapping of tensors")
    return state, meta


def _check_container(path: Path) -> None:
    """torch.save writes a zip archive; anything else is not a checkpoint SegLoop wrote (and
    torch's legacy-pickle fallback would call random bytes "pickled objects")."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
        is_zip = zipfile.is_zipfile(path)
    except OSError as exc:
        from ._atomic import os_error_reason
        raise CheckpointError(f"{path}: cannot read the checkpoint ({os_error_reason(exc)})") from exc
    if is_zip:
        return
    if head == b"PK\x03\x04":
        raise CheckpointError(f"{path}: cannot load checkpoint: the file is corrupt or truncated "
                              f"(its zip directory is missing)")
    raise CheckpointError(f"{path}: not a SegLoop checkpoint (not a zip/torch file)")


def _check_finite(state: dict[str, torch.Tensor], path: Path) -> None:
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise CheckpointError(f"{path}: weights contain NaN/inf ({bad[0]}{more}); "
                              f"the checkpoint is damaged")


def read_meta(path: str | Path) -> dict[str, Any]:
    """Metadata only: the sidecar JSON when present, else the checkpoint itself."""
    path = Path(path)
    side = path.with_suffix(".json")
    if side.is_file():
        try:
            return json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
    return read_checkpoint(path)[1]


def _build_from_config(config: dict[str, Any], path: Path) -> nn.Module:
    from . import models
    cfg = dict(config)
    name = cfg.pop("name", None) or cfg.pop("arch", None)
    if not name:
        raise CheckpointError(f"{path}: metadata does not name the model architecture")
    try:
        return models.build(name, pretrained=False, **cfg)
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: cannot build architecture {name!r} with {cfg} ({exc})") from exc


def load_checkpoint(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """(SegModel in eval mode, meta). CheckpointError names the file and the reason."""
    path = Path(path)
    state, meta = read_checkpoint(path)
    _check_finite(state, path)
    config = meta.get("model_config") or {"name": meta.get("arch"), "num_classes": meta.get("num_classes", 2)}
    model = _build_from_config(config, path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(f"{path}: weights do not match architecture {meta.get('arch')!r} "
                              f"({' '.join(first[:3])[:300]})") from exc
    model.eval()
    trained_at = (meta.get("train_config") or {}).get("input_size")
    if trained_at:
        model.meta["input_size"] = int(trained_at)  # the Predictor's working size
    preset = meta.get("preset") or (meta.get("init") or {}).get("preset")
    if preset:
        model.meta["preset"] = preset  # what the model sees (segcore.preprocess.Preset)
        model.meta["input_size"] = int(preset.get("input_size") or model.meta.get("input_size") or 320)
    return model, meta


class ModelStore:
    """The model versions of one project: the files in ``project.models_dir`` (``vNNNN.pt``, their
    ``.json`` sidecars, ``ACTIVE``) and their rows in the project index. The one public API of
    versions; ``project.models`` returns one.

    Reads rebuild the rows from the files when the index lost them (``rebuild=False``: the index
    as it is). Writes raise ReadOnlyProjectError in a read-only project."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.dir = Path(project.models_dir)

    # ------------------------------------------------------------ listing
    def versions(self, rebuild: bool = True) -> list[ModelVersion]:
        """All versions, oldest first; re-registered from the files if the index lost them."""
        rows = self._rows()
        if rebuild and not rows and self._files():
            with _rebuild_lock(self.dir):  # single flight: the others wait, then see the rows
                rows = self._rows()
                if not rows:
                    self.rescan()
                    rows = self._rows()
        return rows

    def _rows(self) -> list[ModelVersion]:
        with self.project._reading() as conn:
            return _rows.all_versions(conn)

    def get(self, version_id: int) -> ModelVersion:
        for v in self.versions():
            if v.id == version_id:
                return v
        raise ProjectError(f"{self.dir}: there is no model version {version_id}")

    def active(self, rebuild: bool = True) -> ModelVersion | None:
        """The active version, or None."""
        if rebuild:
            self.versions()
        with self.project._reading() as conn:
            return _rows.active_version(conn)

    def path(self, version_id: int) -> Path:
        return self.dir / self.get(version_id).file

    def _files(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        return sorted(p for p in self.dir.iterdir() if _VERSION_FILE.match(p.name))

    def _recorded_active(self) -> str | None:
        """File name in models/ACTIVE ("" = no active version), None if absent or unreadable."""
        try:
            return (self.dir / ACTIVE_FILE).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None

    def _allocate_file(self) -> str:
        """Create the next free vNNNN.pt (empty) with O_EXCL and return its name: two savers
        never get the same file, whatever the timing."""
        numbers = [int(_VERSION_FILE.match(p.name).group(1)) for p in self._files()]
        numbers += [v.id for v in self._rows()]
        n = max(numbers, default=0) + 1
        while True:
            name = f"v{n:04d}.pt"
            try:
                fd = os.open(self.dir / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                n += 1
                continue
            except OSError as exc:
                from ._atomic import os_error_reason
                raise CheckpointError(f"{self.dir / name}: cannot create the model version "
                                      f"({os_error_reason(exc)})") from exc
            os.close(fd)
            return name

    # ------------------------------------------------------------ writing
    def register(self, file: str, arch: str, parent: int | None = None, metrics: dict | None = None,
                 meta: dict | None = None) -> int:
        """Register a checkpoint already in models_dir (not activated); returns its id.

        Idempotent per file: a file that is already registered (e.g. by a concurrent index
        rebuild) keeps its row, which gets these values."""
        self.project._writable()
        with self.project._txn() as conn:
            return _rows.register(conn, parent, arch, str(file), metrics or {}, meta or {}, update=True)

    def save_version(self, model: nn.Module, meta: dict[str, Any] | None = None,
                     parent: int | None = None, metrics: dict[str, Any] | None = None,
                     activate: bool = True) -> int:
        """Save weights as the next vNNNN.pt, register it (parent, metrics), optionally activate."""
        if getattr(self.project, "read_only", False):
            from .errors import ReadOnlyProjectError
            raise ReadOnlyProjectError(f"{self.project.root}: project is read-only "
                                       f"({self.project.read_only_reason}); cannot save a model version")
        self.dir.mkdir(parents=True, exist_ok=True)
        full = dict(meta or {})
        full["parent"] = parent
        full["parent_file"] = self.get(parent).file if parent is not None else None
        full["metrics"] = dict(metrics or {})
        full.setdefault("classes", [c.name for c in getattr(self.project, "classes", [])] or None)
        name = self._allocate_file()
        path = self.dir / name
        try:
            saved_meta = _save(path, model, full)
            _atomic_text(path.with_suffix(".json"), json.dumps(saved_meta, sort_keys=True, indent=1))
        except BaseException:
            for leftover in (path, path.with_suffix(".json")):
                try:
                    leftover.unlink()
                except OSError:
                    pass
            raise
        vid = self.register(name, saved_meta["arch"], parent, full["metrics"], saved_meta)
        if activate:
            self.activate(vid)
        return vid

    def load(self, version_id: int) -> nn.Module:
        return load_checkpoint(self.path(version_id))[0]

    def activate(self, version_id: int | None) -> None:
        """Make ``version_id`` the only active version (None: no version is active). models/ACTIVE
        is rewritten in the same index transaction (if it cannot be, the change rolls back), so
        a rebuilt index restores the choice (a rollback survives)."""
        self.project._writable()
        file = self.get(version_id).file if version_id is not None else ""
        with self.project._txn() as conn:
            _rows.set_active(conn, version_id)
            self.dir.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.dir / ACTIVE_FILE, f"{file}\n".encode(), error=ProjectError)

    def update_metrics(self, version_id: int, metrics: dict) -> None:
        """Merge ``metrics`` into the version's metrics (existing keys are overwritten)."""
        self.project._writable()
        with self.project._txn() as conn:
            if not _rows.merge_metrics(conn, version_id, metrics):
                raise ProjectError(f"{self.dir}: there is no model version {version_id}")

    def rollback(self) -> int:
        """Activate the active version's parent; return its id. ProjectError when there is none."""
        act = self.active()
        if act is None:
            raise ProjectError(f"{self.dir}: no active model version to roll back from")
        if act.parent is None:
            raise ProjectError(f"{self.dir}: version {act.id} has no parent version to roll back to")
        self.activate(act.parent)
        return act.parent

    def compare(self, a: int, b: int) -> dict[str, Any]:
        """{"a": id, "b": id, "metrics": {key: [value_a, value_b]}} over the union of metric keys."""
        ma, mb = self.get(a).metrics or {}, self.get(b).metrics or {}
        keys = sorted(set(ma) | set(mb))
        return {"a": a, "b": b, "metrics": {k: [ma.get(k), mb.get(k)] for k in keys}}

    def rescan(self) -> list[int]:
        """Register every vNNNN.pt in models_dir not yet in the index (oldest first), in one
        index transaction; if no version is active, activate the one recorded in models/ACTIVE
        (else the newest). Idempotent (several threads or processes rebuilding at once register
        each file once). Returns the ids of the readable files."""
        entries: list[_rows.Entry] = []
        for path in self._files():
            try:
                meta = read_meta(path)
            except CheckpointError:
                continue  # unreadable (or still being written) files are skipped
            entries.append((path.name, meta.get("parent_file"), meta.get("arch", "unknown"),
                            meta.get("metrics") or {}, meta))
        if not entries:
            return []
        self.project._writable()
        with self.project._txn() as conn:
            return _rows.register_files(conn, entries, self._recorded_active)


def _rebuild_lock(folder: Path) -> threading.Lock:
    key = os.path.realpath(folder)
    with _REBUILD_LOCKS_GUARD:
        return _REBUILD_LOCKS.setdefault(key, threading.Lock())
