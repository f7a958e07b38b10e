"""Help ▸ Shortcuts: every action of the one action table (the window's and the panels') with
its shortcuts and what it does, plus the canvas's mouse gestures."""

from __future__ import annotations

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHeaderView,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from ..actions import Actions

EXTRA_SHORTCUTS: tuple[tuple[str, str, str, str], ...] = (
    ("Canvas", "Zoom", "Wheel", "Zoom around the cursor"),
    ("Canvas", "Brush size", "Ctrl+Wheel", "Change the brush size"),
    ("Canvas", "Pan", "Space+Drag, Middle button", "Move the view with any tool"),
)


class ShortcutsDialog(QDialog):
    def __init__(self, actions: Actions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard Shortcuts")
        self.resize(900, 620)
        rows: list[tuple[str, str, str, str]] = []
        for spec, action in actions.all():
            keys = ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText)
                             for s in action.shortcuts()) or "—"
            rows.append((spec.menu, spec.text.replace("&", "").rstrip("…"), keys, spec.tip))
        rows.extend(EXTRA_SHORTCUTS)
        self.table = QTableWidget(len(rows), 4)
        self.table.setHorizontalHeaderLabels(["Menu", "Action", "Shortcut", "Description"])
        for r, values in enumerate(rows):
            for c, value in enumerate(values):
                self.table.setItem(r, c, QTableWidgetItem(value))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        for c in range(3):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)

    def action_names(self) -> list[str]:
        return [_text(self.table.item(r, 1)) for r in range(self.table.rowCount())]


def _text(item: QTableWidgetItem | None) -> str:
    assert item is not None  # __init__ fills every cell
    return item.text()

