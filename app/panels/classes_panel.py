"""The Classes dialog (Tools ▸ Classes…, or "Classes…" in the Tools panel): add, rename (double
click), recolour (QColorDialog), reorder and delete/merge classes. Index 0 is background and
stays first. Changes that move class indices rewrite the masks after a confirmation
(segcore.classes.change_classes: originals backed up under .segloop/backup/, atomic writes)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (QColorDialog, QDialog, QDialogButtonBox, QHBoxLayout, QInputDialog,
                               QLabel, QListWidget, QListWidgetItem, QMessageBox, QPushButton,
                               QVBoxLayout, QWidget)

from segcore.classes import VOID, change_classes, next_color
from segcore.project import ClassInfo


@dataclass
class _Entry:
    name: str
    color: tuple[int, int, int]
    old: int | None  # index before this edit; None for an added class


class ClassesDialog(QDialog):
    def __init__(self, project: Any, parent: QWidget | None = None,
                 ask: bool = True) -> None:
        super().__init__(parent)
        self.setWindowTitle("Classes")
        self.setObjectName("classesDialog")
        self.project = project
        self.ask = ask  # tests turn the confirmations off and check what they would say
        self.entries = [_Entry(c.name, tuple(c.color), i) for i, c in enumerate(project.classes)]
        self.merged: dict[int, _Entry | None] = {}  # deleted old index -> kept entry (None = void)
        self.backup: Path | None = None
        self.last_confirmation = ""
        self.list = QListWidget()
        self.list.setObjectName("classList")
        self.list.itemChanged.connect(self._renamed)
        self.list.itemDoubleClicked.connect(self.list.editItem)
        buttons = QVBoxLayout()
        self.add_button = QPushButton("Add class")
        self.color_button = QPushButton("Colour…")
        self.up_button = QPushButton("Move up")
        self.down_button = QPushButton("Move down")
        self.delete_button = QPushButton("Delete / merge…")
        for b, fn in ((self.add_button, self.add_class), (self.color_button, self.recolour),
                      (self.up_button, lambda: self.move_class(-1)), (self.down_button, lambda: self.move_class(1)),
                      (self.delete_button, self.delete)):
            b.clicked.connect(fn)
            buttons.addWidget(b)
        buttons.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(self.list, 1)
        row.addLayout(buttons)
        hint = QLabel("Index 0 is the background; keys 1–9 pick a class while painting. "
                      "“void” (mask value 255) marks pixels as not labelled: never trained on "
                      "or scored. Double-click a name to rename it.")
        hint.setWordWrap(True)
        hint.setObjectName("sectionHint")
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                               | QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.apply)
        box.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(hint)
        layout.addWidget(box)
        self.list.currentRowChanged.connect(self._sync_buttons)
        self._fill()
        self.resize(460, 360)

    # -- list -------------------------------------------------------------------------------
    def _fill(self, select: int | None = None) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for i, e in enumerate(self.entries):
            pm = QPixmap(16, 16)
            pm.fill(QColor(*e.color))
            item = QListWidgetItem(QIcon(pm), e.name)
            item.setData(Qt.ItemDataRole.UserRole, i)
            item.setToolTip(f"index {i}" + (" (background)" if i == 0 else "")
                            + (f", was {e.old}" if e.old is not None and e.old != i else ""))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            self.list.addItem(item)
        pm = QPixmap(16, 16)
        pm.fill(QColor(128, 128, 128, 90))
        void = QListWidgetItem(QIcon(pm), "void — not labelled (255, fixed)")
        void.setFlags(Qt.ItemFlag.NoItemFlags)
        void.setToolTip("Mask value 255: never trained on or scored (partial labels)")
        self.list.addItem(void)
        self.list.blockSignals(False)
        if select is not None:
            self.list.setCurrentRow(select)
        self._sync_buttons()

    def _sync_buttons(self, *_: Any) -> None:
        r = self.list.currentRow()
        if r >= len(self.entries):
            r = -1
        self.color_button.setEnabled(r >= 0)
        self.delete_button.setEnabled(r >= 1 and len(self.entries) > 2)
        self.up_button.setEnabled(r >= 2)
        self.down_button.setEnabled(1 <= r < len(self.entries) - 1)

    def _renamed(self, item: QListWidgetItem) -> None:
        i = int(item.data(Qt.ItemDataRole.UserRole))
        name = item.text().strip()
        if name:
            self.entries[i].name = name
        else:
            self._fill(i)

    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    # -- edits ------------------------------------------------------------------------------
    def add_class(self, name: str | None = None) -> None:
        n = len(self.entries)
        self.entries.append(_Entry(name or f"class {n}",
                                   next_color([ClassInfo(e.name, e.color) for e in self.entries]),
                                   None))
        self._fill(n)

    def rename(self, row: int, name: str) -> None:
        self.entries[row].name = name
        self._fill(row)

    def recolour(self, color: QColor | None = None) -> None:
        r = self.list.currentRow()
        if r < 0:
            return
        if color is None:
            color = QColorDialog.getColor(QColor(*self.entries[r].color), self, "Class colour")
        if color.isValid():
            self.entries[r].color = (color.red(), color.green(), color.blue())
            self._fill(r)

    def move_class(self, delta: int) -> None:  # not ``move``: that is QWidget.move(x, y)
        r = self.list.currentRow()
        t = r + delta
        if r < 1 or not 1 <= t < len(self.entries):
            return
        self.entries[r], self.entries[t] = self.entries[t], self.entries[r]
        self._fill(t)

    def delete(self, target: str | None = None) -> None:
        """Delete the selected class; its pixels go to ``target`` (a class name, "background"
        or "void"); asked when None."""
        r = self.list.currentRow()
        if r < 1 or len(self.entries) <= 2:
            return
        gone = self.entries[r]
        choices = ["void (not labelled)"] + [e.name for i, e in enumerate(self.entries) if i != r]
        if target is None:
            target, ok = QInputDialog.getItem(self, "Delete class",
                                              f"Pixels of “{gone.name}” become:", choices, 1, False)
            if not ok:
                return
        del self.entries[r]
        dest = None if target.startswith("void") else next(e for e in self.entries
                                                            if e.name == target)
        if gone.old is not None:
            self.merged[gone.old] = dest
        for old, keep in list(self.merged.items()):  # classes merged into this one follow it
            if keep is gone:
                self.merged[old] = dest
        self._fill(min(r, len(self.entries) - 1))

    def mapping(self) -> dict[int, int]:
        """Old index → new index for every old class (deleted ones: their merge target)."""
        out = {e.old: i for i, e in enumerate(self.entries) if e.old is not None}
        for old, keep in self.merged.items():
            out[old] = VOID if keep is None else self.entries.index(keep)
        return out

    def apply(self) -> bool:
        mapping = self.mapping()
        moves = any(old != new for old, new in mapping.items())
        n_masks = sum(1 for _ in self.project.masks_dir.glob("*.png"))
        if moves and n_masks:
            self.last_confirmation = (
                f"{n_masks} mask file(s) will be rewritten with the new class indices "
                f"(originals are copied to .segloop/backup/ first); stored predictions are "
                "dropped. Fine-tune again afterwards: the model's classes change.")
            if self.ask and QMessageBox.question(self, "Rewrite masks?", self.last_confirmation) \
                    != QMessageBox.StandardButton.Yes:
                return False
        try:
            self.backup = change_classes(self.project,
                                         [ClassInfo(e.name, e.color) for e in self.entries],
                                         mapping)
        except Exception as exc:  # noqa: BLE001 - ProjectError / MaskWriteError name the file
            QMessageBox.warning(self, "Classes not changed", str(exc))
            return False
        self.accept()
        return True
