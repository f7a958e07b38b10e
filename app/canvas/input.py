"""Mouse, wheel and keyboard handling of MaskCanvas (a mixin; kept apart from the API).

Handled here (canvas has focus): ``[`` / ``]`` brush size, ctrl+wheel brush size, wheel zoom
around the cursor, space+drag or middle-drag pan, Esc cancels a stroke (or clears the scribbles), and fallbacks for
the keys the shell normally owns as QActions (an action's shortcut wins, so no double
handling): B brush, E eraser, G fill, H pan, X box, S scribble, M mask, O boundary, D diff, F fit, 1 actual size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QKeyEvent, QMouseEvent, QWheelEvent

if TYPE_CHECKING:
    from PySide6.QtCore import Signal
    from PySide6.QtWidgets import QGraphicsView

    from app.canvas.assist import AssistController
    from app.canvas.document import MaskDocument
    from app.canvas.layers import BrushCursorItem
    from app.canvas.tools import Tool, ToolHost
    from app.editor_state import EditorState

    class _MixinBase(QGraphicsView, ToolHost):
        """For mypy only: the mixin is only ever mixed into MaskCanvas, a QGraphicsView that is the tools' host."""
else:
    _MixinBase = object


WHEEL_ZOOM_BASE = 1.0015  # per 1/8 degree: one notch (120) ≈ ×1.2

_TOOL_KEYS: dict[int, str] = {Qt.Key.Key_B: "brush", Qt.Key.Key_E: "eraser", Qt.Key.Key_G: "fill", Qt.Key.Key_H: "pan",
              Qt.Key.Key_X: "box", Qt.Key.Key_S: "scribble"}
_LAYER_KEYS: dict[int, str] = {Qt.Key.Key_M: "mask", Qt.Key.Key_O: "boundary", Qt.Key.Key_D: "diff"}


