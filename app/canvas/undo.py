"""Undo commands: each stores only the changed rectangle's before/after pixels.

The edit is already on the mask when the command is pushed, so the first ``redo()`` (which
``QUndoStack.push`` calls) does nothing; later redos write ``after`` back.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from PySide6.QtGui import QUndoCommand, QUndoStack

from app.canvas.document import Patch, Rect

UNDO_LIMIT = 256  # ≥ 200 undo steps per image

ApplyFn = Callable[[str, Rect, np.ndarray], None]
"""``apply(stem, rect, pixels)``: write pixels into the mask of image ``stem`` and refresh."""


class PatchCommand(QUndoCommand):
    """One finished edit (stroke, fill, accept prediction) on image ``stem``."""

    def __init__(self, stem: str, patch: Patch, apply: ApplyFn, text: str) -> None:
        super().__init__(text)
        self.stem = stem
        self.patch = patch
        self._apply = apply
        self._first = True

    @property
    def nbytes(self) -> int:
        return self.patch.nbytes

    def redo(self) -> None:
        if self._first:  # already applied by the tool that made it
            self._first = False
            return
        self._apply(self.stem, self.patch.rect, self.patch.after)

    def undo(self) -> None:
        self._apply(self.stem, self.patch.rect, self.patch.before)


def make_stack(parent=None) -> QUndoStack:
    stack = QUndoStack(parent)
    stack.setUndoLimit(UNDO_LIMIT)
    return stack


def stack_bytes(stack: QUndoStack) -> int:
    """Sum of patch bytes held by ``stack`` (what bounds undo memory)."""
    total = 0
    for i in range(stack.count()):
        cmd = stack.command(i)
        total += getattr(cmd, "nbytes", 0)
    return total
