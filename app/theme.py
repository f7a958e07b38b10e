"""Dark and light themes: a Fusion palette plus ``resources/style/<name>.qss``.

``apply_theme(app, "dark" | "light")`` sets the palette, the style sheet and the icon colour;
callers re-fetch icons afterwards (see ``Actions.refresh_icons``). Unknown names fall back to
dark. The choice is persisted by the caller through ``Settings.set_theme``.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from .resources import resources_dir, set_icon_color

THEMES = ("dark", "light")


@dataclass(frozen=True)
class ThemeColors:
    window: str
    base: str
    alt_base: str
    text: str
    muted: str
    button: str
    highlight: str
    highlight_text: str
    icon: str


COLORS: dict[str, ThemeColors] = {
    "dark": ThemeColors("#1f2228", "#181a1f", "#23262d", "#e3e6eb", "#8b93a1", "#2a2e36",
                        "#3d7bfd", "#ffffff", "#d5d9e0"),
    "light": ThemeColors("#f3f4f6", "#ffffff", "#f7f8fa", "#1d2129", "#6b7280", "#ffffff",
                         "#2563eb", "#ffffff", "#374151"),
}


def palette_for(name: str) -> QPalette:
    c = COLORS[name]
    pal = QPalette()
    role = QPalette.ColorRole
    for r, value in (
        (role.Window, c.window), (role.WindowText, c.text), (role.Base, c.base),
        (role.AlternateBase, c.alt_base), (role.Text, c.text), (role.Button, c.button),
        (role.ButtonText, c.text), (role.Highlight, c.highlight),
        (role.HighlightedText, c.highlight_text), (role.ToolTipBase, c.base),
        (role.ToolTipText, c.text), (role.PlaceholderText, c.muted), (role.Link, c.highlight),
    ):
        pal.setColor(r, QColor(value))
    disabled = QPalette.ColorGroup.Disabled
    for r in (role.WindowText, role.Text, role.ButtonText):
        pal.setColor(disabled, r, QColor(c.muted))
    return pal


def stylesheet(name: str) -> str:
    path = resources_dir() / "style" / f"{name}.qss"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def apply_theme(app: QApplication, name: str) -> str:
    """Apply theme ``name`` to ``app``; returns the name actually applied."""
    if name not in THEMES:
        name = "dark"
    app.setStyle("Fusion")
    app.setPalette(palette_for(name))
    set_icon_color(COLORS[name].icon)
    app.setStyleSheet(stylesheet(name))
    app.setProperty("segloop_theme", name)
    return name


def current_theme(app: QApplication) -> str:
    value = app.property("segloop_theme")
    return str(value) if value in THEMES else "dark"
