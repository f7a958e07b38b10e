"""A dismissible warning strip shown above the canvas (read-only project, model problems)."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

from ..resources import icon


class Banner(QFrame):
    def __init__(self, closable: bool = True, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.icon = QLabel()
        self.icon.setPixmap(icon("warning").pixmap(QSize(18, 18)))
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = QHBoxLayout(self)
        row.setContentsMargins(12, 6, 8, 6)
        row.addWidget(self.icon)
        row.addWidget(self.label, 1)
        if closable:
            close = QToolButton()
            close.setText("✕")
            close.setToolTip("Hide this message")
            close.setAutoRaise(True)
            close.clicked.connect(self.hide)
            row.addWidget(close)
        self.hide()

    def show_message(self, text: str) -> None:
        self.label.setText(text)
        self.icon.setPixmap(icon("warning").pixmap(QSize(18, 18)))
        self.show()

    def text(self) -> str:
        return self.label.text()
