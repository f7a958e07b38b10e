"""Folders of images and masks: which files are images, the output stem of each, and which mask
belongs to which image. The one pairing rule of the CLI (eval, train), the simulator and the
benchmarks.

* :func:`list_images`: image files of a folder (``segcore.io.is_image_name``) in name order;
  names that are not valid UTF-8 are skipped with a message.
* :func:`output_stems`: one stem per image, unique even when two images share a stem
  (``a.jpg``, ``a.png``): segcore._index.assign_stems, the rule a project uses.
* :func:`match_pairs`: (image, mask, stem) for every image whose stem names a mask file in the
  masks folder (any image suffix; ``<stem>.png`` wins over another suffix).

Failures raise :class:`segcore.errors.FolderError` naming the folder and the reason.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

from .errors import FolderError


def _stderr(text: str) -> None:
    print(text, file=sys.stderr)


def list_images(folder: Path, required: bool = True,
                on_message: Callable[[str], None] = _stderr) -> list[Path]:
    """Image files of ``folder`` in name order. Names that are not valid UTF-8 are skipped
    (``on_message`` says so); FolderError if the folder is missing, unreadable or
    (``required``) has no image."""
    from ._atomic import os_error_reason
    from .io import IMAGE_SUFFIXES, NON_UTF8_NAME, display_name, is_image_name, is_utf8_name
    folder = Path(folder)
    if not folder.exists():
        raise FolderError(f"{folder}: folder does not exist")
    if not folder.is_dir():
        raise FolderError(f"{folder}: not a folder")
    try:
        with os.scandir(folder) as it:
            found = sorted(Path(e.path) for e in it if is_image_name(e.name) and e.is_file())
    except OSError as exc:
        raise FolderError(f"{folder}: cannot list the folder ({os_error_reason(exc)})") from exc
    for p in found:
        if not is_utf8_name(p.name):
            on_message(f"skipped {display_name(p)}: {NON_UTF8_NAME}; rename the file to use it")
    found = [p for p in found if is_utf8_name(p.name)]
    if required and not found:
        raise FolderError(f"{folder}: no images in the folder (readable types: "
                          f"{' '.join(IMAGE_SUFFIXES)})")
    return found


def output_stems(paths: list[Path]) -> dict[Path, str]:
    """Output stem per image (segcore._index.assign_stems: unique, predictable)."""
    from ._index import assign_stems
    by_name = assign_stems([p.name for p in paths], set())
    return {p: by_name[p.name] for p in paths}


def match_pairs(images_dir: Path, masks_dir: Path,
                on_message: Callable[[str], None] = _stderr) -> list[tuple[Path, Path, str]]:
    """(image, mask, stem) in image-name order: image stem (see :func:`output_stems`) ->
    ``masks_dir/<stem>.png`` (or ``<stem>`` with another image suffix). FolderError if none."""
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    masks: dict[str, Path] = {}
    for p in list_images(masks_dir, required=False, on_message=on_message):
        masks.setdefault(p.stem, p)
        if p.suffix.lower() == ".png":
            masks[p.stem] = p
    pairs = [(p, masks[s], s) for p, s in output_stems(list_images(images_dir, on_message=on_message)).items()
             if s in masks and p != masks[s]]
    if not pairs:
        raise FolderError(f"{masks_dir}: no mask is named like an image of {images_dir}")
    return pairs
