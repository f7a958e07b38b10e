"""The status bar: work indicator, message, pixel, zoom, device, model, CRF and save state."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPalette, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QStatusBar, QWidget


class Spinner(QWidget):
    """A small rotating arc shown while background work runs."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._angle = 0
        self._timer = QTimer(self)
        self._timer.setInterval(50)
        self._timer.timeout.connect(self._tick)
        self.setFixedSize(QSize(16, 16))
        self.setVisible(False)

    def set_active(self, active: bool) -> None:
        self.setVisible(active)
        if active and not self._timer.isActive():
            self._timer.start()
        elif not active:
            self._timer.stop()

    def is_active(self) -> bool:
        return self._timer.isActive()

    def _tick(self) -> None:
        self._angle = (self._angle + 30) % 360
        self.update()

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(QColor(self.palette().color(QPalette.ColorRole.Highlight)), 2.2)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        p.setPen(pen)
        p.drawArc(QRectF(2, 2, 12, 12), -self._angle * 16, 270 * 16)


FIELD_MAX_WIDTH = 260  # a permanent field (model name, device) never takes more


class ElidedLabel(QLabel):
    """A one-line label that never asks for more width than it gets: a long text is elided
    (full text in the tooltip) instead of widening the status bar and with it the window."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self._tip: str | None = None
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(40)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt name
        self._full = text or ""
        self._elide()
        self.updateGeometry()

    def text(self) -> str:  # the full text; shown_text() is what fits
        return self._full

    def shown_text(self) -> str:
        return super().text()

    def sizeHint(self) -> QSize:  # the style sheet's padding included
        m = self.contentsMargins()
        width = self.fontMetrics().horizontalAdvance(self._full) + m.left() + m.right() + 4
        return QSize(width, super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        return QSize(self.minimumWidth(), super().minimumSizeHint().height())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideMiddle,
                                              max(0, self.contentsRect().width() - 2))
        super().setText(shown)
        if self._tip is None:
            self._tip = self.toolTip()  # the field's own explanation, set once
        clipped = shown != self._full
        self.setToolTip(f"{self._full}\n{self._tip}".strip() if clipped else self._tip)


class StatusBar(QStatusBar):
    """``set_*`` methods update one permanent field each; tooltips say what they mean."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizeGripEnabled(True)
        work = QWidget()
        row = QHBoxLayout(work)
        row.setContentsMargins(6, 0, 0, 0)
        row.setSpacing(6)
        self.spinner = Spinner()
        self.work_label = ElidedLabel()
        self.work_label.setObjectName("statusMessage")
        self.image_info = ElidedLabel()
        self.image_info.setObjectName("statusMessage")
        self.image_info.setToolTip("The image on the canvas: file name and size (width × height)")
        row.addWidget(self.image_info, 2)
        row.addSpacing(12)
        row.addWidget(self.spinner)
        row.addWidget(self.work_label, 1)
        work.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.addWidget(work, 1)
        self.pixel = self._field("Image pixel under the cursor (x, y)", 110)
        self.zoom = self._field("Zoom (100% = one image pixel per screen pixel)", 70)
        self.device = self._field("Device the model runs on")
        self.model = self._field("Model version used for predictions")
        self.crf = self._field("DenseCRF refinement of predictions (R)")
        self.save = self._field("Save state of your corrections (written automatically)")
        self.set_pixel(None, None)
        self.set_zoom(1.0)
        self.set_device("device: loading…")
        self.set_model("model: loading…")
        self.set_crf(False)
        self.set_save_state("saved")

    def _field(self, tip: str, min_width: int = 0) -> QLabel:
        label = ElidedLabel()
        label.setObjectName("statusField")
        label.setToolTip(tip)
        # its whole text (up to FIELD_MAX_WIDTH): the work message on the left gives way first
        label.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Preferred)
        label.setMinimumWidth(min_width or 40)
        label.setMaximumWidth(max(min_width, FIELD_MAX_WIDTH))
        self.addPermanentWidget(label)
        return label

    def set_work(self, text: str | None) -> None:
        self.spinner.set_active(bool(text))
        self.work_label.setText(text or "")

    def set_image_info(self, name: str | None, width: int = 0, height: int = 0) -> None:
        self.image_info.setText(f"{name}  ·  {width} × {height}" if name else "")

    def set_pixel(self, x: int | None, y: int | None) -> None:
        self.pixel.setText("x –, y –" if x is None else f"x {x}, y {y}")

    def set_zoom(self, factor: float) -> None:
        self.zoom.setText(f"{factor * 100:.0f}%")

    def set_device(self, name: str) -> None:
        self.device.setText(name)

    def set_model(self, label: str) -> None:
        self.model.setText(label)

    def set_crf(self, on: bool, available: bool = True) -> None:
        self.crf.setText("CRF on" if on else ("CRF off" if available else "CRF unavailable"))

    def set_save_state(self, state: str) -> None:
        problem = state.startswith("unsaved") or state.startswith("read-only")
        self.save.setText(("⚠ " if problem else "✓ " if state == "saved" else "") + state)
        self.save.setStyleSheet("QLabel#statusField { color: #e0474c; font-weight: 600; }"
                                if problem else "")
