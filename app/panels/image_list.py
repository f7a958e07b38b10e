"""The image list: a QListView over ``project.records()`` with thumbnails and status badges.

:class:`ImageListModel` keeps the filtered, ordered list of records; rows are refreshed one stem
at a time (``update_stem``) when a prediction, save, metric or error arrives. Thumbnails are
requested from a :class:`ThumbnailProvider` only when the view asks for a row's decoration,
i.e. for visible rows (uniform item sizes keep the view from asking for all of them).
Sort keys: ``"name"`` (stem order) or ``"attention"`` (``project.attention_order()``).
Navigation (next / previous / next unfinished image) follows the order the list shows:
``ImageListModel.neighbour`` and ``ImageListModel.next_unfinished``.
"""

from __future__ import annotations

from PySide6.QtCore import (QAbstractListModel, QItemSelectionModel, QModelIndex, QPersistentModelIndex, QRect,
                            QSize, Qt, Signal)
from PySide6.QtGui import QColor, QFont, QPainter, QPalette
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QListView, QStyle,
                               QStyledItemDelegate, QStyleOptionViewItem, QVBoxLayout, QWidget)

from segcore.io import NON_UTF8_NAME
from segcore.project import ImageRecord, ImageStatus

from ..workers.thumbnails import ThumbnailProvider

RECORD_ROLE = Qt.ItemDataRole.UserRole + 1
STEM_ROLE = Qt.ItemDataRole.UserRole + 2

# Keyed by the enum (a str enum: a status value such as "done" finds its entry too, hence str).
STATUS_COLORS: dict[str, str] = {
    ImageStatus.UNLABELLED: "#7b8494", ImageStatus.PREDICTED: "#d89b21",
    ImageStatus.IN_PROGRESS: "#8f6bd8", ImageStatus.DONE: "#2fa36b",
    ImageStatus.SKIPPED: "#5f6b7a", ImageStatus.ERROR: "#e0474c",
}
STATUS_TEXT: dict[str, str] = {
    ImageStatus.UNLABELLED: "unlabelled", ImageStatus.PREDICTED: "▨ predicted",
    ImageStatus.IN_PROGRESS: "✎ in progress", ImageStatus.DONE: "✓ done",
    ImageStatus.SKIPPED: "skipped", ImageStatus.ERROR: "error",
}
FINISHED = (ImageStatus.DONE, ImageStatus.SKIPPED, ImageStatus.ERROR)  # "Next Unfinished" skips these
HELD_OUT_COLOR = "#4aa3df"
HELD_OUT_TEXT = "held out"
ROW_HEIGHT = 68
THUMB = 56


def _status(record: ImageRecord) -> str:
    status = record.status
    return status.value if isinstance(status, ImageStatus) else str(status)


