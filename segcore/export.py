"""Masks out: export a project's masks in the formats other tools read.

Formats (``FORMATS``), written under ``out/`` with names that never collide (project stems are
unique, see segcore._index):

- ``binary``   ``masks/<stem>.png``: gray 0/255 (every class > 0 is foreground; void is 0)
- ``index``    ``masks/<stem>.png``: gray class indices 0..k-1, void 255
- ``palette``  ``masks/<stem>.png``: palette PNG of the class indices in the project's colours
- ``coco``     ``annotations.json``: COCO instances JSON, one annotation per image and class,
               segmentation as RLE encoded by pycocotools (background and void are not classes)
- ``overlay``  ``overlays/<stem>.jpg``: the image with the mask drawn over it (for reports)
- ``dataset``  ``images/`` (copies), ``masks/`` (as the project stores them), ``classes.json``,
               ``train.txt`` / ``val.txt`` (stems by their fixed train / held-out role)

Every format also writes ``classes.json`` (names, colours, index 0 = background, void 255).
Files are written atomically (segcore._atomic); existing files in ``out/`` are replaced only
when they have the same name (an export of the same stem).
"""

from __future__ import annotations

import io as _io
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TYPE_CHECKING

import numpy as np
from PIL import Image

from . import io
from ._atomic import atomic_write_bytes
from .errors import SegLoopError

if TYPE_CHECKING:  # the type only: no import cycle at run time
    from .project import Project

FORMATS = ("binary", "index", "palette", "coco", "overlay", "dataset")
FORMAT_TEXT = {
    "binary": "0/255 PNG (binary masks)",
    "index": "class-index PNG (gray, void = 255)",
    "palette": "palette PNG (project colours)",
    "coco": "COCO JSON with RLE (pycocotools)",
    "overlay": "colour overlays (JPEG, for reports)",
    "dataset": "dataset layout (images/, masks/, classes.json, train/val lists)",
}
VOID = 255


class ExportError(SegLoopError):
    """An export could not be written (names the file and the reason)."""


@dataclass
class ExportSummary:
    out: Path
    fmt: str
    written: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # stem -> reason

    def text(self) -> str:
        line = f"{len(self.written)} file(s) written to {self.out} ({FORMAT_TEXT[self.fmt]})"
        if self.skipped:
            line += f"; {len(self.skipped)} image(s) skipped: " + "; ".join(
                f"{s}: {r}" for s, r in list(self.skipped.items())[:5])
        return line


def classes_json(project: Project) -> bytes:
    data = {"classes": [{"index": i, "name": c.name, "color": list(c.color)}
                        for i, c in enumerate(project.classes)],
            "void": VOID, "background": 0}
    return json.dumps(data, indent=2).encode("utf-8")


def _png(img: Image.Image) -> bytes:
    buf = _io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def palette_png(mask: np.ndarray, colors: Sequence[tuple[int, int, int]]) -> bytes:
    img = Image.fromarray(np.ascontiguousarray(mask, np.uint8), mode="P")
    flat = [0] * 768
    for i, c in enumerate(colors[:255]):
        flat[3 * i:3 * i + 3] = [int(v) for v in c]
    flat[3 * VOID:3 * VOID + 3] = [255, 255, 255]
    img.putpalette(flat, rawmode="RGB")
    return _png(img)


def overlay_rgb(image: np.ndarray, mask: np.ndarray, colors: Sequence[tuple[int, int, int]],
                alpha: float = 0.5) -> np.ndarray:
    lut = np.zeros((256, 3), np.float32)
    for i, c in enumerate(colors[:255]):
        lut[i] = c
    paint = (mask > 0) & (mask != VOID)
    out = image.astype(np.float32).copy()
    out[paint] = (1 - alpha) * out[paint] + alpha * lut[mask[paint]]
    return np.clip(out, 0, 255).astype(np.uint8)


