"""Central pages shown instead of the canvas: no project / image cannot be read."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from ..resources import app_icon, icon


class MessagePage(QWidget):
    """A centred icon, a headline and a detail line; optional button."""

    def __init__(self, icon_name: str | None = None, button_text: str | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._icon_name = icon_name
        self.icon = QLabel()
        self.icon.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.headline = QLabel()
        self.headline.setObjectName("emptyState")
        self.headline.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail = QLabel()
        self.detail.setObjectName("sectionHint")
        self.detail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.button = QPushButton(button_text or "")
        self.button.setObjectName("primary")
        self.button.setVisible(bool(button_text))
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        for w in (self.icon, self.headline, self.detail):
            layout.addWidget(w)
        layout.addWidget(self.button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)
        self.refresh_icon()

    def refresh_icon(self) -> None:
        ic = icon(self._icon_name) if self._icon_name else app_icon()
        self.icon.setPixmap(ic.pixmap(QSize(56, 56)))

    def set_text(self, headline: str, detail: str = "") -> None:
        self.headline.setText(headline)
        self.detail.setText(detail)
