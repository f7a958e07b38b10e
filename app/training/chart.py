"""Live per-epoch chart of a fine-tune run: training loss (left axis) and held-out IoU and
Boundary IoU (right axis, 0–1). x = epoch number over the whole run (the full phase of a
"fast+full" run continues the fast phase's numbering). The parent model's held-out IoU before
training ("start IoU") is a marker at epoch 0, set when the run ends.
"""

from __future__ import annotations

import math

from PySide6.QtCharts import QChart, QChartView, QLineSeries, QScatterSeries, QValueAxis
from PySide6.QtCore import QEvent, QMargins, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QWidget

from segcore.training import EpochReport

LOSS_COLOR = "#f0a030"
IOU_COLOR = "#3d7bfd"
BIOU_COLOR = "#4cc38a"


def nice_step(span: float, max_steps: int) -> tuple[float, int]:
    """The smallest 1/2/2.5/5 x 10^k step giving at most ``max_steps`` steps over ``span``,
    and the decimals its labels need."""
    k = math.floor(math.log10(span / max_steps))
    for base in (1.0, 2.0, 2.5, 5.0, 10.0):
        step = base * 10.0 ** k
        if span / step <= max_steps + 1e-9:
            break
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) + (1 if base == 2.5 else 0)
    return step, decimals


def _series(name: str, color: str, dashed: bool = False) -> QLineSeries:
    s = QLineSeries()
    s.setName(name)
    pen = QPen(QColor(color), 2.2)
    if dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    s.setPen(pen)
    s.setPointsVisible(True)
    return s


