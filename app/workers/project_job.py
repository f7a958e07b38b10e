"""A project opened for one job on a worker thread (its own sqlite connection), closed after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from segcore.project import Project


@contextmanager
def opened_project(root: Path | str) -> Iterator[Project]:
    """``Project.open(root)`` for the ``with`` block; closing it never raises over the job's
    own result or error (a failed close leaves nothing the user made behind)."""
    from segcore.project import Project

    project = Project.open(root)
    try:
        yield project
    finally:
        try:
            project.close()
        except Exception:  # noqa: BLE001
            pass