class CanvasInputMixin(_MixinBase):
    """Needs MaskCanvas's attributes: state (EditorState), _tool, _doc, _cursor_item."""

    if TYPE_CHECKING:  # what MaskCanvas provides (declared for mypy only)
        state: EditorState
        assist: AssistController
        cursorMoved: Signal
        _tool: Tool
        _doc: MaskDocument | None
        _cursor_item: BrushCursorItem | None

        def set_tool(self, name: str) -> None: ...
        def zoom(self) -> float: ...
        def set_zoom(self, factor: float, anchor: QPointF | None = None) -> None: ...
        def fit_to_view(self) -> None: ...
        def zoom_actual(self) -> None: ...

    def _init_input(self) -> None:
        self._space_down = False
        self._pan_anchor: QPointF | None = None
        self._pan_button = Qt.MouseButton.NoButton
        self._tool_button = Qt.MouseButton.LeftButton  # the button the active tool drags with
        self._last_image_pt: tuple[float, float] = (0.0, 0.0)
        self._last_cursor_px: tuple[int, int] | None = None
        self._update_cursor_shape()

    # ---- coordinates ------------------------------------------------------------------------
    def image_point(self, view_pos: QPointF) -> tuple[float, float]:
        """Viewport position → image coordinates (float pixels)."""
        inv, _ = self.viewportTransform().inverted()
        p = inv.map(QPointF(view_pos))
        return (p.x(), p.y())

    def _tool_last_point(self) -> tuple[float, float]:
        return self._last_image_pt

    def _update_cursor_shape(self) -> None:
        if self._pan_anchor is not None:
            shape = Qt.CursorShape.ClosedHandCursor
        elif self._space_down or self._tool.pans:
            shape = Qt.CursorShape.OpenHandCursor
        else:
            shape = Qt.CursorShape.CrossCursor
        self.viewport().setCursor(shape)
        if self._cursor_item is not None:
            show = self._tool.shows_brush and not self._space_down and self.underMouse()
            self._cursor_item.setVisible(show)

    # ---- mouse ------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        button = event.button()
        pans = self._space_down or self._tool.pans
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and pans):
            self._pan_anchor, self._pan_button = event.position(), button
            self._update_cursor_shape()
            event.accept()
            return
        takes_right = self._tool.takes_background and button == Qt.MouseButton.RightButton
        if (button == Qt.MouseButton.LeftButton or takes_right) and self._doc is not None:
            if self._tool.active():  # the other button is already drawing
                event.accept()
                return
            shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            self._tool.background = takes_right or (self._tool.takes_background and shift)
            self._tool_button = button
            self._last_image_pt = self.image_point(event.position())
            self._tool.press(self, self._last_image_pt)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._pan_anchor is not None:
            delta = pos - self._pan_anchor
            self._pan_anchor = pos
            h, v = self.horizontalScrollBar(), self.verticalScrollBar()
            h.setValue(h.value() - round(delta.x()))
            v.setValue(v.value() - round(delta.y()))
            event.accept()
            return
        pt = self.image_point(pos)
        self._track_cursor(pt)
        if self._tool.active() and event.buttons() & self._tool_button:
            self._last_image_pt = pt
            self._tool.move(self, pt)
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_anchor is not None and event.button() == self._pan_button:
            self._pan_anchor, self._pan_button = None, Qt.MouseButton.NoButton
            self._update_cursor_shape()
            event.accept()
            return
        if event.button() == self._tool_button and self._tool.active():
            self._last_image_pt = self.image_point(event.position())
            self._tool.release(self, self._last_image_pt)
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def _track_cursor(self, pt: tuple[float, float]) -> None:
        if self._cursor_item is not None:
            self._cursor_item.move_to(QPointF(*pt))
            if not self._cursor_item.isVisible() and self._tool.shows_brush and not self._space_down:
                self._cursor_item.setVisible(True)
        px = (int(pt[0] // 1), int(pt[1] // 1))
        if px != self._last_cursor_px:
            self._last_cursor_px = px
            self.cursorMoved.emit(px[0], px[1])

    def enterEvent(self, event) -> None:
        super().enterEvent(event)
        self._update_cursor_shape()

    def leaveEvent(self, event) -> None:
        super().leaveEvent(event)
        if self._cursor_item is not None:
            self._cursor_item.setVisible(False)

    # ---- wheel ------------------------------------------------------------------------------
    def wheelEvent(self, event: QWheelEvent) -> None:
        dy = event.angleDelta().y() or event.pixelDelta().y()
        if dy == 0:
            event.ignore()
            return
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            notches = max(1, abs(dy) // 120)
            self.state.step_brush(notches if dy > 0 else -notches)
        else:
            self.set_zoom(self.zoom() * (WHEEL_ZOOM_BASE ** dy), event.position())
        event.accept()

    # ---- keys -------------------------------------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:
        key, text = event.key(), event.text()
        mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if key == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space_down = True
                self._update_cursor_shape()
            event.accept()
            return
        if text == "]" or key == Qt.Key.Key_BracketRight:
            self.state.step_brush(+1)
        elif text == "[" or key == Qt.Key.Key_BracketLeft:
            self.state.step_brush(-1)
        elif key == Qt.Key.Key_Escape and self._tool.active():
            self._tool.cancel(self)
        elif key == Qt.Key.Key_Escape and self.assist.has_scribbles():
            self.assist.clear_scribbles()
        elif mods != Qt.KeyboardModifier.NoModifier:
            super().keyPressEvent(event)
            return
        elif key in _TOOL_KEYS:
            self.set_tool(_TOOL_KEYS[key])
        elif key in _LAYER_KEYS:
            name = _LAYER_KEYS[key]
            self.state.set_layer_visible(name, not self.state.layer_visible(name))
        elif key == Qt.Key.Key_F:
            self.fit_to_view()
        elif key == Qt.Key.Key_1:
            self.zoom_actual()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = False
            self._update_cursor_shape()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:
        self._space_down = False
        super().focusOutEvent(event)
