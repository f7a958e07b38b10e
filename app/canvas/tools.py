"""Editing tools. A tool turns press/move/release at image coordinates into mask edits.

Tools talk to the canvas through the small ``ToolHost`` protocol; panning is not a tool
action on the mask, so ``PanTool`` only tells the view to drag (see ``view.py``). The assist
tools (``BoxTool``, ``ScribbleTool``) only collect geometry and show it; the canvas's
``AssistController`` (app/canvas/assist.py) runs GrabCut / DenseCRF (segcore.assist) off the
GUI thread and applies the result as one undoable edit.
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
    # the assist tools' part (app/canvas/assist.py implements it for the canvas)
    def show_box(self, rect: Rect | None) -> None: ...
    def assist_box(self, rect: Rect) -> None: ...
    def show_scribble(self, points: list[Point] | None, background: bool) -> None: ...
    def assist_scribble(self, points: list[Point], background: bool) -> None: ...


class Tool:
    """Base tool: does nothing. ``shows_brush`` → the canvas shows the brush outline;
    ``takes_background`` → the right button (or Shift + left) presses with ``background``
    set (the scribble tool's background strokes)."""

    name = "none"
    shows_brush = False
    pans = False
    takes_background = False
    background = False

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


class BoxTool(Tool):
    """Drag a rectangle around an object; on release GrabCut sets its mask (app/canvas/assist.py).

    The rubber band is shown while dragging; a box under 3 px on a side does nothing."""

    name = "box"

    def __init__(self) -> None:
        self._start: Point | None = None

    def active(self) -> bool:
        return self._start is not None

    def _rect(self, host: ToolHost, pt: Point) -> Rect | None:
        doc = host.document()
        if doc is None or self._start is None:
            return None
        (ax, ay), (bx, by) = self._start, pt
        return doc.clip(Rect(int(min(ax, bx)), int(min(ay, by)),
                             int(max(ax, bx)) + 1, int(max(ay, by)) + 1))

    def press(self, host: ToolHost, pt: Point) -> None:
        if host.document() is None:
            return
        self._start = pt
        host.show_box(self._rect(host, pt))

    def move(self, host: ToolHost, pt: Point) -> None:
        if self._start is not None:
            host.show_box(self._rect(host, pt))

    def release(self, host: ToolHost, pt: Point) -> None:
        rect = self._rect(host, pt)
        self._start = None
        host.show_box(None)
        if rect is not None and rect.width >= 3 and rect.height >= 3:
            host.assist_box(rect)

    def cancel(self, host: ToolHost) -> None:
        self._start = None
        host.show_box(None)


class ScribbleTool(Tool):
    """Foreground (left button) / background (right button or Shift + left) strokes of the
    brush's size; each finished stroke refines the mask around the strokes
    (app/canvas/assist.py: DenseCRF on the model's probabilities, GrabCut without a model)."""

    name = "scribble"
    shows_brush = True
    takes_background = True

    def __init__(self) -> None:
        self._points: list[Point] | None = None

    def active(self) -> bool:
        return self._points is not None

    def press(self, host: ToolHost, pt: Point) -> None:
        if host.document() is None:
            return
        self._points = [pt]
        host.show_scribble(self._points, self.background)

    def move(self, host: ToolHost, pt: Point) -> None:
        if self._points is not None:
            self._points.append(pt)
            host.show_scribble(self._points, self.background)

    def release(self, host: ToolHost, pt: Point) -> None:
        if self._points is None:
            return
        if pt != self._points[-1]:
            self._points.append(pt)
        points, self._points = self._points, None
        host.assist_scribble(points, self.background)

    def cancel(self, host: ToolHost) -> None:
        self._points = None
        host.show_scribble(None, self.background)


def make_tools() -> dict[str, Tool]:
    return {t.name: t for t in (PaintTool(), EraserTool(), FillTool(), PanTool(), BoxTool(),
                                ScribbleTool())}
