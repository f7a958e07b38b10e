"""Helpers every segloop-cli command shares: one-line errors, write probes, argument types.
Listing image folders, output stems and image/mask pairs are segcore.pairing's."""

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