class TrainingChart(QChartView):
    """``add(report)`` appends one epoch; ``clear()`` starts a new run."""

    def __init__(self, parent: QWidget | None = None) -> None:
        chart = QChart()
        super().__init__(chart, parent)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setMinimumHeight(170)
        self.setMinimumWidth(180)
        chart.setMargins(QMargins(4, 4, 4, 4))
        chart.setBackgroundRoundness(6)
        chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
        self.loss = _series("loss", LOSS_COLOR)
        self.iou = _series("IoU", IOU_COLOR)
        self.biou = _series("BIoU", BIOU_COLOR, dashed=True)
        self.start = QScatterSeries()  # the starting model's IoU, drawn at epoch 0
        self.start.setName("start")  # the parent model, before training
        self.start.setMarkerSize(9)
        self.start.setColor(QColor(IOU_COLOR))
        self.x_axis = QValueAxis()
        self.x_axis.setTitleText("epoch")
        self.x_axis.setTitleVisible(False)
        self.x_axis.setLabelFormat("%d")
        self.loss_axis = QValueAxis()
        self.loss_axis.setTitleText("loss")
        self.loss_axis.setTitleVisible(False)  # the legend and the label colours say which is which
        self.loss_axis.setTickType(QValueAxis.TickType.TicksDynamic)
        self.loss_axis.setTickAnchor(0.0)
        self.score_axis = QValueAxis()
        self.score_axis.setTitleText("IoU / BIoU")
        self.score_axis.setTitleVisible(False)
        self.score_axis.setRange(0.0, 1.0)
        self.score_axis.setTickType(QValueAxis.TickType.TicksDynamic)
        self.score_axis.setTickAnchor(0.0)
        self.score_axis.setTickInterval(0.25)
        self.score_axis.setLabelFormat("%.2f")  # 0.75, not 0.8
        chart.addAxis(self.x_axis, Qt.AlignmentFlag.AlignBottom)
        chart.addAxis(self.loss_axis, Qt.AlignmentFlag.AlignLeft)
        chart.addAxis(self.score_axis, Qt.AlignmentFlag.AlignRight)
        for s, y in ((self.loss, self.loss_axis), (self.iou, self.score_axis),
                     (self.biou, self.score_axis), (self.start, self.score_axis)):
            chart.addSeries(s)
            s.attachAxis(self.x_axis)
            s.attachAxis(y)
        self.loss_axis.setLabelsColor(QColor(LOSS_COLOR))
        self.score_axis.setLabelsColor(QColor(IOU_COLOR))
        # a narrow dock (1280-px window) must still fit the legend's names: small font, and
        # the start marker explained in the tooltip instead
        font = chart.legend().font()
        font.setPointSizeF(max(7.0, font.pointSizeF() - 1.5))
        chart.legend().setFont(font)
        chart.legend().markers(self.start)[0].setVisible(False)
        self.setToolTip("Per epoch: training loss (left axis) and held-out IoU / Boundary IoU "
                        "(right axis, 0–1). The dot at epoch 0 is the starting model's held-out IoU.")
        self.reports: list[EpochReport] = []
        self.apply_palette()
        self.clear()

    def apply_palette(self) -> None:
        """Follow the widget palette (QtCharts ignores style sheets): background, text, grid."""
        pal = self.palette()
        base, text = pal.color(pal.ColorRole.Base), pal.color(pal.ColorRole.Text)
        muted = pal.color(pal.ColorRole.PlaceholderText)
        chart = self.chart()
        chart.setBackgroundBrush(base)
        chart.setPlotAreaBackgroundVisible(False)
        chart.legend().setLabelColor(text)
        grid = QColor(muted)
        grid.setAlpha(70)
        for axis in (self.x_axis, self.loss_axis, self.score_axis):
            axis.setTitleBrush(muted)
            axis.setGridLineColor(grid)
            axis.setLinePenColor(grid)
        self.x_axis.setLabelsColor(text)
        self.loss_axis.setLabelsColor(QColor(LOSS_COLOR))
        self.score_axis.setLabelsColor(QColor(IOU_COLOR))

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.StyleChange):
            self.apply_palette()

    def clear(self) -> None:
        self.reports = []
        for s in (self.loss, self.iou, self.biou, self.start):
            s.clear()
        self._set_x(5)
        self._set_loss_top(1.0)

    def _set_x(self, n: int) -> None:
        """Epochs 0..n with at most ~6 integer ticks; a little room left of 0 for the start marker."""
        top = max(5, n)
        step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10**9) if top / s <= 6)
        self.x_axis.setTickType(QValueAxis.TickType.TicksDynamic)
        self.x_axis.setTickAnchor(0.0)
        self.x_axis.setTickInterval(step)
        self.x_axis.setRange(-0.04 * top, top + 0.02 * top)

    def set_start(self, iou: float | None) -> None:
        """The untrained (parent) model's held-out IoU as a marker at epoch 0."""
        self.start.clear()
        if iou is not None and math.isfinite(iou):
            self.start.append(0.0, iou)

    def add(self, report: EpochReport) -> None:
        self.reports.append(report)
        x = float(len(self.reports))
        if math.isfinite(report.train_loss):
            self.loss.append(x, report.train_loss)
        if report.val_iou is not None:
            self.iou.append(x, report.val_iou)
        if report.val_biou is not None:
            self.biou.append(x, report.val_biou)
        n = len(self.reports)
        self._set_x(n)
        losses = [p.y() for p in self.loss.points()]
        if losses:
            self._set_loss_top(max(losses) * 1.1)

    def _set_loss_top(self, top: float) -> None:
        """0..top on round ticks (at most 5 steps) with as many decimals as the step needs,
        so no two labels read the same (0.1, 0.1) and none is rounded away."""
        step, decimals = nice_step(max(top, 1e-3), 5)
        self.loss_axis.setTickInterval(step)
        self.loss_axis.setRange(0.0, step * math.ceil(top / step - 1e-9))
        self.loss_axis.setLabelFormat(f"%.{decimals}f")

    def points(self) -> dict[str, list[tuple[float, float]]]:
        """What is drawn, per series (for tests)."""
        return {s.name(): [(p.x(), p.y()) for p in s.points()]
                for s in (self.loss, self.iou, self.biou, self.start)}
