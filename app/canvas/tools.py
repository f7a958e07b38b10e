"""Editing tools. A tool turns press/move/release at image coordinates into mask edits.

Tools talk to the canvas through the small ``ToolHost`` protocol; panning is not a tool
action on the mask, so ``PanTool`` only tells the view to drag (see ``view.py``).
"""

from __future__ import annotations

from typing import Protocol

from app.canvas.document import MaskDocument, Rect

Point = tuple[float, float]


class ToolHost(Protocol):
    def document(self) -> MaskDocument | None: ...
    def brush_size(self) -> int: ...
    def active_class(self) -> int: ...
    def refresh(self, rect: Rect) -> None: ...
    def commit_edit(self, rect: Rect | None, text: str) -> None: ...


class Tool:
    """Base tool: does nothing. ``shows_brush`` → the canvas shows the brush outline."""

    name = "none"
    shows_brush = False
    pans = False

    def press(self, host: ToolHost, pt: Point) -> None: ...
    def move(self, host: ToolHost, pt: Point) -> None: ...
    def release(self, host: ToolHost, pt: Point) -> None: ...
    def cancel(self, host: ToolHost) -> None: ...
    def active(self) -> bool:
        return False


class PaintTool(Tool):
    """Round brush; each mouse move draws a thick round-capped segment from the last point."""

    name = "brush"
    shows_brush = True
    label = "Brush stroke"

    def __init__(self) -> None:
        self._last: Point | None = None
        self._dirty: Rect | None = None

    def value(self, host: ToolHost) -> int:
        return host.active_class()

    def active(self) -> bool:
        return self._last is not None

    def press(self, host: ToolHost, pt: Point) -> None:
        doc = host.document()
        if doc is None:
            return
        self._last = pt
        self._dirty = None
        self._segment(host, doc, pt, pt)

    def move(self, host: ToolHost, pt: Point) -> None:
        doc = host.document()
        if doc is None or self._last is None:
            return
        self._segment(host, doc, self._last, pt)
        self._last = pt

    def _segment(self, host: ToolHost, doc: MaskDocument, a: Point, b: Point) -> None:
        rect = doc.paint_segment(a, b, host.brush_size(), self.value(host))
        if rect.is_empty():
            return
        self._dirty = rect.union(self._dirty)
        host.refresh(rect)

    def release(self, host: ToolHost, pt: Point) -> None:
        if self._last is None:
            return
        if pt != self._last:
            self.move(host, pt)
        dirty, self._last, self._dirty = self._dirty, None, None
        host.commit_edit(dirty, self.label)

    def cancel(self, host: ToolHost) -> None:
        doc = host.document()
        if doc is not None and self._dirty is not None:
            doc.revert_uncommitted(self._dirty)
            host.refresh(self._dirty)
        self._last, self._dirty = None, None


class EraserTool(PaintTool):
    """The brush painting background (class 0)."""

    name = "eraser"
    label = "Eraser stroke"

    def value(self, host: ToolHost) -> int:
        return 0


class FillTool(Tool):
    """Flood-fill the clicked 4-connected region of the mask with the active class."""

    name = "fill"

    def press(self, host: ToolHost, pt: Point) -> None:
        doc = host.document()
        if doc is None:
            return
        rect = doc.flood_fill(int(pt[0]), int(pt[1]), host.active_class())
        if rect is not None:
            host.refresh(rect)
            host.commit_edit(rect, "Fill")


class PanTool(Tool):
    """Left-drag pans the view (the view does the dragging)."""

    name = "pan"
    pans = True


def make_tools() -> dict[str, Tool]:
    return {t.name: t for t in (PaintTool(), EraserTool(), FillTool(), PanTool())}