def coco_dict(project: Project, stems: Sequence[str],
              masks: Callable[[str], np.ndarray | None]) -> dict[str, Any]:
    """COCO instances JSON: one RLE annotation (pycocotools) per image and present class."""
    from pycocotools import mask as mask_utils

    classes = project.classes
    data: dict[str, Any] = {
        "info": {"description": f"SegLoop export of {project.root.name}"},
        "images": [], "annotations": [],
        "categories": [{"id": i, "name": c.name} for i, c in enumerate(classes) if i > 0],
    }
    ann_id = 1
    for image_id, stem in enumerate(stems, start=1):
        mask = masks(stem)
        if mask is None:
            continue
        h, w = mask.shape
        data["images"].append({"id": image_id, "file_name": project.image_path(stem).name,
                               "height": int(h), "width": int(w), "segloop_stem": stem})
        for k in range(1, len(classes)):
            binary = np.asfortranarray((mask == k).astype(np.uint8))
            if not binary.any():
                continue
            rle = mask_utils.encode(binary)
            area = float(mask_utils.area(rle))
            bbox = [float(v) for v in mask_utils.toBbox(rle)]
            rle["counts"] = rle["counts"].decode("ascii")
            data["annotations"].append({"id": ann_id, "image_id": image_id, "category_id": k,
                                        "segmentation": rle, "area": area, "bbox": bbox,
                                        "iscrowd": 0})
            ann_id += 1
    return data


def export_project(project: Project, out: str | os.PathLike[str], fmt: str,
                   stems: Sequence[str] | None = None, only_done: bool = True) -> ExportSummary:
    """Export the masks of ``stems`` (default: the done images, or every image with a mask when
    ``only_done`` is False) in format ``fmt``. Raises ExportError for an unusable ``out``."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    out = Path(out).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{out}: cannot create the export folder ({exc.strerror or exc})") from exc
    if stems is None:
        stems = project.done_stems() if only_done else [
            s for s in project.stems() if project.mask_path(s).is_file()]
    summary = ExportSummary(out, fmt)
    colors = [c.color for c in project.classes]

    def load(stem: str) -> np.ndarray | None:
        try:
            mask = project.load_mask(stem)
        except Exception as exc:  # noqa: BLE001 - MaskReadError names the file
            summary.skipped[stem] = str(exc)
            return None
        if mask is None:
            summary.skipped[stem] = "no mask"
        return mask

    def write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data, ExportError)
        summary.written.append(path)

    write(out / "classes.json", classes_json(project))
    if fmt == "coco":
        data = coco_dict(project, stems, load)
        write(out / "annotations.json", json.dumps(data).encode("utf-8"))
        return summary
    train_roles = {s: r for s, r in ((r.stem, r.role) for r in project.records())}
    lists: dict[str, list[str]] = {"train": [], "val": []}
    for stem in stems:
        mask = load(stem)
        if mask is None:
            continue
        if fmt == "binary":
            write(out / "masks" / f"{stem}.png",
                  _png(Image.fromarray((((mask > 0) & (mask != VOID)) * 255).astype(np.uint8), "L")))
        elif fmt == "index":
            write(out / "masks" / f"{stem}.png", _png(Image.fromarray(mask.astype(np.uint8), "L")))
        elif fmt == "palette":
            write(out / "masks" / f"{stem}.png", palette_png(mask, colors))
        elif fmt == "overlay":
            try:
                image = project.load_image(stem)
            except Exception as exc:  # noqa: BLE001 - ImageReadError names the file
                summary.skipped[stem] = str(exc)
                continue
            buf = _io.BytesIO()
            Image.fromarray(overlay_rgb(image, mask, colors)).save(buf, format="JPEG", quality=90)
            write(out / "overlays" / f"{stem}.jpg", buf.getvalue())
        else:  # dataset
            src = project.image_path(stem)
            dst = out / "images" / f"{stem}{src.suffix.lower()}"
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copyfile(src, dst)
            except OSError as exc:
                raise ExportError(f"{dst}: cannot copy {src.name} ({exc.strerror or exc})") from exc
            summary.written.append(dst)
            png = io.encode_mask_png(out / "masks" / f"{stem}.png", mask, project.num_classes,
                                     colors)
            write(out / "masks" / f"{stem}.png", png)
            lists["val" if train_roles.get(stem) == "held_out" else "train"].append(stem)
    if fmt == "dataset":
        for name, items in lists.items():
            write(out / f"{name}.txt", "".join(f"{s}\n" for s in items).encode("utf-8"))
    return summary