class ImageListModel(QAbstractListModel):
    """Filtered and sorted records of one project."""

    def __init__(self, thumbs: ThumbnailProvider, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thumbs = thumbs
        self.project = None
        self._rows: list[ImageRecord] = []
        self._row_of: dict[str, int] = {}
        self.status_filter: str | None = None
        self.sort_key = "name"
        thumbs.ready.connect(self._thumb_ready)

    # -- content ----------------------------------------------------------------------------
    def set_project(self, project) -> None:
        self.project = project
        self.refresh()

    def set_filter(self, status: str | None) -> None:
        self.status_filter = status or None
        self.refresh()

    def set_sort(self, key: str) -> None:
        self.sort_key = key if key in ("name", "attention") else "name"
        self.refresh()

    def refresh(self) -> None:
        self.beginResetModel()
        rows: list[ImageRecord] = []
        if self.project is not None:
            records = self.project.records()
            if self.sort_key == "attention":
                by_stem = {r.stem: r for r in records}
                records = [by_stem[s] for s in self.project.attention_order() if s in by_stem]
            if self.status_filter == "held_out":
                records = [r for r in records if r.role == "held_out"]
            elif self.status_filter:
                records = [r for r in records if _status(r) == self.status_filter]
            rows = records
        self._rows = rows
        self._row_of = {r.stem: i for i, r in enumerate(rows)}
        self.endResetModel()

    def update_stem(self, stem: str) -> None:
        row = self._row_of.get(stem)
        if row is None or self.project is None:
            return
        try:
            self._rows[row] = self.project.record(stem)
        except Exception:  # noqa: BLE001 - a vanished file keeps its last known record
            return
        idx = self.index(row)
        self.dataChanged.emit(idx, idx)

    def stems(self) -> list[str]:
        return [r.stem for r in self._rows]

    def stem_at(self, row: int) -> str | None:
        return self._rows[row].stem if 0 <= row < len(self._rows) else None

    def row_of(self, stem: str) -> int | None:
        return self._row_of.get(stem)

    def record_at(self, row: int) -> ImageRecord | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    # -- navigation (in the order shown) ----------------------------------------------------
    def neighbour(self, current: str | None, delta: int) -> str | None:
        """The stem ``delta`` rows from ``current``, stopping at the ends (from the first or
        last row when ``current`` is not listed); None if that is ``current`` or no rows."""
        if not self._rows:
            return None
        row = self._row_of.get(current) if current is not None else None
        if row is None:
            i = 0 if delta > 0 else len(self._rows) - 1
        else:
            i = max(0, min(len(self._rows) - 1, row + delta))
        stem = self._rows[i].stem
        return None if stem == current else stem

    def next_unfinished(self, current: str | None) -> str | None:
        """The next row after ``current`` (wrapping around) that is not done, skipped or
        unreadable, other than ``current``; None if there is none."""
        n = len(self._rows)
        row = self._row_of.get(current) if current is not None else None
        start = row + 1 if row is not None else 0
        for k in range(n):
            record = self._rows[(start + k) % n]
            if _status(record) not in FINISHED and record.stem != current:
                return record.stem
        return None

    # -- Qt model ---------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        record = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return record.filename
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbs.pixmap(record.stem)
        if role == RECORD_ROLE:
            return record
        if role == STEM_ROLE:
            return record.stem
        if role == Qt.ItemDataRole.ToolTipRole:
            return _tooltip(record)
        return None

    def _thumb_ready(self, stem: str) -> None:
        row = self._row_of.get(stem)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


def metrics_text(record: ImageRecord) -> str:
    if _status(record) == "error":
        return NON_UTF8_NAME if NON_UTF8_NAME in (record.error or "") else "cannot be read"
    if record.iou is not None:
        biou = f" · BIoU {record.biou:.2f}" if record.biou is not None else ""
        return f"IoU {record.iou:.2f}{biou}"
    if record.uncertainty is not None:
        return f"uncertain {record.uncertainty:.0%}"  # 0 %: sure of every pixel; 100 %: coin toss
    return ""


UNCERTAINTY_TIP = ("Prediction uncertainty {u:.2f} on a 0–1 scale: the mean per-pixel entropy "
                   "of the model's probabilities (0 = sure of every pixel, 1 = a coin toss "
                   "everywhere). Sort by “Needs attention” to correct uncertain images first, "
                   "spread over kinds of image no corrected one shows yet.")


def _tooltip(record: ImageRecord) -> str:
    lines = [f"<b>{record.filename}</b>", f"Status: {STATUS_TEXT.get(_status(record), _status(record))}"]
    if record.role == "held_out":
        lines.append("Held out: scores the model, never trained on (Image ▸ Use for Training "
                     "moves it)")
    elif record.role == "train":
        lines.append("Role: training")
    if record.iou is not None:
        lines.append(f"IoU vs. model: {record.iou:.3f}")
    if record.biou is not None:
        lines.append(f"Boundary IoU vs. model: {record.biou:.3f}")
    if record.uncertainty is not None:
        lines.append(UNCERTAINTY_TIP.format(u=record.uncertainty))
    if record.error:
        lines.append(f"<span style='color:#e0474c'>{record.error}</span>")
    return "<br>".join(lines)


class ImageItemDelegate(QStyledItemDelegate):
    """Thumbnail, file name, a coloured status pill and the metrics line."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return QSize(200, ROW_HEIGHT)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        record: ImageRecord | None = index.data(RECORD_ROLE)
        if record is None:
            return
        painter.save()
        pal: QPalette = option.palette
        rect: QRect = option.rect
        if option.state & QStyle.StateFlag.State_Selected:
            sel = QColor(pal.color(QPalette.ColorRole.Highlight))
            sel.setAlpha(70)
            painter.fillRect(rect, sel)
            painter.fillRect(QRect(rect.left(), rect.top(), 3, rect.height()),
                             pal.color(QPalette.ColorRole.Highlight))
        elif option.state & QStyle.StateFlag.State_MouseOver:
            hover = QColor(pal.color(QPalette.ColorRole.Text))
            hover.setAlpha(14)
            painter.fillRect(rect, hover)
        thumb_rect = QRect(rect.left() + 8, rect.top() + (rect.height() - THUMB) // 2, THUMB, THUMB)
        painter.fillRect(thumb_rect, pal.color(QPalette.ColorRole.AlternateBase))
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        if pixmap is not None and not pixmap.isNull():
            scaled = pixmap.scaled(thumb_rect.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                   Qt.TransformationMode.SmoothTransformation)
            x = thumb_rect.left() + (THUMB - scaled.width()) // 2
            y = thumb_rect.top() + (THUMB - scaled.height()) // 2
            painter.drawPixmap(x, y, scaled)
        status = _status(record)
        color = QColor(STATUS_COLORS.get(status, "#7b8494"))
        text_left = thumb_rect.right() + 10
        width = rect.right() - text_left - 6
        font = QFont(option.font)
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(pal.color(QPalette.ColorRole.Text))
        fm = painter.fontMetrics()
        name = fm.elidedText(record.filename, Qt.TextElideMode.ElideMiddle, width)
        # TextDontClip and room below: an underscore sits under the descent in some fonts
        painter.drawText(QRect(text_left, rect.top() + 8, width, fm.height() + 2),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
                         | Qt.TextFlag.TextDontClip, name)
        # status pill
        small = QFont(option.font)
        small.setPointSizeF(max(7.0, option.font.pointSizeF() - 1.5))
        painter.setFont(small)
        sfm = painter.fontMetrics()
        label = STATUS_TEXT.get(status, status)
        pill = QRect(text_left, rect.top() + 12 + fm.height(), sfm.horizontalAdvance(label) + 14,
                     sfm.height() + 4)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        fill = QColor(color)
        fill.setAlpha(45)
        painter.setPen(color)
        painter.setBrush(fill)
        painter.drawRoundedRect(pill, pill.height() / 2, pill.height() / 2)
        painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, label)
        if record.role == "held_out":  # a second pill: the image is held out
            held = QColor(HELD_OUT_COLOR)
            hfill = QColor(held)
            hfill.setAlpha(45)
            pill = QRect(pill.right() + 5, pill.top(), sfm.horizontalAdvance(HELD_OUT_TEXT) + 14,
                         pill.height())
            painter.setPen(held)
            painter.setBrush(hfill)
            painter.drawRoundedRect(pill, pill.height() / 2, pill.height() / 2)
            painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, HELD_OUT_TEXT)
        metrics = metrics_text(record)
        if metrics:
            painter.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            mrect = QRect(pill.right() + 8, pill.top(), max(0, rect.right() - pill.right() - 12),
                          pill.height())
            painter.drawText(mrect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             sfm.elidedText(metrics, Qt.TextElideMode.ElideRight, mrect.width()))
        painter.restore()


class ImageListPanel(QWidget):
    """Filter and sort controls above the list. ``stemActivated`` when the user picks a row."""

    stemActivated = Signal(str)

    FILTERS = (("All images", None), ("Unlabelled", "unlabelled"), ("Predicted", "predicted"),
               ("In progress", "in_progress"), ("Done", "done"), ("Skipped", "skipped"),
               ("Held out", "held_out"), ("Errors", "error"))
    SORTS = (("Name", "name"), ("Needs attention", "attention"))

    def __init__(self, thumbs: ThumbnailProvider, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ImageListModel(thumbs, self)
        self.filter_combo = QComboBox()
        for text, value in self.FILTERS:
            self.filter_combo.addItem(text, value)
        self.filter_combo.setToolTip("Show only images with this status")
        self.sort_combo = QComboBox()
        for text, value in self.SORTS:
            self.sort_combo.addItem(text, value)
        self.sort_combo.setToolTip("Order by file name, or needs attention: uncertain predictions "
                                   "first, spread over kinds of image no corrected one shows yet "
                                   "(before the first model: a typical image of each kind first)")
        self.view = QListView()
        self.view.setObjectName("imageList")
        self.view.setModel(self.model)
        self.view.setItemDelegate(ImageItemDelegate(self.view))
        self.view.setUniformItemSizes(True)
        self.view.setMouseTracking(True)
        self.view.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.view.setSelectionMode(QListView.SelectionMode.SingleSelection)
        self.count_label = QLabel()
        self.count_label.setObjectName("sectionHint")

        controls = QHBoxLayout()
        controls.setSpacing(6)
        controls.addWidget(self.filter_combo, 1)
        controls.addWidget(self.sort_combo, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(6)
        layout.addLayout(controls)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.count_label)

        self.filter_combo.currentIndexChanged.connect(self._filter_changed)
        self.sort_combo.currentIndexChanged.connect(self._sort_changed)
        self.view.selectionModel().currentChanged.connect(self._current_changed)
        self.model.modelReset.connect(self._update_count)
        self._current: str | None = None
        self._silent = False

    def set_project(self, project) -> None:
        self.model.set_project(project)

    def restore(self, settings) -> None:  # Settings
        """Sort and filter from the settings (QSettings ``tools/list_sort``, ``tools/list_filter``)."""
        self.set_sort(settings.tool("list_sort", "name", str))
        self.set_filter(settings.tool("list_filter", "", str) or None)

    def save(self, settings) -> None:  # Settings
        settings.set_tool("list_sort", self.model.sort_key)
        settings.set_tool("list_filter", self.model.status_filter or "")

    def set_filter(self, status: str | None) -> None:
        i = self.filter_combo.findData(status)
        self.filter_combo.setCurrentIndex(max(0, i))

    def set_sort(self, key: str) -> None:
        i = self.sort_combo.findData(key)
        self.sort_combo.setCurrentIndex(max(0, i))

    def select_stem(self, stem: str | None) -> None:
        """Highlight ``stem`` without emitting ``stemActivated``."""
        self._current = stem
        row = self.model.row_of(stem) if stem else None
        self._silent = True
        try:
            if row is None:
                self.view.clearSelection()
            else:
                idx = self.model.index(row)
                self.view.selectionModel().setCurrentIndex(
                    idx, QItemSelectionModel.SelectionFlag.ClearAndSelect)
                self.view.scrollTo(idx)
        finally:
            self._silent = False

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        stem = self.model.stem_at(current.row()) if current.isValid() else None
        if stem and not self._silent and stem != self._current:
            self._current = stem
            self.stemActivated.emit(stem)

    def reorder(self) -> None:
        """The project's order changed: re-sort when sorted by attention, keep the selection."""
        if self.model.sort_key == "attention":
            self.model.refresh()
            self.select_stem(self._current)

    def _filter_changed(self) -> None:
        self.model.set_filter(self.filter_combo.currentData())
        self.select_stem(self._current)

    def _sort_changed(self) -> None:
        self.model.set_sort(self.sort_combo.currentData())
        self.select_stem(self._current)

    def _update_count(self) -> None:
        shown = self.model.rowCount()
        total = len(self.model.project.stems()) if self.model.project is not None else 0
        self.count_label.setText(f"{shown} of {total} images" if shown != total
                                 else f"{total} images")
