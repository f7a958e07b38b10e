"""Masks in: find and decode masks in the layouts and encodings people have.

Where (:func:`find_masks`): a folder you name, else ``masks/`` (files other than the project's
own ``masks/<stem>.png``), ``labels/`` and ``annotations/`` beside the images; names
``<stem>.<ext>``, ``<stem>_mask.<ext>`` or ``<stem>_label.<ext>``; ``ext`` in ``MASK_SUFFIXES``.

How (:func:`decode_mask`), into HxW uint8 class indices (255 = void):
- palette PNG: its indices; gray 0/255: binary; gray small integers: class indices as they are;
- RGB colour-coded: each colour maps to a class through ``color_map`` (exact colours of the
  project's classes map by themselves, black is background); unknown colours raise
  :class:`NeedsColorMap` listing them, so the caller can ask the user (the mapping step);
- instance-id masks (more distinct gray values than classes, e.g. 0, 1..N per object): merged
  into class 1 (``instances="merge"``) or kept as classes (``instances="keep"``) on request;
  without a request a mask holding values beyond the project's classes is reported, never
  silently merged or trained as background;
- JPEG masks (lossy): thresholded at 128 and connected components smaller than
  ``min_component`` pixels removed, both reported in the note.

:func:`import_masks` writes them into the project (status DONE: a finished label) and never
replaces a mask the project already has; :func:`proposed_classes` reads ``classes.json`` /
``classes.txt`` beside the masks when the masks hold more classes than the project.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image

from .errors import MaskReadError, SegLoopError

if TYPE_CHECKING:  # the type only: no import cycle at run time
    from .project import Project

MASK_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
MASK_FOLDERS = ("masks", "labels", "annotations")
NAME_SUFFIXES = ("", "_mask", "_label", "_labels", "_gt")
JPEG_THRESHOLD = 128
MIN_COMPONENT = 16  # px: JPEG speckles smaller than this are removed
VOID = 255


class NeedsColorMap(SegLoopError):
    """An RGB mask uses colours that are not mapped to classes yet."""

    def __init__(self, path: Path, colors: list[tuple[int, int, int]]) -> None:
        shown = ", ".join(f"#{r:02x}{g:02x}{b:02x}" for r, g, b in colors[:8])
        super().__init__(f"{path}: colours without a class: {shown}"
                         + (f" and {len(colors) - 8} more" if len(colors) > 8 else ""))
        self.path, self.colors = path, colors


@dataclass
class Decoded:
    mask: np.ndarray
    kind: str          # "palette" | "binary" | "index" | "rgb" | "instances" | "jpeg"
    note: str = ""


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)      # stem -> reason
    notes: dict[str, str] = field(default_factory=dict)        # stem -> what was cleaned/merged
    max_index: int = 0

    def text(self) -> str:
        parts = [f"{len(self.imported)} mask(s) imported"]
        if self.notes:
            parts.append(f"{len(self.notes)} cleaned or merged (" + "; ".join(
                f"{s}: {n}" for s, n in list(self.notes.items())[:3]) + ")")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped (" + "; ".join(
                f"{s}: {r}" for s, r in list(self.skipped.items())[:3]) + ")")
        return ", ".join(parts)


def _mask_stem(name: str) -> tuple[str, str] | None:
    base, ext = os.path.splitext(name)
    if ext.lower() not in MASK_SUFFIXES or name.startswith("."):
        return None
    for suffix in sorted(NAME_SUFFIXES, key=len, reverse=True):
        if suffix and base.lower().endswith(suffix):
            return base[: -len(suffix)], suffix
    return base, ""


def find_masks(project: Project, folder: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """{stem: mask file} for project images without a mask of their own."""
    stems = set(project.stems())
    by_file_stem = {os.path.splitext(r.filename)[0]: r.stem for r in project.records()}
    folders = [Path(folder)] if folder is not None else [project.root / f for f in MASK_FOLDERS]
    if folder is None:
        folders.append(project.root)
    found: dict[str, Path] = {}
    for d in folders:
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for name in names:
            parsed = _mask_stem(name)
            if parsed is None:
                continue
            base, suffix = parsed
            if d == project.root and not suffix:
                continue  # the images themselves
            stem = base if base in stems else by_file_stem.get(base)
            path = d / name
            if stem is None or path == project.mask_path(stem) or stem in found:
                continue
            if project.mask_path(stem).is_file() and folder is None:
                continue
            found[stem] = path
    return found


def _remove_small(binary: np.ndarray, min_size: int) -> tuple[np.ndarray, int]:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    small = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] < min_size]
    if not small:
        return binary, 0
    out = binary.copy()
    out[np.isin(labels, small)] = 0
    return out, len(small)


def decode_mask(path: str | os.PathLike[str], num_classes: int,
                class_colors: list[tuple[int, int, int]] | None = None,
                color_map: Mapping[tuple[int, int, int], int] | None = None,
                instances: str | None = None, min_component: int = MIN_COMPONENT) -> Decoded:
    """One mask file → class indices; see the module docstring. Raises MaskReadError or
    NeedsColorMap."""
    p = Path(path)
    try:
        with Image.open(p) as img:
            img.load()
            mode = img.mode
            if mode in ("P", "PA"):
                a = np.asarray(img.convert("P") if mode == "PA" else img)
                return Decoded(a.astype(np.uint8), "palette")
            arr = np.asarray(img.convert("RGB") if mode not in ("L", "1", "I", "I;16", "I;16B")
                             else img)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise MaskReadError(f"{p}: cannot read the mask ({exc})") from exc
    jpeg = p.suffix.lower() in (".jpg", ".jpeg")
    if arr.ndim == 3:
        if not (np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 1], arr[..., 2])):
            if jpeg:
                gray = arr.max(axis=2)
            else:
                return _decode_rgb(p, arr, class_colors or [], color_map or {})
        else:
            gray = arr[..., 0]
    else:
        gray = arr
    gray = np.asarray(gray)
    if gray.dtype != np.uint8:
        g = gray.astype(np.int64)
        if g.max() > 255:
            if instances != "keep":
                return Decoded((g > 0).astype(np.uint8), "instances",
                               f"{len(np.unique(g)) - 1} instance ids merged into class 1")
            raise MaskReadError(f"{p}: {len(np.unique(g)) - 1} instance ids; more than 254 "
                                f"cannot be kept as classes")
        gray = g.astype(np.uint8)
    values = set(np.unique(gray).tolist())
    if jpeg:
        binary = gray >= JPEG_THRESHOLD
        cleaned, removed = _remove_small(binary, min_component)
        changed = int(np.count_nonzero((gray != 0) & (gray != 255))) if values - {0, 255} else 0
        note = ""
        if changed or removed:
            note = (f"JPEG mask: {changed} px of compression noise thresholded at "
                    f"{JPEG_THRESHOLD}, {removed} speck(s) under {min_component} px removed")
        return Decoded(cleaned.astype(np.uint8), "jpeg", note)
    if values <= {0, 255}:
        return Decoded((gray == 255).astype(np.uint8), "binary")
    labels = values - {VOID}
    if max(labels, default=0) < num_classes:
        return Decoded(gray.astype(np.uint8), "index")
    if instances == "merge":  # asked for: values beyond the classes are instance ids
        merged = np.where(gray == VOID, VOID, (gray > 0).astype(np.uint8)).astype(np.uint8)
        return Decoded(merged, "instances",
                       f"{len(labels - {0})} ids merged into class 1 (instance mask)")
    return Decoded(gray.astype(np.uint8), "index")  # "keep", or reported by the caller


def _decode_rgb(p: Path, rgb: np.ndarray, class_colors: list[tuple[int, int, int]],
                color_map: Mapping[tuple[int, int, int], int]) -> Decoded:
    flat = rgb.reshape(-1, 3)
    colors, inverse = np.unique(flat, axis=0, return_inverse=True)
    mapping: dict[tuple[int, int, int], int] = {(0, 0, 0): 0}
    mapping.update({tuple(int(v) for v in c): i for i, c in enumerate(class_colors)})
    mapping.update({tuple(int(v) for v in k): int(v) for k, v in color_map.items()})
    lut = np.zeros(len(colors), np.uint8)
    unknown = []
    for i, c in enumerate(colors):
        key = tuple(int(v) for v in c)
        if key in mapping:
            lut[i] = mapping[key]
        else:
            unknown.append(key)
    if unknown:
        raise NeedsColorMap(p, unknown)
    return Decoded(lut[inverse.ravel()].reshape(rgb.shape[:2]), "rgb")


def rgb_colors(paths: list[Path], limit: int = 64) -> list[tuple[int, int, int]]:
    """The distinct colours (not black) of RGB masks, for the colour → class mapping step."""
    seen: dict[tuple[int, int, int], None] = {}
    for p in paths:
        try:
            with Image.open(p) as img:
                if img.mode in ("P", "PA", "L", "1") or img.mode.startswith("I"):
                    continue
                rgb = np.asarray(img.convert("RGB")).reshape(-1, 3)
        except OSError:
            continue
        for c in np.unique(rgb, axis=0):
            key = tuple(int(v) for v in c)
            if key != (0, 0, 0):
                seen.setdefault(key, None)
        if len(seen) >= limit:
            break
    return list(seen)[:limit]


def proposed_classes(folder: Path, count: int) -> list[str]:
    """Class names for ``count`` classes: from classes.json (a list of names, or SegLoop's
    {"classes": [{"name": ...}]}) or classes.txt (one name a line) in ``folder`` or its parent;
    else "background", "class 1", ..."""
    names: list[str] = []
    for d in (folder, folder.parent):
        js, txt = d / "classes.json", d / "classes.txt"
        try:
            if js.is_file():
                data = json.loads(js.read_text(encoding="utf-8"))
                items = data.get("classes", data) if isinstance(data, dict) else data
                names = [str(c["name"] if isinstance(c, dict) else c) for c in items]
                break
            if txt.is_file():
                names = [line.strip() for line in txt.read_text(encoding="utf-8").splitlines()
                         if line.strip()]
                break
        except (OSError, ValueError, KeyError, TypeError):
            continue
    out = names[:count]
    out += ["background" if i == 0 else f"class {i}" for i in range(len(out), count)]
    return out


def import_masks(project: Project, found: Mapping[str, Path],
                 color_map: Mapping[tuple[int, int, int], int] | None = None,
                 instances: str | None = None, overwrite: bool = False) -> ImportReport:
    """Decode ``found`` ({stem: file}) and save them as DONE masks. Masks whose values exceed
    the project's classes are skipped and reported (``report.max_index`` tells the caller how
    many classes would be needed); existing masks are kept unless ``overwrite``."""
    from . import io

    report = ImportReport()
    colors = [c.color for c in project.classes]
    k = project.num_classes
    for stem, path in sorted(found.items()):
        if project.mask_path(stem).is_file() and not overwrite:
            report.skipped[stem] = "has a mask already (kept)"
            continue
        try:
            decoded = decode_mask(path, k, colors, color_map, instances)
            size = io.image_size(project.image_path(stem))
        except SegLoopError as exc:
            report.skipped[stem] = str(exc)
            continue
        mask = decoded.mask
        labels = set(np.unique(mask).tolist()) - {VOID}
        report.max_index = max(report.max_index, max(labels, default=0))
        if mask.shape != size:
            report.skipped[stem] = (f"{path.name} is {mask.shape[1]}x{mask.shape[0]}, the image "
                                    f"is {size[1]}x{size[0]}")
            continue
        if max(labels, default=0) >= k:
            report.skipped[stem] = (f"{path.name} holds class {max(labels)}, the project has "
                                    f"{k} classes (0..{k - 1}): add classes, or import it as "
                                    f"an instance mask (merge)")
            continue
        if not _save_imported(project, stem, mask, report):  # void (255) is stored as it is
            continue
        if decoded.note:
            report.notes[stem] = decoded.note
    return report


def read_coco(project: Project, path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """{stem: class-index mask} from a COCO instances JSON (RLE or polygons, decoded by
    pycocotools). Images match by file name (or SegLoop's ``segloop_stem``); categories by
    name to the project's classes, else by id when it is a valid class index. Overlaps: the
    later annotation wins. Raises MaskReadError naming the file."""
    from pycocotools import mask as mask_utils

    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        images, anns, cats = data["images"], data.get("annotations", []), data.get("categories", [])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MaskReadError(f"{p}: not a COCO JSON file ({exc})") from exc
    names = {c.name: i for i, c in enumerate(project.classes)}
    k = project.num_classes
    cat_class: dict[int, int] = {}
    for c in cats:
        if c.get("name") in names:
            cat_class[int(c["id"])] = names[c["name"]]
        elif 0 < int(c["id"]) < k:
            cat_class[int(c["id"])] = int(c["id"])
    by_file = {r.filename: r.stem for r in project.records()}
    stems = set(project.stems())
    out: dict[str, np.ndarray] = {}
    image_stem: dict[int, str] = {}
    for im in images:
        stem = im.get("segloop_stem") if im.get("segloop_stem") in stems else by_file.get(
            Path(str(im.get("file_name", ""))).name)
        if stem is None:
            continue
        image_stem[int(im["id"])] = stem
        out[stem] = np.zeros((int(im["height"]), int(im["width"])), np.uint8)
    for a in anns:
        stem = image_stem.get(int(a["image_id"]))
        cls = cat_class.get(int(a["category_id"]))
        if stem is None or cls is None:
            continue
        h, w = out[stem].shape
        seg = a["segmentation"]
        if isinstance(seg, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
        elif isinstance(seg.get("counts"), list):
            rle = mask_utils.frPyObjects(seg, h, w)
        else:
            rle = {"size": seg["size"], "counts": seg["counts"].encode("ascii")
                   if isinstance(seg["counts"], str) else seg["counts"]}
        out[stem][mask_utils.decode(rle).astype(bool)] = cls
    return out


def import_arrays(project: Project, masks: Mapping[str, np.ndarray],
                  overwrite: bool = False) -> ImportReport:
    """Save already decoded masks ({stem: class indices}) as DONE; same checks as import_masks."""
    from . import io

    report = ImportReport()
    k = project.num_classes
    for stem, mask in sorted(masks.items()):
        if project.mask_path(stem).is_file() and not overwrite:
            report.skipped[stem] = "has a mask already (kept)"
            continue
        labels = set(np.unique(mask).tolist()) - {VOID}
        report.max_index = max(report.max_index, max(labels, default=0))
        try:
            size = io.image_size(project.image_path(stem))
        except SegLoopError as exc:
            report.skipped[stem] = str(exc)
            continue
        if mask.shape != size:
            report.skipped[stem] = f"mask is {mask.shape[1]}x{mask.shape[0]}, image {size[1]}x{size[0]}"
            continue
        if max(labels, default=0) >= k:
            report.skipped[stem] = f"holds class {max(labels)}, the project has {k} classes"
            continue
        _save_imported(project, stem, mask, report)
    return report


def _save_imported(project: Project, stem: str, mask: np.ndarray, report: Any) -> bool:
    """Save an imported mask as done; a failure is recorded in ``report.skipped``."""
    from .project import ImageStatus
    try:
        project.save_mask(stem, mask, ImageStatus.DONE)
    except SegLoopError as exc:
        report.skipped[stem] = str(exc)
        return False
    report.imported.append(stem)
    return True
