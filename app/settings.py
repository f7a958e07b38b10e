"""Persistent user settings (QSettings, INI format).

The file is ``$XDG_CONFIG_HOME/segloop/segloop.ini`` (default ``~/.config``), resolved when a
:class:`Settings` is created, so tests that point XDG_CONFIG_HOME at a temp dir never touch the
user's real configuration. Keys: ``window/geometry``, ``window/state``, ``splitters/<name>``,
``recent`` (list of folders, newest first), ``tools/<name>``, ``theme``, ``last_project``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QMainWindow

MAX_RECENT = 10


def settings_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "segloop" / "segloop.ini"


def _fits_screen(window: QMainWindow) -> bool:
    screen = window.screen()
    if screen is None:
        return True
    avail = screen.availableGeometry()
    return window.width() <= avail.width() and window.height() <= avail.height()


class Settings:
    """Typed access to SegLoop's QSettings."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else settings_path()
        self.qs = QSettings(str(self.path), QSettings.Format.IniFormat)

    # -- generic ----------------------------------------------------------------------------
    def value(self, key: str, default: Any = None, type_: type | None = None) -> Any:
        raw = self.qs.value(key, default)
        if raw is None or type_ is None:
            return raw
        try:
            if type_ is bool:
                return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes")
            return type_(raw)
        except (TypeError, ValueError):
            return default

    def set_value(self, key: str, value: Any) -> None:
        self.qs.setValue(key, value)

    def sync(self) -> None:
        self.qs.sync()

    # -- window -----------------------------------------------------------------------------
    def save_window(self, window: QMainWindow) -> None:
        # a window pushed wider or taller than its screen (e.g. by a long label) is not a
        # size the user chose: keep the last good geometry instead of restoring that next time
        if _fits_screen(window):
            self.qs.setValue("window/geometry", window.saveGeometry())
        self.qs.setValue("window/state", window.saveState())

    def restore_window(self, window: QMainWindow) -> bool:
        geometry = self.qs.value("window/geometry")
        state = self.qs.value("window/state")
        restored = False
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            restored = window.restoreGeometry(geometry)
            if restored and not _fits_screen(window):
                avail = window.screen().availableGeometry()
                window.resize(min(window.width(), avail.width()), min(window.height(), avail.height()))
        if isinstance(state, QByteArray) and not state.isEmpty():
            window.restoreState(state)
        return restored

    # -- projects ---------------------------------------------------------------------------
    def recent_projects(self) -> list[str]:
        raw: Any = self.qs.value("recent", [])  # whatever QSettings gives back
        if isinstance(raw, str):
            raw = [raw]
        return [str(p) for p in (raw or []) if p]

    def add_recent_project(self, folder: Path | str) -> list[str]:
        folder = str(Path(folder).resolve())
        items = [folder] + [p for p in self.recent_projects() if p != folder]
        items = items[:MAX_RECENT]
        self.qs.setValue("recent", items)
        self.qs.setValue("last_project", folder)
        return items

    def clear_recent_projects(self) -> None:
        self.qs.setValue("recent", [])

    def last_project(self) -> str | None:
        value = self.qs.value("last_project")
        return str(value) if value else None

    # -- theme / tools ----------------------------------------------------------------------
    def theme(self) -> str:
        return str(self.qs.value("theme", "dark"))

    def set_theme(self, name: str) -> None:
        self.qs.setValue("theme", name)

    def tool(self, name: str, default: Any, type_: type | None = None) -> Any:
        return self.value(f"tools/{name}", default, type_ or type(default))

    def set_tool(self, name: str, value: Any) -> None:
        self.qs.setValue(f"tools/{name}", value)
