"""File ▸ Export Masks… and File ▸ Import Masks…: thin dialogs over segcore.export and
segcore.mask_import. The work runs in a QThread; the dialog shows the one-line summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QThread, Signal
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from segcore.export import FORMAT_TEXT, FORMATS


class BackgroundJob(QThread):
    """Runs ``fn()`` off the GUI thread; ``done(result)`` or ``failed(message)``."""

    done = Signal(object)    # result object
    failed = Signal(str)

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.fn = fn

    def run(self) -> None:
        try:
            self.done.emit(self.fn())
        except Exception as exc:  # noqa: BLE001 - shown in the dialog
            self.failed.emit(str(exc) or type(exc).__name__)


def _folder_row(edit: QLineEdit, parent: QWidget, title: str) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    browse = QPushButton("Browse…")
    browse.clicked.connect(lambda: edit.setText(
        QFileDialog.getExistingDirectory(parent, title, edit.text()) or edit.text()))
    row.addWidget(browse)
    return row


class ExportDialog(QDialog):
    """Format, which images, output folder → Export; the summary appears below."""

    def __init__(self, project: Any, flush: Callable[[], Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export Masks")
        self.setObjectName("exportDialog")
        self.project, self.flush = project, flush
        self.format = QComboBox()
        for fmt in FORMATS:
            self.format.addItem(FORMAT_TEXT[fmt], fmt)
        self.only_done = QCheckBox("Only done images (else every image with a mask)")
        self.only_done.setChecked(True)
        self.out = QLineEdit(str(Path(project.root).parent / f"{Path(project.root).name}-export"))
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setObjectName("sectionHint")
        form = QFormLayout()
        form.addRow("Format", self.format)
        form.addRow("Images", self.only_done)
        form.addRow("Output folder", _folder_row(self.out, self, "Export masks to"))
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.setDefault(True)
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        n_done = len(project.done_stems())
        hint = QLabel(f"{n_done} done image{'s' if n_done != 1 else ''}; every export writes "
                      "classes.json too. Files named by image stem, so images sharing a name "
                      "never overwrite each other.")
        hint.setWordWrap(True)
        hint.setObjectName("sectionHint")
        layout.addWidget(hint)
        layout.addWidget(self.summary)
        layout.addWidget(self.buttons)
        self.resize(520, 0)
        self.job: BackgroundJob | None = None
        self.result: Any = None

    def start(self) -> None:
        from segcore.export import export_project

        self.flush()
        fmt, out, only = self.format.currentData(), self.out.text().strip(), self.only_done.isChecked()
        if not out:
            self.summary.setText("⚠ Choose an output folder.")
            return
        self.export_button.setEnabled(False)
        self.summary.setText("Exporting…")
        self.job = BackgroundJob(lambda: export_project(self.project, out, fmt, only_done=only))
        self.job.done.connect(self._done)
        self.job.failed.connect(lambda text: self._finish(f"⚠ {text}"))
        self.job.start()

    def _done(self, summary: Any) -> None:
        self.result = summary
        self._finish(summary.text())

    def _finish(self, text: str) -> None:
        self.summary.setText(text)
        self.export_button.setEnabled(True)
        if self.job is not None:
            self.job.wait()
            self.job = None


class ImportDialog(QDialog):
    """Source (detected or chosen folder, or a COCO JSON), instance handling, the colour →
    class mapping for RGB masks → Import; then the report, and an offer to adopt classes when
    the masks hold more classes than the project."""

    imported = Signal(object)  # ImportReport

    def __init__(self, project: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from segcore.mask_import import find_masks

        self.setWindowTitle("Import Masks")
        self.setObjectName("importDialog")
        self.project = project
        found = find_masks(project)
        folders = sorted({str(p.parent) for p in found.values()})
        self.source = QLineEdit(folders[0] if folders else "")
        self.source.setPlaceholderText("a folder of masks, or a COCO .json file")
        self.instances = QComboBox()
        for text, value in (("report them (values beyond the classes)", None),
                            ("merge instance ids into one class", "merge"),
                            ("keep instance ids as classes", "keep")):
            self.instances.addItem(text, value)
        self.colors = QTableWidget(0, 2)
        self.colors.setHorizontalHeaderLabels(["Colour in the masks", "Class"])
        self.colors.horizontalHeader().setStretchLastSection(True)
        self.colors.setMaximumHeight(160)
        self.colors.hide()
        self.summary = QLabel(f"Found {len(found)} mask(s) for images without one"
                              + (f" in {', '.join(Path(f).name + '/' for f in folders)}" if folders else "")
                              + "." if found else "No masks found beside the images; choose a folder.")
        self.summary.setWordWrap(True)
        self.summary.setObjectName("sectionHint")
        form = QFormLayout()
        form.addRow("From", _folder_row(self.source, self, "Import masks from"))
        form.addRow("Instance masks", self.instances)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.import_button = buttons.addButton("Import", QDialogButtonBox.ButtonRole.AcceptRole)
        self.import_button.setDefault(True)
        buttons.accepted.connect(self.start)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.colors)
        layout.addWidget(self.summary)
        layout.addWidget(buttons)
        self.resize(560, 0)
        self.report: Any = None
        self.source.textChanged.connect(self._scan_colors)
        self._scan_colors()

    def _found(self) -> dict:
        from segcore.mask_import import find_masks

        text = self.source.text().strip()
        return find_masks(self.project, Path(text) if text else None)

    def _scan_colors(self) -> None:
        """RGB masks: list their colours with a class picker each (the mapping step)."""
        from segcore.mask_import import rgb_colors

        text = self.source.text().strip()
        if not text or text.lower().endswith(".json") or not Path(text).is_dir():
            self.colors.hide()
            return
        colors = rgb_colors(list(self._found().values()))
        own = {tuple(c.color): i for i, c in enumerate(self.project.classes)}
        self.colors.setRowCount(len(colors))
        for r, color in enumerate(colors):
            swatch = QPixmap(14, 14)
            swatch.fill(QColor(*color))
            item = QTableWidgetItem("#%02x%02x%02x" % color)
            item.setIcon(swatch)
            self.colors.setItem(r, 0, item)
            combo = QComboBox()
            for i, c in enumerate(self.project.classes):
                combo.addItem(f"{i}: {c.name}", i)
            combo.setCurrentIndex(own.get(color, min(1, self.project.num_classes - 1)))
            self.colors.setCellWidget(r, 1, combo)
        self.colors.setVisible(bool(colors))

    def color_map(self) -> dict[tuple[int, int, int], int]:
        out: dict[tuple[int, int, int], int] = {}
        for r in range(self.colors.rowCount()):
            item, combo = self.colors.item(r, 0), self.colors.cellWidget(r, 1)
            assert item is not None and isinstance(combo, QComboBox)  # every row gets both
            text = item.text().lstrip("#")
            color = (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))
            out[color] = int(combo.currentData())
        return out

    def start(self) -> None:
        from segcore.mask_import import import_arrays, import_masks, read_coco

        text = self.source.text().strip()
        try:
            if text.lower().endswith(".json"):
                report = import_arrays(self.project, read_coco(self.project, text))
            else:
                found = self._found()
                if not found:
                    self.summary.setText(f"⚠ No mask in {text or 'the project folder'} is named "
                                         "like an image of this project (<stem>.png, "
                                         "<stem>_mask.png, …).")
                    return
                report = import_masks(self.project, found, self.color_map() if
                                      self.colors.isVisible() else None,
                                      self.instances.currentData())
        except Exception as exc:  # noqa: BLE001 - MaskReadError names the file
            self.summary.setText(f"⚠ {exc}")
            return
        self.report = report
        text = report.text()
        if report.max_index >= self.project.num_classes:
            text += (f". The masks hold classes up to {report.max_index}: add classes "
                     "(Image ▸ Classes…) and import again, or merge instance ids.")
        self.summary.setText(text)
        self.imported.emit(report)
