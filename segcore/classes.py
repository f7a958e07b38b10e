"""Editing a project's classes, and checking that masks use only them.

Classes live in the project (``Project.classes``: names and colours, index 0 = background);
255 is *void* ("not labelled"), never a class, never trained on or scored.

:func:`change_classes` applies a new class list plus a mapping old index → new index (for
reorder, delete, merge); when any index moves, every mask under ``masks/`` is copied to
``.segloop/backup/classes-<time>/`` first, then rewritten one by one with segcore's atomic
write, then the class list is stored; stored predictions are dropped (their indices are the
old ones). :func:`mask_values` reads the masks to find values outside the classes (reported on
open and refused by fine-tuning: never silently trained as background).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import io
from ._records import ClassInfo
from .errors import MaskReadError, ProjectError

if TYPE_CHECKING:  # the type only: no import cycle at run time
    from .project import Project

VOID = 255
# Well separated hues (matplotlib's tab10, then the VOC map) for added classes.
NEW_COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (148, 103, 189), (23, 190, 207),
              (227, 119, 194), (188, 189, 34), (140, 86, 75), (214, 39, 40), (127, 127, 127),
              *io.default_palette(64)[1:]]


def next_color(classes: Sequence[ClassInfo]) -> tuple[int, int, int]:
    """The first of NEW_COLORS far enough (RGB distance > 90) from every colour in use."""
    used = [np.asarray(c.color, float) for c in classes]
    for c in NEW_COLORS:
        if all(np.linalg.norm(np.asarray(c, float) - u) > 90 for u in used):
            return (int(c[0]), int(c[1]), int(c[2]))
    return next(((int(c[0]), int(c[1]), int(c[2])) for c in NEW_COLORS
                 if tuple(c) not in {tuple(u) for u in used}),
                (128, 128, 128))


@dataclass
class MaskValues:
    max_index: int = 0
    outside: dict[str, list[int]] = field(default_factory=dict)  # stem -> values >= num_classes
    read: int = 0
    unreadable: dict[str, str] = field(default_factory=dict)

    def message(self, num_classes: int) -> str:
        if not self.outside:
            return ""
        stems = list(self.outside)
        shown = ", ".join(f"{s} ({', '.join(map(str, self.outside[s][:4]))})" for s in stems[:4])
        return (f"{len(stems)} mask(s) hold values outside the project's {num_classes} classes "
                f"(0..{num_classes - 1}, 255 = void): {shown}{' …' if len(stems) > 4 else ''}. "
                "They are not trained on until the classes cover them.")


def mask_values(project: Project, stems: Sequence[str] | None = None) -> MaskValues:
    """Which masks hold values >= num_classes (other than void)."""
    out = MaskValues()
    k = project.num_classes
    for stem in stems if stems is not None else project.stems():
        path = project.mask_path(stem)
        if not path.is_file():
            continue
        try:
            mask = io.read_mask(path)
        except MaskReadError as exc:
            out.unreadable[stem] = str(exc)
            continue
        out.read += 1
        values = np.flatnonzero(np.bincount(mask.ravel(), minlength=256))
        values = values[values != VOID]
        if values.size:
            out.max_index = max(out.max_index, int(values.max()))
        bad = [int(v) for v in values if v >= k]
        if bad:
            out.outside[stem] = bad
    return out


def change_classes(project: Project, classes: Sequence[ClassInfo],
                   mapping: Mapping[int, int] | None = None) -> Path | None:
    """New class list; ``mapping`` old index → new index (missing: unchanged if still valid).
    Returns the backup folder when masks were rewritten, else None. Raises ProjectError or
    MaskWriteError (the backup then holds every original mask)."""
    new = [c if isinstance(c, ClassInfo) else ClassInfo(*c) for c in classes]
    old_k = project.num_classes
    lut = np.arange(256, dtype=np.uint8)
    for old, target in (mapping or {}).items():
        if not (0 <= int(old) < 256 and (0 <= int(target) < len(new) or int(target) == VOID)):
            raise ProjectError(f"class mapping {old} -> {target} is outside 0..{len(new) - 1}/255")
        lut[int(old)] = int(target)
    moves = any(lut[i] != i for i in range(old_k))
    shrinking = len(new) < old_k and any(lut[i] >= len(new) and lut[i] != VOID
                                         for i in range(old_k))
    if shrinking:
        raise ProjectError(f"classes {[i for i in range(old_k) if lut[i] >= len(new)]} have no "
                           f"class to go to; map them to a kept class, background or void")
    backup = None
    if moves:
        files = sorted(p for p in project.masks_dir.glob("*.png") if not p.name.startswith("."))
        backup = project.state_dir / "backup" / f"classes-{time.strftime('%Y%m%d-%H%M%S')}"
        backup.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy2(f, backup / f.name)
        colors = [c.color for c in new]
        for f in files:
            try:
                mask = io.read_mask(f)
            except MaskReadError:
                continue  # left as it is; reported when shown
            io.write_mask(f, lut[mask], len(new), colors)
        for p in project.predictions_dir.glob("*.png"):
            try:
                p.unlink()
            except OSError:
                pass
    project.set_classes(new)
    if moves:
        project.rescan()
    return backup
