"""The model versions of a project as a table: newest first, the active one marked (● and bold).

Columns: active marker, version, parent, held-out IoU and BIoU as "start → end" (start = the
parent measured on the *same* held-out images before training, metrics 'start_val_iou' /
'start_val_biou'; end = this version, 'val_iou' / 'val_biou'), mode, created (local time).
A dash means "no held-out images in that run".
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

COLUMNS = ("", "Version", "Parent", "IoU", "BIoU", "Mode", "Created")
TIPS = ("● = the active version (used for predictions)", "Model version id",
        "The version this one was fine-tuned from",
        "Held-out IoU: the parent before training → this version after it, on the same held-out "
        "images (– = no held-out images in that run)",
        "Held-out Boundary IoU: the parent before training → this version after it",
        "Training mode of the run (fast = cached encoder features, the decoder and the encoder's "
        "last blocks train; full = all weights)",
        "When the version was saved")


def _fmt(value: Any) -> str:
    if isinstance(value, (int, float)) and value == value:  # not NaN
        return f"{float(value):.3f}"
    return "–"


def _change(start: Any, end: Any) -> str:
    """"0.134 → 0.467" (parent before → this version after), or just the end value."""
    if isinstance(start, (int, float)) and start == start:
        return f"{_fmt(start)} → {_fmt(end)}"
    return _fmt(end)


def version_row(v: Any) -> list[str]:
    """Cell texts of one ModelVersion."""
    metrics = v.metrics or {}
    meta = v.meta or {}
    mode = (meta.get("train_config") or {}).get("mode", "")
    created = time.strftime("%b %d %H:%M", time.localtime(v.created)) if v.created else ""
    return ["●" if v.active else "", f"v{v.id}", f"v{v.parent}" if v.parent is not None else "—",
            _change(metrics.get("start_val_iou"), metrics.get("val_iou")),
            _change(metrics.get("start_val_biou"), metrics.get("val_biou")), mode, created]


class VersionsTable(QTableWidget):
    """``set_versions(list[ModelVersion])``; ``selected_id()``; ``selectionChanged2`` on change."""

    selectedVersionChanged = Signal(object)  # int | None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        for i, tip in enumerate(TIPS):
            self.horizontalHeaderItem(i).setToolTip(tip)
        self.verticalHeader().hide()
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        # Fit the dock's width: short columns fit their contents, the metric and date columns
        # share the rest and elide ("0.612 → 0.8…"); the full text is in each cell's tooltip.
        header = self.horizontalHeader()
        header.setMinimumSectionSize(24)
        for c in range(len(COLUMNS)):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.Stretch if c in (3, 4, 6)
                                        else QHeaderView.ResizeMode.ResizeToContents)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setMinimumHeight(110)
        self._ids: list[int] = []
        self.itemSelectionChanged.connect(lambda: self.selectedVersionChanged.emit(self.selected_id()))

    def set_versions(self, versions: list[Any]) -> None:
        keep = self.selected_id()
        rows = sorted(versions, key=lambda v: v.id, reverse=True)
        self.blockSignals(True)
        self.setRowCount(len(rows))
        self._ids = [v.id for v in rows]
        bold = QFont(self.font())
        bold.setBold(True)
        for r, v in enumerate(rows):
            for c, text in enumerate(version_row(v)):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter if c < 5 else
                                      Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
                if v.active:
                    item.setFont(bold)
                item.setToolTip(self._tooltip(v))
                self.setItem(r, c, item)
        self.blockSignals(False)
        if keep in self._ids:
            self.selectRow(self._ids.index(keep))
        self.selectedVersionChanged.emit(self.selected_id())

    @staticmethod
    def _tooltip(v: Any) -> str:
        meta = v.meta or {}
        data = meta.get("data") or {}
        m = v.metrics or {}
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v.created)) if v.created else "?"
        lines = [f"v{v.id} ({v.arch}) — {v.file}, saved {created}" + ("  [active]" if v.active else "")]
        cells = version_row(v)
        lines.append(f"held-out IoU {cells[3]}, BIoU {cells[4]}, mode {cells[5] or '?'}")
        if data:
            lines.append(f"trained on {len(data.get('train', []))} images, "
                         f"{len(data.get('held_out', []))} held out")
        if m.get("stopped_reason"):
            lines.append(f"stopped: {m['stopped_reason']} after {m.get('seconds', '?')} s")
        return "\n".join(lines)

    def selected_id(self) -> int | None:
        rows = self.selectionModel().selectedRows() if self.selectionModel() else []
        return self._ids[rows[0].row()] if rows and rows[0].row() < len(self._ids) else None

    def select_version(self, version_id: int) -> None:
        if version_id in self._ids:
            self.selectRow(self._ids.index(version_id))

    def ids(self) -> list[int]:
        return list(self._ids)
