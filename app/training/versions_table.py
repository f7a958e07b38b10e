"""The model versions of a project as a table: newest first, the active one marked (● and bold).

Columns: "● v3 ← v2" (active marker, version, parent; a version with no parent starts a lineage
and says so with its architecture's short name: "v4 new U-Net" — what switching architecture
in Advanced makes), held-out IoU and BIoU of this version
('val_iou' / 'val_biou'), "vs parent" (IoU change on the images held out for both, and on how
many: segcore.loop.compare_versions); the save time is in the row tooltip. Each row's tooltip adds the parent's
scores on the *same* held-out images before training ('start_val_*') and the mode. A dash
means "no held-out images in that run".
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QItemSelectionModel, QSize, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from segcore.models import short_name

COLUMNS = ("Version", "IoU", "BIoU", "Δ")
TIPS = ("Model version ← the version it was fine-tuned from; ● and bold = the active version "
        "(used for predictions)",
        "Held-out IoU of this version (the tooltip has the parent's score on the same images)",
        "Held-out Boundary IoU of this version",
        "IoU change from the parent version, measured on the images held out for both "
        "(\"+0.12 /3\": on 3 images); the save time is in the row's tooltip")


def _fmt(value: Any) -> str:
    if isinstance(value, (int, float)) and value == value:  # not NaN
        return f"{float(value):.3f}"
    return "–"


def _change(start: Any, end: Any) -> str:
    """"0.134 → 0.467" (parent before → this version after), or just the end value."""
    if isinstance(start, (int, float)) and start == start:
        return f"{_fmt(start)} → {_fmt(end)}"
    return _fmt(end)


def versus_parent(v: Any, parent: Any) -> tuple[str, str]:
    """("+0.12 /3", tooltip line) comparing ``v`` with ``parent`` on the images held out for
    both (segcore.loop.compare_versions); ("–", reason) when they share none."""
    from segcore.loop import compare_versions

    if parent is None:
        return "–", "no parent version to compare with"
    c = compare_versions(v, parent)
    if c is None or c["a_iou"] is None or c["b_iou"] is None:
        return "–", f"no held-out images shared with v{parent.id}"
    delta = c["a_iou"] - c["b_iou"]
    return (f"{delta:+.2f} /{c['n']}",
            f"IoU v{parent.id} {c['b_iou']:.3f} → v{v.id} {c['a_iou']:.3f} on the {c['n']} "
            f"image{'s' if c['n'] != 1 else ''} held out for both")


def version_row(v: Any, parent: Any = None) -> list[str]:
    """Cell texts of one ModelVersion: short enough for the Training dock."""
    metrics = v.metrics or {}
    version = ("● " if v.active else "") + f"v{v.id}" + (f" ← v{v.parent}" if v.parent is not None
                                                         else f" new {short_name(v.arch)}")
    return [version, _fmt(metrics.get("val_iou")), _fmt(metrics.get("val_biou")),
            versus_parent(v, parent)[0]]


def version_details(v: Any) -> str:
    """The line the cells leave out: parent → this version on the same held-out images, mode."""
    m, meta = v.metrics or {}, v.meta or {}
    mode = (meta.get("train_config") or {}).get("mode", "?")
    return (f"held-out IoU {_change(m.get('start_val_iou'), m.get('val_iou'))}, "
            f"BIoU {_change(m.get('start_val_biou'), m.get('val_biou'))} (parent before → this "
            f"version after, same images); mode {mode}"
            + ("; not activated: surely worse than its parent on those images" if m.get("kept_parent") else ""))


class VersionsTable(QTableWidget):
    """``set_versions(list[ModelVersion])``; ``selected_id()`` / ``selected_ids()``;
    ``selectedVersionChanged`` on change."""

    selectedVersionChanged = Signal(object)  # int | None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        for i, tip in enumerate(TIPS):
            header_item = self.horizontalHeaderItem(i)
            assert header_item is not None  # made by setHorizontalHeaderLabels above
            header_item.setToolTip(tip)
        self.verticalHeader().hide()
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # two rows (Ctrl/Shift+click) can be compared image by image (Compare…)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        # Short cells sized to their contents fit the Training dock without scrolling; the
        # parent's scores and the mode are in each row's tooltip (see version_details).
        header = self.horizontalHeader()
        header.setMinimumSectionSize(20)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.setMinimumHeight(84)  # header + 2 rows (panel.VERSIONS_MIN); a 1280x720 window still shows the buttons
        self._ids: list[int] = []
        self.itemSelectionChanged.connect(lambda: self.selectedVersionChanged.emit(self.selected_id()))

    def sizeHint(self) -> QSize:
        # QTableWidget's default (~192 px tall) made the whole Training panel ask for that
        # height, so a 1280x720 window scrolled the dock; the table grows with the dock anyway
        hint = super().sizeHint()
        return QSize(hint.width(), self.minimumHeight())

    def set_versions(self, versions: list[Any]) -> None:
        keep = self.selected_ids()
        rows = sorted(versions, key=lambda v: v.id, reverse=True)
        self.blockSignals(True)
        self.setRowCount(len(rows))
        self._ids = [v.id for v in rows]
        bold = QFont(self.font())
        bold.setBold(True)
        by_id = {v.id: v for v in rows}
        for r, v in enumerate(rows):
            parent = by_id.get(v.parent) if v.parent is not None else None
            for c, text in enumerate(version_row(v, parent)):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter if 0 < c < 4 else
                                      Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
                if v.active:
                    item.setFont(bold)
                item.setToolTip(self._tooltip(v) + "\n" + versus_parent(v, parent)[1])
                self.setItem(r, c, item)
        self.blockSignals(False)
        self.select_versions(keep)
        self.selectedVersionChanged.emit(self.selected_id())

    def select_versions(self, ids: list[int]) -> None:
        """Select exactly the rows of ``ids`` (those still listed)."""
        model, flags = self.selectionModel(), QItemSelectionModel.SelectionFlag
        model.clearSelection()
        for vid in ids:
            if vid in self._ids:
                model.select(self.model().index(self._ids.index(vid), 0), flags.Select | flags.Rows)

    @staticmethod
    def _tooltip(v: Any) -> str:
        meta = v.meta or {}
        data = meta.get("data") or {}
        m = v.metrics or {}
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v.created)) if v.created else "?"
        lines = [f"v{v.id} ({v.arch}) — {v.file}, saved {created}" + ("  [active]" if v.active else "")]
        if v.parent is None:
            lines.append(f"new lineage: a fresh {v.arch} (not fine-tuned from an earlier version)")
        lines.append(version_details(v))
        if data:
            lines.append(f"trained on {len(data.get('train', []))} images, "
                         f"{len(data.get('held_out', []))} held out")
        if m.get("stopped_reason"):
            lines.append(f"stopped: {m['stopped_reason']} after {m.get('seconds', '?')} s")
        return "\n".join(lines)

    def selected_id(self) -> int | None:
        """The selected version when exactly one row is selected, else None."""
        ids = self.selected_ids()
        return ids[0] if len(ids) == 1 else None

    def selected_ids(self) -> list[int]:
        """Every selected version, oldest first."""
        rows = self.selectionModel().selectedRows() if self.selectionModel() else []
        return sorted(self._ids[r.row()] for r in rows if r.row() < len(self._ids))

    def select_version(self, version_id: int) -> None:
        if version_id in self._ids:
            self.selectRow(self._ids.index(version_id))

    def ids(self) -> list[int]:
        return list(self._ids)
