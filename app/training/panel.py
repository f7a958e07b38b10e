"""The training dock: Fine-tune / Cancel, progress with ETA, live chart, held-out share, versions.

Pure view. It emits ``fineTuneRequested``, ``cancelRequested``, ``activateRequested(id)``,
``rollbackRequested``, ``compareRequested(a, b)`` (a the earlier version) and the forecast's
``forecast.targetChanged``; the controller (app/training/controller.py) does the work and calls the
``set_*`` / ``add_epoch`` methods back. Nothing here touches the project or threads.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QBoxLayout, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton,
                               QSizePolicy, QVBoxLayout, QWidget)

from segcore.training import EpochReport, TrainConfig

from .advanced import AdvancedSettings
from .chart import TrainingChart
from .forecast_view import ForecastLine
from .versions_table import VersionsTable

NO_HELD_OUT = "too few done images to hold any out — no held-out numbers"
MAX_NAMES_IN_TIP = 40
RUN_BOX_WIDTH = 230
PROGRESS_STEPS = 1000
VERSIONS_MIN = 84                # versions table: header + 2 rows
VERSIONS_MIN_WITH_FORECAST = 56  # header + 1 row


def format_eta(seconds: float) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "estimating…"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min left"
    if seconds >= 60:  # whole minutes: the seconds of an estimate are noise, and cost width
        return f"{round(seconds / 60)} min left"
    return f"{seconds} s left"


def _fmt(value: float | None) -> str:
    return "–" if value is None or value != value else f"{value:.3f}"


class TrainingPanel(QWidget):
    fineTuneRequested = Signal()
    cancelRequested = Signal()
    activateRequested = Signal(int)
    rollbackRequested = Signal()
    compareRequested = Signal(int, int)  # earlier version, later version

    def __init__(self, settings: Any | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingPanel")
        self.box_layout = QBoxLayout(QBoxLayout.Direction.TopToBottom, self)
        self.box_layout.setContentsMargins(8, 2, 8, 4)
        self.box_layout.setSpacing(6)
        self.run_box = self._run_box(settings)
        self.chart_box = self._chart_box()
        self.versions_box = self._versions_box()
        self.box_layout.addWidget(self.run_box)
        self.box_layout.addWidget(self.chart_box, 2)
        self.box_layout.addWidget(self.versions_box, 3)  # its table needs ~265 px for 4 columns
        self._running = False
        self._can_train = False
        self._active_id: int | None = None
        self._active_parent: int | None = None
        self._parents: dict[int, int | None] = {}
        self.set_can_train(False, "Open a project first")
        self.set_running(False)

    # -- construction -----------------------------------------------------------------------
    def _run_box(self, settings: Any | None) -> QGroupBox:
        box = QGroupBox("Fine-tune")
        col = QVBoxLayout(box)
        col.setSpacing(4)
        row = QHBoxLayout()
        self.train_button = QPushButton("Fine-tune")
        self.train_button.setObjectName("primary")
        self.train_button.clicked.connect(self.fineTuneRequested)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop training; the current model stays active")
        self.cancel_button.clicked.connect(self.cancelRequested)
        row.addWidget(self.train_button, 1)
        row.addWidget(self.cancel_button)
        col.addLayout(row)
        self.advanced = AdvancedSettings(settings)
        col.addWidget(self.advanced)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("%p%")
        self.progress.setToolTip("Share of the run done (by the time budget, else by steps)")
        self.eta_label = QLabel()
        self.eta_label.setObjectName("mutedLabel")
        prow = QHBoxLayout()
        prow.addWidget(self.progress, 1)
        prow.addWidget(self.eta_label)
        col.addLayout(prow)
        self.status_label = QLabel("Correct a few images, then fine-tune the model on them.")
        self.status_label.setWordWrap(True)
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        col.addWidget(self.status_label)
        self.held_out_label = QLabel()
        self.held_out_label.setWordWrap(True)
        self.held_out_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        col.addWidget(self.held_out_label)
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        self.result_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        col.addWidget(self.result_label)
        self.class_scores_label = QLabel()  # multi-class: per-class IoU, mean and the worst
        self.class_scores_label.setObjectName("sectionHint")
        self.class_scores_label.setWordWrap(True)
        self.class_scores_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.class_scores_label.hide()
        col.addWidget(self.class_scores_label)
        self.repredict_label = QLabel()
        self.repredict_label.setObjectName("mutedLabel")
        self.repredict_label.setWordWrap(True)
        self.repredict_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        col.addWidget(self.repredict_label)
        self.repredict_label.hide()
        col.addStretch(1)
        return box

    def _chart_box(self) -> QGroupBox:
        box = QGroupBox("Loss, held-out IoU / BIoU")
        col = QVBoxLayout(box)
        col.setContentsMargins(4, 8, 4, 4)
        self.chart = TrainingChart()
        col.addWidget(self.chart, 1)
        return box

    def set_horizontal(self, horizontal: bool) -> None:
        """Side by side (bottom/top dock) or stacked (left/right dock, floating)."""
        d = QBoxLayout.Direction
        self.box_layout.setDirection(d.LeftToRight if horizontal else d.TopToBottom)
        self.run_box.setFixedWidth(RUN_BOX_WIDTH) if horizontal else self.run_box.setMaximumWidth(16777215)
        if not horizontal:
            self.run_box.setMinimumWidth(0)

    def _versions_box(self) -> QGroupBox:
        box = QGroupBox("Model versions")
        col = QVBoxLayout(box)
        self.versions = VersionsTable()
        self.versions.selectedVersionChanged.connect(lambda _id: self._update_version_buttons())
        self.versions.doubleClicked.connect(lambda _i: self._activate_selected())
        col.addWidget(self.versions, 1)
        self.forecast = ForecastLine()
        col.addWidget(self.forecast)
        # Compare… and the forecast's target on a row of their own: three buttons in one row
        # would widen the dock past a 1280x720 window (in either theme)
        crow = QHBoxLayout()
        self.compare_button = QPushButton("Compare…")
        self.compare_button.clicked.connect(self._compare_selected)
        crow.addWidget(self.compare_button)
        crow.addStretch(1)
        crow.addWidget(self.forecast.target_box)
        col.addLayout(crow)
        row = QHBoxLayout()
        self.activate_button = QPushButton("Activate")
        self.activate_button.setToolTip("Use the selected version for predictions "
                                        "(uncorrected images are predicted again)")
        self.activate_button.clicked.connect(self._activate_selected)
        self.rollback_button = QPushButton("Roll back")
        self.rollback_button.setToolTip("Activate the active version's parent")
        self.rollback_button.clicked.connect(self.rollbackRequested)
        row.addStretch(1)
        row.addWidget(self.activate_button)
        row.addWidget(self.rollback_button)
        col.addLayout(row)
        return box

    # -- run state --------------------------------------------------------------------------
    def set_can_train(self, can: bool, tip: str) -> None:
        """Whether a run may start now, and why (the button's tooltip)."""
        self._can_train = can
        self.train_button.setToolTip(tip)
        self._update_run_buttons()

    def set_running(self, running: bool) -> None:
        self._running = running
        self.advanced.setEnabled(not running)
        self.eta_label.setVisible(running)
        self.status_label.setVisible(running or not self.result_label.text())
        if running:
            self.progress.setRange(0, 0)  # busy until the first step arrives
            self.progress.setValue(0)
            self.eta_label.setText("starting…")
        self._update_run_buttons()
        self._update_version_buttons()

    def is_running(self) -> bool:
        return self._running

    def _update_run_buttons(self) -> None:
        self.train_button.setEnabled(self._can_train and not self._running)
        self.train_button.setText("Training…" if self._running else "Fine-tune")
        self.cancel_button.setEnabled(self._running)

    def start_run(self, config: TrainConfig, parent_label: str) -> None:
        self.chart.clear()
        self.result_label.clear()
        self.set_status(f"Fine-tuning {parent_label} ({config.mode}"
                        f"{f', {config.time_budget_s:g} s' if config.time_budget_s else ''}"
                        f"{f', {config.epochs} epochs' if config.epochs else ''}, "
                        f"{config.input_size} px)…")
        self.set_running(True)

    def set_progress(self, step: int, total: int, eta_s: float, elapsed_s: float = float("nan")) -> None:
        """Share of the run done: by time (elapsed / (elapsed + ETA)) when both are known, as
        the step total is only an estimate per phase; else by steps."""
        if math.isfinite(eta_s) and math.isfinite(elapsed_s) and elapsed_s + eta_s > 0:
            fraction = elapsed_s / (elapsed_s + eta_s)
        else:
            fraction = step / max(total, step, 1)
        self._set_fraction(fraction)
        self.eta_label.setText(format_eta(eta_s))

    def _set_fraction(self, fraction: float) -> None:
        """Never moves backwards; 100 % only when the run has finished."""
        value = round(min(max(fraction, 0.0), 0.99) * PROGRESS_STEPS)
        if self.progress.maximum() != PROGRESS_STEPS:
            self.progress.setRange(0, PROGRESS_STEPS)
            self.progress.setValue(value)
        elif value > self.progress.value():
            self.progress.setValue(value)

    def finish_progress(self, done: bool) -> None:
        self.progress.setRange(0, PROGRESS_STEPS)
        self.progress.setValue(PROGRESS_STEPS if done else 0)
        self.eta_label.clear()

    def add_epoch(self, report: EpochReport) -> None:
        self.chart.add(report)
        if report.val_iou is not None:
            text = (f"{report.phase} epoch {report.epoch}: loss {report.train_loss:.3f}, "
                    f"held-out IoU {_fmt(report.val_iou)}, BIoU {_fmt(report.val_biou)}")
        else:
            text = f"{report.phase} epoch {report.epoch}: loss {report.train_loss:.3f}"
        self.set_status(text)
        if math.isfinite(report.eta_s) and self._running:
            self.eta_label.setText(format_eta(report.eta_s))
            if report.elapsed_s + report.eta_s > 0:
                self._set_fraction(report.elapsed_s / (report.elapsed_s + report.eta_s))

    def set_status(self, text: str) -> None:
        self.status_label.setText(text)
        self.status_label.setToolTip(text)
        # after a run the result line says how it ended ("Training finished." would repeat it)
        self.status_label.setVisible(self._running or not self.result_label.text())

    def set_result(self, text: str, error: bool = False, detail: str = "") -> None:
        # the result says how the run ended: the status line ("Training finished.") would
        # only repeat it and cost the dock a line; ``detail`` goes to the tooltip only
        self.result_label.setText(f"⚠ {text}" if error else text)
        self.status_label.setVisible(self._running or not text)
        self.result_label.setToolTip(f"{text}\n{detail}" if detail else text)
        self.result_label.setStyleSheet("color: #ff8a7a;" if error else "")

    def set_class_scores(self, scores: dict | None, bscores: dict | None = None) -> None:
        """Per-class held-out IoU and Boundary IoU, each as its mean and the worst classes:
        'Per class (held out): IoU mean 0.55 · worst dog 0.12, cat 0.30. BIoU mean 0.40 · …'."""
        from segcore.loop import worst_classes

        parts = []
        for name, values in (("IoU", scores), ("BIoU", bscores)):
            valid = [v for v in (values or {}).values() if v is not None]
            if not valid:
                continue
            worst = ", ".join(f"{k} {v:.2f}" for k, v in worst_classes(values or {}))
            parts.append(f"{name} mean {sum(valid) / len(valid):.2f}" + (f" · worst {worst}" if worst else ""))
        if not parts:
            self.class_scores_label.hide()
            return
        self.class_scores_label.setText("Per class (held out): " + ". ".join(parts))
        b = bscores or {}

        def fmt(v: float | None) -> str:
            return "–" if v is None else f"{v:.3f}"
        self.class_scores_label.setToolTip("class: IoU / BIoU\n" + "\n".join(
            f"{k}: {fmt(v)} / {fmt(b.get(k))}" for k, v in (scores or {}).items()))
        self.class_scores_label.show()

    def set_start_iou(self, iou: float | None) -> None:
        self.chart.set_start(iou)

    def set_held_out(self, train: Sequence[str], held: Sequence[str]) -> None:
        """Which done images are held out (never trained on; they give the numbers)."""
        if not train and not held:
            self.held_out_label.setText("No done images yet.")
            self.held_out_label.setToolTip("")
        elif not held:
            self.held_out_label.setText(f"{len(train)} done: {NO_HELD_OUT}.")
            self.held_out_label.setToolTip("At least 4 done images are needed before some "
                                           "can be held out for honest IoU / BIoU numbers.")
        else:
            names = list(held)
            shown = ", ".join(names[:MAX_NAMES_IN_TIP]) + (" …" if len(names) > MAX_NAMES_IN_TIP else "")
            self.held_out_label.setText(
                f"Held out: {len(held)} of {len(train) + len(held)} done "
                f"({', '.join(names[:2])}{', …' if len(names) > 2 else ''})")
            self.held_out_label.setToolTip("Held-out images are measured, never trained on (each "
                                           "image's role is fixed when it is first done; Image ▸ "
                                           "Use for Training moves one):\n"
                                           f"{shown}")

    def set_repredict(self, text: str | None) -> None:
        self.repredict_label.setVisible(bool(text))
        self.repredict_label.setText(text or "")

    # -- versions ---------------------------------------------------------------------------
    def set_forecast(self, forecast: Any) -> None:
        """The effort forecast (segcore.forecast.Forecast or None) under the versions table; while
        it is shown the table may shrink to one row (it scrolls), so the dock still fits 720 px."""
        self.forecast.set_forecast(forecast)
        self.versions.setMinimumHeight(VERSIONS_MIN_WITH_FORECAST if self.forecast.shown else VERSIONS_MIN)

    def set_versions(self, versions: list[Any]) -> None:
        active = next((v for v in versions if v.active), None)
        self._active_id = active.id if active else None
        self._active_parent = active.parent if active else None
        self._parents = {v.id: v.parent for v in versions}
        self.versions.set_versions(versions)
        self._update_version_buttons()

    def _update_version_buttons(self) -> None:
        sel = self.versions.selected_id()
        self.activate_button.setEnabled(not self._running and sel is not None and sel != self._active_id)
        self.rollback_button.setEnabled(not self._running and self._active_parent is not None)
        self.rollback_button.setToolTip(
            f"Activate v{self._active_parent}, the parent of the active version"
            if self._active_parent is not None else "The active version has no parent to roll back to")
        pair = self.compare_pair()
        self.compare_button.setEnabled(pair is not None)
        self.compare_button.setToolTip(
            f"Compare v{pair[0]} and v{pair[1]} image by image: which images got worse" if pair else
            "Select two versions (Ctrl+click), or one with a parent, to compare them image by image")

    def compare_pair(self) -> tuple[int, int] | None:
        """What Compare… compares: the two selected versions; one selected and its parent; with
        no selection, the active version and its parent. None when there is no such pair."""
        ids = self.versions.selected_ids()
        if len(ids) == 2:
            return ids[0], ids[1]
        one = ids[0] if len(ids) == 1 else (self._active_id if not ids else None)
        parent = self._parents.get(one) if one is not None else None
        return (parent, one) if one is not None and parent is not None else None

    def _compare_selected(self) -> None:
        pair = self.compare_pair()
        if pair is not None:
            self.compareRequested.emit(*pair)

    def _activate_selected(self) -> None:
        sel = self.versions.selected_id()
        if sel is not None and not self._running and sel != self._active_id:
            self.activateRequested.emit(sel)
