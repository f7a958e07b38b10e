"""Drive a MaskCanvas like a user, with real Qt mouse/key events (for tests and benchmarks).

``QTest.mouseMove`` cannot hold a button down, so moves are sent as ``QMouseEvent``s with
``buttons=LeftButton`` through ``QApplication.sendEvent`` on the viewport.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.canvas.view import MaskCanvas


def view_pos(canvas: MaskCanvas, x: float, y: float) -> QPointF:
    """Viewport position of the centre of image pixel (x, y) (scene → view mapping)."""
    return canvas.viewportTransform().map(QPointF(x + 0.5, y + 0.5))


def send_mouse(canvas: MaskCanvas, kind: QEvent.Type, pos: QPointF,
               button: Qt.MouseButton = Qt.MouseButton.LeftButton,
               buttons: Qt.MouseButton | None = None,
               modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    vp = canvas.viewport()
    if buttons is None:
        buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else button
    ev_button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else button
    event = QMouseEvent(kind, pos, vp.mapToGlobal(pos), ev_button, buttons, modifiers)
    QApplication.sendEvent(vp, event)


def drag(canvas: MaskCanvas, points: Sequence[tuple[float, float]],
         button: Qt.MouseButton = Qt.MouseButton.LeftButton, process: bool = False) -> None:
    """Press at points[0], move through the rest with the button held, release at the last."""
    pts = [view_pos(canvas, x, y) for x, y in points]
    send_mouse(canvas, QEvent.Type.MouseButtonPress, pts[0], button)
    for p in pts[1:]:
        send_mouse(canvas, QEvent.Type.MouseMove, p, button)
        if process:
            QApplication.processEvents()
    send_mouse(canvas, QEvent.Type.MouseButtonRelease, pts[-1], button)


def click(canvas: MaskCanvas, x: float, y: float) -> None:
    drag(canvas, [(x, y)])


def key(canvas: MaskCanvas, keys: Iterable[Qt.Key]) -> None:
    for k in keys:
        QTest.keyClick(canvas, k)


def shown_canvas(qtbot, image, mask=None, size: tuple[int, int] = (420, 320)):
    """A MaskCanvas shown at ``size`` with ``image`` (and ``mask``) at 1:1 zoom, for tests."""
    c = MaskCanvas()
    qtbot.addWidget(c)
    c.resize(*size)
    c.show()
    qtbot.waitExposed(c)
    c.set_image("img", image, mask, None)
    c.zoom_actual()
    return c

