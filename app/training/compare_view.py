"""The version comparison window: every held-out and done image under two versions, the largest
drop first ("which images got worse"), and a legend for the diff it opens on the canvas.

Pure view: the controller starts the work (app/training/compare_worker.py) and calls
``set_running`` / ``set_progress`` / ``set_changes`` / ``set_error``; the view emits
``openRequested(stem)`` on a double-click (or Return) and ``cancelRequested``.
Columns: Image, Status (held out / trained on by vA / vB / both / done since), IoU A, IoU B, Δ
(= IoU B − IoU A), BIoU A, BIoU B; multi-class projects show per-image mIoU.
"""

from __future__ import annotations

from typing import Any, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QHBoxLayout, QHeaderView, QLabel, QProgressBar,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

# diff layer colours of segcore.compare's codes ONLY_A, ONLY_B, NEITHER (one place)
ONLY_A_COLOR = (255, 150, 20)    # only A agrees with the mask
ONLY_B_COLOR = (30, 190, 255)    # only B agrees with the mask
NEITHER_COLOR = (210, 70, 255)   # they differ and both are wrong (multi-class)
DIFF_COLORS = (ONLY_A_COLOR, ONLY_B_COLOR, NEITHER_COLOR)
COLOR_NAMES = ("orange", "blue", "purple")
WORSE = -0.02                    # a drop beyond this counts as "worse" in the summary line
COLUMNS = ("Image", "Status", "IoU A", "IoU B", "Δ", "BIoU A", "BIoU B")


def _fmt(v: float | None, sign: bool = False) -> str:
    if v is None:
        return "–"
    return f"{v:+.3f}" if sign else f"{v:.3f}"


def summary(changes: Sequence[Any], a: int, b: int, metric: str = "IoU") -> str:
    """"v2 → v3 on 10 images: 3 worse, 5 better, 2 unchanged (±0.02)"."""
    deltas = [c.delta for c in changes if c.delta is not None]
    worse = sum(d < WORSE for d in deltas)
    better = sum(d > -WORSE for d in deltas)
    text = (f"v{a} (A) → v{b} (B) on {len(changes)} image{'s' if len(changes) != 1 else ''}: "
            f"{worse} worse, {better} better, {len(deltas) - worse - better} about the same "
            f"(±{-WORSE:.2f} {metric})")
    failed = len(changes) - len(deltas)
    return text + (f"; {failed} could not be scored" if failed else "")


def _swatch(rgb: tuple[int, int, int]) -> QLabel:
    pix = QPixmap(12, 12)
    pix.fill(QColor(*rgb))
    label = QLabel()
    label.setPixmap(pix)
    return label


class _Table(QTableWidget):
    activatedRow = Signal(int)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentRow() >= 0:
            self.activatedRow.emit(self.currentRow())
            return
        super().keyPressEvent(event)


class CompareDialog(QDialog):
    openRequested = Signal(str)
    cancelRequested = Signal()

    def __init__(self, a: int, b: int, multiclass: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.a, self.b = a, b
        self.metric_name = "mIoU" if multiclass else "IoU"
        self.setObjectName("compareDialog")
        self.setWindowTitle(f"Compare v{a} and v{b}")
        self.setModal(False)
        self.resize(640, 460)
        col = QVBoxLayout(self)
        self.header = QLabel()
        self.header.setWordWrap(True)
        col.addWidget(self.header)
        row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m images")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancelRequested)
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        col.addLayout(row)
        self.table = _Table(0, len(COLUMNS))
        names = [c.replace("IoU", self.metric_name) if c.startswith("IoU") else c for c in COLUMNS]
        names[4] = f"Δ {self.metric_name}"
        self.table.setHorizontalHeaderLabels(names)
        tips = ("Image (double-click: open it with both predictions as a diff)",
                "held out: neither version trained on it; trained on by …: it was training data",
                f"{self.metric_name} of v{a} against your mask", f"{self.metric_name} of v{b} against your mask",
                f"{self.metric_name} of v{b} − v{a}: negative = worse with v{b}; the largest drop first",
                f"Boundary IoU of v{a}", f"Boundary IoU of v{b}")
        for i, tip in enumerate(tips):
            header_item = self.table.horizontalHeaderItem(i)
            assert header_item is not None  # made by setHorizontalHeaderLabels above
            header_item.setToolTip(tip)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.cellDoubleClicked.connect(lambda r, _c: self._open(r))
        self.table.activatedRow.connect(self._open)
        col.addWidget(self.table, 1)
        legend = QHBoxLayout()
        legend.setSpacing(4)
        hint = QLabel("Double-click an image: the canvas shows where the two predictions differ —")
        hint.setObjectName("mutedLabel")
        legend.addWidget(hint)
        self.legend_labels: list[QLabel] = []
        self.legend_names: list[str] = []
        for rgb, name, text in zip(DIFF_COLORS, COLOR_NAMES,
                                   (f"only v{a} right", f"only v{b} right", "both wrong")):
            if rgb is NEITHER_COLOR and not multiclass:
                continue  # binary: where two predictions differ, exactly one is right
            legend.addWidget(_swatch(rgb))
            label = QLabel(text)
            label.setToolTip(f"{name}: {text}")
            self.legend_labels.append(label)
            self.legend_names.append(f"{name} = {text}")
            legend.addWidget(label)
        legend.addStretch(1)
        col.addLayout(legend)
        self.stems: list[str] = []
        self.changes: list[Any] = []
        self.set_running(True)

    def legend_text(self) -> str:
        """"orange = only v2 right, blue = only v3 right" (the status bar repeats it)."""
        return ", ".join(self.legend_names)

    def set_running(self, running: bool) -> None:
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        if running:
            self.header.setText(f"Scoring v{self.a} and v{self.b} on every held-out and done image "
                                f"(predicting the ones without stored scores)…")
            self.progress.setRange(0, 0)

    def set_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def set_error(self, text: str) -> None:
        self.set_running(False)
        self.header.setText(f"⚠ {text}")

    def set_changes(self, changes: Sequence[Any], cancelled: bool = False) -> None:
        """Rows in the order given (segcore.compare sorts them: the largest drop first)."""
        self.set_running(False)
        self.changes = list(changes)
        self.stems = [c.stem for c in changes]
        self.table.setRowCount(len(changes))
        bad, good = QColor(230, 80, 60), QColor(40, 170, 90)
        for r, c in enumerate(changes):
            cells = (c.stem, c.status, _fmt(c.iou_a), _fmt(c.iou_b), _fmt(c.delta, True),
                     _fmt(c.biou_a), _fmt(c.biou_b))
            for i, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if i >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if i == 4 and c.delta is not None and abs(c.delta) > -WORSE:
                    item.setForeground(bad if c.delta < 0 else good)
                tip = c.error or ("stored held-out scores of the two fine-tunes" if c.stored
                                  else "both versions predicted this image (no DenseCRF)")
                item.setToolTip(f"{c.stem}: {tip}")
                self.table.setItem(r, i, item)
        text = summary(changes, self.a, self.b, self.metric_name)
        if cancelled:
            text = f"Cancelled: {text}"
        if not changes:
            text = "No held-out or done images to compare (mark some images done first)."
        self.header.setText(text)

    def _open(self, row: int) -> None:
        if 0 <= row < len(self.stems):
            self.openRequested.emit(self.stems[row])

    def row_texts(self) -> list[list[str]]:
        return [[_text(self.table.item(r, c)) for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]


def _text(item: QTableWidgetItem | None) -> str:
    assert item is not None  # set_changes fills every cell
    return item.text()
