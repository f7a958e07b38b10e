"""Right-hand panel: tools, brush size, class picker, layer toggles, DenseCRF, accept.

Pure view over the editor state: tool and layer buttons wrap the window's QActions (so menus,
shortcuts and buttons stay in sync); the brush size, class, opacity and boundary widgets write
to the :class:`app.editor_state.EditorState` and show what it holds (its signals update them
without echo). Mask colour and brightness / contrast are display settings of the open project
(app/display.py): those widgets emit the signals below.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (QColorDialog, QComboBox, QGridLayout, QGroupBox, QHBoxLayout,
                               QLabel, QMenu, QPushButton, QSlider, QSpinBox, QToolButton,
                               QVBoxLayout, QWidget)

from ..actions import Actions
from ..canvas.levels import LEVEL_RANGE
from ..editor_state import MAX_BOUNDARY, MAX_BRUSH, MIN_BOUNDARY, MIN_BRUSH, EditorState

SLIDER_MAX_BRUSH = 200  # the slider covers the usual sizes; the spin box goes to MAX_BRUSH


def _tool_button(action, text: bool = True) -> QToolButton:  # QAction
    button = QToolButton()
    button.setDefaultAction(action)
    button.setIconSize(QSize(22, 22))
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon if text
                              else Qt.ToolButtonStyle.ToolButtonIconOnly)
    button.setAutoRaise(True)
    button.setMinimumWidth(58)
    return button


def _layer_row(action, extra: QWidget | None = None) -> QHBoxLayout:
    row = QHBoxLayout()
    button = QToolButton()
    button.setDefaultAction(action)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    button.setIconSize(QSize(18, 18))
    button.setAutoRaise(True)
    button.setSizePolicy(button.sizePolicy().horizontalPolicy().Expanding,
                         button.sizePolicy().verticalPolicy())
    row.addWidget(button, 1)
    if extra is not None:
        row.addWidget(extra)
    return row


class ToolsPanel(QWidget):
    maskColorChosen = Signal(object)        # (r, g, b) picked by the user
    maskColorAutoRequested = Signal()       # back to the contrast-aware colour
    levelsChanged = Signal(int, int)        # brightness, contrast (display only)
    autoLevelsRequested = Signal()

    def __init__(self, actions: Actions, state: EditorState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.action_table = actions
        self.state = state
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 2, 8, 4)
        layout.setSpacing(4)
        layout.addWidget(self._tools_box())
        layout.addWidget(self._layers_box())
        layout.addWidget(self._display_box())
        layout.addWidget(self._model_box())
        layout.addStretch(1)
        self._show_brush_size(state.brush_size)
        self._show_opacity(state.opacity)
        self._show_boundary_width(state.boundary_width)
        state.brushSizeChanged.connect(self._show_brush_size)
        state.activeClassChanged.connect(self._show_class)
        state.opacityChanged.connect(self._show_opacity)
        state.boundaryWidthChanged.connect(self._show_boundary_width)

    # -- sections ---------------------------------------------------------------------------
    def _tools_box(self) -> QGroupBox:
        box = QGroupBox("Paint")
        grid = QGridLayout(box)
        grid.setSpacing(4)
        for i, name in enumerate(("tool_brush", "tool_eraser", "tool_fill", "tool_pan")):
            grid.addWidget(_tool_button(self.action_table[name]), 0, i)
        assists = QHBoxLayout()  # a row of its own: "Scribble" needs more than a column
        assists.setSpacing(4)
        for name, short in (("tool_box", "Box"), ("tool_scribble", "Scribble"), ("refine_box", "Refine")):
            self.action_table[name].setIconText(short)  # the menu keeps the full name
            assists.addWidget(_tool_button(self.action_table[name]), 1)
        grid.addLayout(assists, 1, 0, 1, 4)
        self.brush_slider = QSlider(Qt.Orientation.Horizontal)
        self.brush_slider.setRange(MIN_BRUSH, SLIDER_MAX_BRUSH)
        self.brush_slider.setToolTip("Brush diameter in image pixels ( [ and ] or Ctrl+wheel )")
        self.brush_spin = QSpinBox()
        self.brush_spin.setRange(MIN_BRUSH, MAX_BRUSH)
        self.brush_spin.setSuffix(" px")
        self.brush_spin.setToolTip(self.brush_slider.toolTip())
        grid.addWidget(QLabel("Size"), 2, 0)
        grid.addWidget(self.brush_slider, 2, 1, 1, 2)
        grid.addWidget(self.brush_spin, 2, 3)
        self.class_label = QLabel("Class")
        self.class_combo = QComboBox()
        self.class_combo.setToolTip("Class painted by the brush (keys 1–9; 0 = background); "
                                    "“void” marks pixels as not labelled (never trained on)")
        self.classes_button = QToolButton()
        self.classes_button.setText("Classes…")
        self.classes_button.setToolTip("Add, rename, recolour, reorder or delete classes")
        grid.addWidget(self.class_label, 3, 0)
        grid.addWidget(self.class_combo, 3, 1, 1, 2)
        grid.addWidget(self.classes_button, 3, 3)
        self.brush_slider.valueChanged.connect(self.state.set_brush_size)
        self.brush_spin.valueChanged.connect(self.state.set_brush_size)
        self.class_combo.currentIndexChanged.connect(
            lambda i: self.state.set_active_class(int(self.class_combo.itemData(i) or 1)))
        return box

    def _layers_box(self) -> QGroupBox:
        box = QGroupBox("Layers")
        v = QVBoxLayout(box)
        v.setSpacing(2)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setFixedWidth(64)
        self.opacity_slider.setToolTip("Opacity of the filled mask")
        self.opacity_value = QLabel()
        self.opacity_value.setObjectName("sectionHint")
        self.opacity_value.setMinimumWidth(self.opacity_value.fontMetrics().horizontalAdvance("100%") + 2)
        self.opacity_value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.opacity_value.setToolTip(self.opacity_slider.toolTip())
        self.color_button = QToolButton()
        self.color_button.setAutoRaise(True)
        self.color_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.color_button)
        self.color_auto_action = menu.addAction("Automatic: stands out from the image")
        self.color_auto_action.setCheckable(True)
        self.color_auto_action.triggered.connect(lambda: self.maskColorAutoRequested.emit())
        menu.addAction("Choose colour…", self.choose_color)
        self.color_button.setMenu(menu)
        mask_extra = QWidget()
        mrow = QHBoxLayout(mask_extra)
        mrow.setContentsMargins(0, 0, 0, 0)
        mrow.setSpacing(2)
        mrow.addWidget(self.color_button)
        mrow.addWidget(self.opacity_slider)
        mrow.addWidget(self.opacity_value)
        self.set_mask_color((255, 64, 64), True)
        self.boundary_spin = QSpinBox()
        self.boundary_spin.setRange(MIN_BOUNDARY, MAX_BOUNDARY)
        self.boundary_spin.setSuffix(" px")
        self.boundary_spin.setToolTip("Width of the boundary line (screen pixels)")
        v.addLayout(_layer_row(self.action_table.show_mask, mask_extra))
        v.addLayout(_layer_row(self.action_table.show_boundary, self.boundary_spin))
        v.addLayout(_layer_row(self.action_table.show_diff, self._diff_legend()))
        self.opacity_slider.valueChanged.connect(lambda v: self.state.set_opacity(v / 100))
        self.boundary_spin.valueChanged.connect(self.state.set_boundary_width)
        return box

    def _diff_legend(self) -> QLabel:
        from ..canvas.layers import DIFF_ADDED_COLOR, DIFF_REMOVED_COLOR

        added, removed = (QColor(*DIFF_ADDED_COLOR).name(), QColor(*DIFF_REMOVED_COLOR).name())
        label = QLabel(f"<span style='color:{added}'>■</span> added "
                       f"<span style='color:{removed}'>■</span> removed")
        label.setObjectName("sectionHint")
        label.setToolTip("Diff colours: pixels added to / removed from the prediction")
        return label

    def _display_box(self) -> QGroupBox:
        box = QGroupBox("Display")
        box.setToolTip("Brightness and contrast of the image on screen only: the image file, "
                       "the mask and what the model sees are unchanged")
        self.display_box = box
        grid = QGridLayout(box)
        grid.setSpacing(4)
        self.brightness_slider = QSlider(Qt.Orientation.Horizontal)
        self.contrast_slider = QSlider(Qt.Orientation.Horizontal)
        auto = QPushButton("Auto")
        auto.setToolTip("Stretch this image's 1st–99th percentile to the full range "
                        "(dim, low-contrast and 16-bit images)")
        auto.clicked.connect(self.autoLevelsRequested)
        reset = QPushButton("Reset")
        reset.setToolTip("Show the image as it is")
        reset.clicked.connect(lambda: self.set_levels(0, 0, emit=True))
        self.auto_levels_button, self.reset_levels_button = auto, reset
        for row, (label, slider, button) in enumerate((("Brightness", self.brightness_slider, auto),
                                                       ("Contrast", self.contrast_slider, reset))):
            slider.setRange(-LEVEL_RANGE, LEVEL_RANGE)
            slider.setToolTip(f"{label} of the image on screen (display only; Reset for 0)")
            slider.valueChanged.connect(self._levels_moved)
            grid.addWidget(QLabel(label), row, 0)
            grid.addWidget(slider, row, 1)
            grid.addWidget(button, row, 2)
        self.set_levels(0, 0)
        return box

    def _model_box(self) -> QGroupBox:
        box = QGroupBox("Prediction")
        v = QVBoxLayout(box)
        v.setSpacing(6)
        self.accept_button = QPushButton(self.action_table.accept_prediction.text().replace("&", ""))
        self.accept_button.setObjectName("primary")
        self.accept_button.setIcon(self.action_table.accept_prediction.icon())
        self.accept_button.setToolTip(self.action_table.accept_prediction.toolTip())
        self.accept_button.clicked.connect(self.action_table.accept_prediction.trigger)
        self.action_table.accept_prediction.enabledChanged.connect(self.accept_button.setEnabled)
        crf_row = QHBoxLayout()
        self.crf_button = QToolButton()
        self.crf_button.setDefaultAction(self.action_table.crf)
        self.crf_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.crf_button.setAutoRaise(True)
        self.crf_settings_button = QToolButton()
        self.crf_settings_button.setDefaultAction(self.action_table.crf_settings)
        self.crf_settings_button.setAutoRaise(True)
        crf_row.addWidget(self.crf_button, 1)
        crf_row.addWidget(self.crf_settings_button)
        self.predict_button = QToolButton()
        self.predict_button.setDefaultAction(self.action_table.predict_again)
        self.predict_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.predict_button.setAutoRaise(True)
        v.addWidget(self.accept_button)
        v.addLayout(crf_row)
        v.addWidget(self.predict_button)
        return box

    def refresh_icons(self) -> None:
        self.accept_button.setIcon(self.action_table.accept_prediction.icon())

    # -- the editor state, shown (no echo) --------------------------------------------------
    def _show_brush_size(self, px: int) -> None:
        for w in (self.brush_slider, self.brush_spin):
            w.blockSignals(True)
        self.brush_spin.setValue(int(px))
        self.brush_slider.setValue(min(int(px), self.brush_slider.maximum()))
        for w in (self.brush_slider, self.brush_spin):
            w.blockSignals(False)

    def _show_opacity(self, value: float) -> None:
        self.opacity_slider.blockSignals(True)
        self.opacity_slider.setValue(round(value * 100))
        self.opacity_slider.blockSignals(False)
        self.opacity_value.setText(f"{self.opacity_slider.value()}%")

    def _show_boundary_width(self, px: int) -> None:
        self.boundary_spin.blockSignals(True)
        self.boundary_spin.setValue(int(px))
        self.boundary_spin.blockSignals(False)

    def _show_class(self, idx: int) -> None:
        i = self.class_combo.findData(int(idx))
        if i >= 0 and i != self.class_combo.currentIndex():
            self.class_combo.blockSignals(True)
            self.class_combo.setCurrentIndex(i)
            self.class_combo.blockSignals(False)

    def set_opacity(self, value: float) -> None:
        """Same as moving the opacity slider: the editor state (and so the canvas) changes."""
        self.state.set_opacity(value)

    # -- display settings (app/display.py) ----------------------------------------------------

    def set_mask_color(self, rgb: tuple[int, int, int], auto: bool) -> None:
        """The binary class's colour on the swatch; ``auto``: chosen for contrast per image."""
        pm = QPixmap(16, 16)
        pm.fill(QColor(*rgb))
        self.color_button.setIcon(QIcon(pm))
        self.mask_color = (int(rgb[0]), int(rgb[1]), int(rgb[2]))
        self.color_auto_action.setChecked(auto)
        name = QColor(*rgb).name()
        self.color_button.setToolTip(
            f"Mask colour {name}: " + ("automatic, the one of four colours that stands out most "
                                       "from this image" if auto else "chosen, kept in the project")
            + " (click to change)")

    def set_mask_color_choosable(self, on: bool) -> None:
        """Binary projects only; multi-class colours belong to the project's classes."""
        self.color_button.setVisible(on)

    def set_levels(self, brightness: int, contrast: int, emit: bool = False) -> None:
        for slider, value in ((self.brightness_slider, brightness), (self.contrast_slider, contrast)):
            slider.blockSignals(True)
            slider.setValue(int(value))
            slider.blockSignals(False)
        self._show_levels()
        if emit:
            self.levelsChanged.emit(self.brightness_slider.value(), self.contrast_slider.value())

    def levels(self) -> tuple[int, int]:
        return self.brightness_slider.value(), self.contrast_slider.value()

    # -- classes ------------------------------------------------------------------------------
    def set_classes(self, classes: list) -> None:  # list[ClassInfo]
        """Fill the class picker: the foreground classes (key = index), then void (255); the
        active class stays if the project has it, else the first class becomes active."""
        keep = self.state.active_class
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        for idx, info in enumerate(classes):
            if idx == 0:
                continue
            pm = QPixmap(14, 14)
            pm.fill(QColor(*info.color))
            self.class_combo.addItem(QIcon(pm), f"{idx} {info.name}" if idx <= 9 else info.name, idx)
        pm = QPixmap(14, 14)
        pm.fill(QColor(128, 128, 128, 90))
        self.class_combo.addItem(QIcon(pm), "void (not labelled)", 255)
        i = self.class_combo.findData(keep)
        self.class_combo.setCurrentIndex(i if i >= 0 else 0)
        self.class_combo.blockSignals(False)
        self.state.set_active_class(int(self.class_combo.currentData() or 1))

    def select_class(self, idx: int) -> bool:
        """Make class ``idx`` the active one; False if the project has no such class."""
        if self.class_combo.findData(int(idx)) < 0:
            return False
        self.state.set_active_class(int(idx))
        return True

    # -- internal ---------------------------------------------------------------------------
    def _levels_moved(self, _value: int) -> None:
        self._show_levels()
        self.levelsChanged.emit(*self.levels())

    def _show_levels(self) -> None:
        b, c = self.levels()
        self.display_box.setTitle("Display" if not b and not c
                                  else f"Display: brightness {b:+d}, contrast {c:+d}")

    def choose_color(self) -> None:
        """The "Choose colour…" menu entry: a colour dialog, then ``maskColorChosen``."""
        color = QColorDialog.getColor(QColor(*self.mask_color), self, "Mask colour")
        if color.isValid():
            self.maskColorChosen.emit((color.red(), color.green(), color.blue()))
