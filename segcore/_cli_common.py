"""Helpers every segloop-cli command shares: one-line errors, listing image folders (missing,
unreadable, empty, non-UTF-8 names), output stems, write probes, argument types."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any


class CLIError(Exception):
    """A failure the user must fix (bad folder, refused --out, ...): printed as one line."""


def _err(command: str, message: Any) -> int:
    print(f"segloop-cli {command}: {message}", file=sys.stderr)
    return 1


def _reason(exc: BaseException) -> str:
    from ._atomic import os_error_reason
    return os_error_reason(exc)


def _images(folder: Path, required: bool = True) -> list[Path]:
    """Image files of ``folder`` in name order. Names that are not valid UTF-8 are skipped with
    a message; CLIError if the folder is missing, unreadable or (``required``) has no image."""
    from .io import IMAGE_SUFFIXES, NON_UTF8_NAME, display_name, is_image_name, is_utf8_name
    if not folder.exists():
        raise CLIError(f"{folder}: folder does not exist")
    if not folder.is_dir():
        raise CLIError(f"{folder}: not a folder")
    try:
        with os.scandir(folder) as it:
            found = sorted(Path(e.path) for e in it if is_image_name(e.name) and e.is_file())
    except OSError as exc:
        raise CLIError(f"{folder}: cannot list the folder ({_reason(exc)})") from exc
    for p in found:
        if not is_utf8_name(p.name):
            print(f"skipped {display_name(p)}: {NON_UTF8_NAME}; rename the file to use it",
                  file=sys.stderr)
    found = [p for p in found if is_utf8_name(p.name)]
    if required and not found:
        raise CLIError(f"{folder}: no images in the folder (readable types: "
                       f"{' '.join(IMAGE_SUFFIXES)})")
    return found


def _stems(paths: list[Path]) -> dict[Path, str]:
    """Output stem per image: the module docstring's rule (segcore._index.assign_stems)."""
    from ._index import assign_stems
    by_name = assign_stems([p.name for p in paths], set())
    return {p: by_name[p.name] for p in paths}


def _matched(images_dir: Path, masks_dir: Path) -> list[tuple[Path, Path, str]]:
    """(image, mask, stem): image stem (see _stems) -> masks_dir/<stem>.png (or another suffix)."""
    masks: dict[str, Path] = {}
    for p in _images(masks_dir, required=False):
        masks.setdefault(p.stem, p)
        if p.suffix.lower() == ".png":
            masks[p.stem] = p
    pairs = [(p, masks[s], s) for p, s in _stems(_images(images_dir)).items()
             if s in masks and p != masks[s]]
    if not pairs:
        raise CLIError(f"{masks_dir}: no mask is named like an image of {images_dir}")
    return pairs


def _probe_writable(folder: Path) -> None:
    """Create and remove a temp file in ``folder``: OSError (EACCES, EROFS, ENOSPC...) up front
    instead of after minutes of work."""
    probe = folder / f".segloop-cli-probe-{os.getpid()}.tmp"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    os.unlink(probe)


def _ensure_writable_folder(folder: Path, out: Path, what: str) -> None:
    """Create ``folder`` and probe it; CLIError "--out OUT: cannot write WHAT there (reason)"."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _probe_writable(folder)
    except OSError as exc:
        raise CLIError(f"--out {out}: cannot write {what}there ({_reason(exc)})") from exc


def _int_at_least(low: int, high: int | None = None) -> Any:
    """argparse type: a whole number in [low, high]; anything else is an argument error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            span = f"{low}..{high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{value} is out of range (must be {span})")
        return value
    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number of seconds")
    return value


INPUT_SIZE = _int_at_least(32, 8192)  # the model pads to multiples of 32
