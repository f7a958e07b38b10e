"""A small popup with the DenseCRF settings (iterations and kernel weights).

It shows the editor state's ``crf_params`` and writes them back when the user presses Apply
(:class:`app.editor_state.EditorState`). The popup is a frameless ``Qt.Popup`` frame shown
under the button that opened it.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import (QDoubleSpinBox, QFormLayout, QFrame, QHBoxLayout, QLabel,
                               QPushButton, QSpinBox, QVBoxLayout, QWidget)

from segcore.crf import CRFParams

from ..editor_state import EditorState

FIELDS: tuple[tuple[str, str, str, float, float, float], ...] = (
    # name, label, tooltip, min, max, step
    ("gaussian_sxy", "Smoothness width (px)", "Spatial width θγ of the smoothness kernel",
     0.5, 50, 0.5),
    ("gaussian_compat", "Smoothness weight", "Weight w2 of the smoothness kernel", 0, 50, 0.5),
    ("bilateral_sxy", "Appearance width (px)", "Spatial width θα of the colour kernel",
     1, 300, 5),
    ("bilateral_srgb", "Colour range", "Colour width θβ (RGB units) of the colour kernel",
     1, 100, 1),
    ("bilateral_compat", "Appearance weight", "Weight w1 of the colour kernel", 0, 50, 0.5),
)


class CRFPopover(QFrame):
    def __init__(self, state: EditorState, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Popup)
        self.state = state
        self.setObjectName("popover")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        title = QLabel("<b>DenseCRF refinement</b>")
        hint = QLabel("Sharpens prediction edges along image colour changes.")
        hint.setObjectName("sectionHint")
        hint.setWordWrap(True)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.iterations = QSpinBox()
        self.iterations.setRange(0, 50)
        self.iterations.setToolTip("Mean-field iterations (0 = no refinement)")
        form.addRow("Iterations", self.iterations)
        self.spins: dict[str, QDoubleSpinBox] = {}
        for name, label, tip, lo, hi, step in FIELDS:
            spin = QDoubleSpinBox()
            spin.setRange(lo, hi)
            spin.setSingleStep(step)
            spin.setDecimals(1)
            spin.setToolTip(tip)
            self.spins[name] = spin
            form.addRow(label, spin)
        reset = QPushButton("Defaults")
        reset.setToolTip("Restore the DeepLab defaults")
        apply_ = QPushButton("Apply")
        apply_.setObjectName("primary")
        apply_.setToolTip("Use these settings and re-refine the shown image")
        buttons = QHBoxLayout()
        buttons.addWidget(reset)
        buttons.addStretch(1)
        buttons.addWidget(apply_)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 12, 14, 12)
        layout.addWidget(title)
        layout.addWidget(hint)
        layout.addLayout(form)
        layout.addLayout(buttons)
        reset.clicked.connect(lambda: self.set_params(CRFParams()))
        apply_.clicked.connect(self._apply)
        self.set_params(state.crf_params)
        state.crfParamsChanged.connect(self.set_params)

    def set_params(self, params: CRFParams) -> None:
        """Show ``params`` in the fields (Apply makes them the editor's)."""
        self.iterations.setValue(int(params.iterations))
        for name, spin in self.spins.items():
            spin.setValue(float(getattr(params, name)))

    def params(self) -> CRFParams:
        values: dict[str, Any] = {name: spin.value() for name, spin in self.spins.items()}  # float fields
        return CRFParams(iterations=self.iterations.value(), **values)

    def _apply(self) -> None:
        self.state.set_crf_params(self.params())
        self.hide()

    def popup_at(self, anchor: QWidget) -> None:
        """Under ``anchor`` (above it when there is no room below), kept inside the screen."""
        self.adjustSize()
        self._place(anchor)
        self.show()
        self._place(anchor)  # the shown (polished) size can differ by a few pixels

    def _place(self, anchor: QWidget) -> None:
        below = anchor.mapToGlobal(QPoint(0, anchor.height() + 2))
        screen = anchor.screen() or self.screen()
        x, y = below.x(), below.y()
        if screen is not None:
            area = screen.availableGeometry()
            frame = self.frameGeometry().size()  # window frame included, where there is one
            w, h = max(frame.width(), self.width()), max(frame.height(), self.height())
            if y + h > area.bottom():
                y = anchor.mapToGlobal(QPoint(0, 0)).y() - h - 2
            x = min(max(x, area.left()), area.right() + 1 - w)
            y = min(max(y, area.top()), area.bottom() + 1 - h)
        self.move(x, y)

