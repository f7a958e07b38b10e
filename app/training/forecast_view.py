"""The effort-forecast line of the Training dock: "Forecast: ≈ 35 more images for IoU 0.90 (range
20–70)" and the target IoU it is for (``target_box``: a spin box, "auto" =
segcore.forecast.default_target, placed by the panel on its own row, beside Compare…).

Pure view: ``set_forecast(Forecast | None)`` (None, or fewer than three versions: hidden, as is
the target box); ``targetChanged(float | None)`` when the user picks a target (None: auto). The
controller fits the curve (segcore.forecast) and stores the target.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QSizePolicy, QWidget

AUTO = 0.49          # the spin box's minimum, shown as "auto"
TIP = ("Fitted on the held-out IoU of the active version and its ancestors against the number of "
       "images each trained on: IoU(n) = a − b·n^(−c). The range is the 10–90 % spread of the fits "
       "when the held-out images' scores are resampled (few held-out images: a wide range). It "
       "assumes the next images are like the ones done so far.")


class ForecastLine(QWidget):
    targetChanged = Signal(object)  # float | None (auto)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        self.label = QLabel()
        self.label.setObjectName("forecastLabel")
        self.label.setWordWrap(True)
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.target = QDoubleSpinBox()
        self.target.setRange(AUTO, 0.99)
        self.target.setSingleStep(0.05)
        self.target.setDecimals(2)
        self.target.setSpecialValueText("auto")
        self.target.setPrefix("")
        self.target.setToolTip("Target IoU of the forecast above (auto: the next 0.05 step above "
                               "the latest held-out IoU)")
        self.target.setValue(AUTO)
        self.target.valueChanged.connect(self._changed)
        row.addWidget(self.label, 1)
        # the target spin box alone (its tooltip names it; the line says "for IoU 0.90"): a
        # label beside it would not fit the versions box of a 1280x720 window in either theme
        self.target_box = QWidget()
        trow = QHBoxLayout(self.target_box)
        trow.setContentsMargins(0, 0, 0, 0)
        trow.setSpacing(4)
        trow.addWidget(self.target)
        # two lines at most, whatever the width: a word-wrapped label's height-for-width would
        # otherwise make the whole dock scroll (the full text is in the tooltip)
        self.label.setFixedHeight(2 * self.label.fontMetrics().lineSpacing() + 2)
        self.forecast: Any = None
        self.shown = False
        self.set_forecast(None)

    def _changed(self, value: float) -> None:
        self.targetChanged.emit(None if value <= AUTO + 1e-9 else round(float(value), 2))

    def set_target(self, target: float | None) -> None:
        """Show the stored target without emitting (None: auto)."""
        self.target.blockSignals(True)
        self.target.setValue(AUTO if target is None else float(target))
        self.target.blockSignals(False)

    def set_forecast(self, forecast: Any) -> None:
        """A segcore.forecast.Forecast, or None (no versions with held-out numbers). Shown from
        three versions on only ("too_few": hidden)."""
        self.forecast = forecast
        shown = forecast is not None and forecast.status != "too_few"
        self.shown = shown
        self.setVisible(shown)
        self.target_box.setVisible(shown)
        if forecast is None:
            self.label.clear()
            return
        self.label.setText(f"Forecast: {forecast.message}")
        self.label.setToolTip(f"Forecast: {forecast.message}\n\n{TIP}")
        curve = forecast.curve
        fit = (f"\nFit: IoU(n) = {curve.a:.3f} − {curve.b:.3f}·n^(−{curve.c:.2f}) on "
               f"{forecast.points} versions; now {forecast.n_now} images, IoU "
               f"{forecast.iou_now:.3f}") if curve is not None and forecast.iou_now is not None else ""
        self.label.setToolTip(self.label.toolTip() + fit)
