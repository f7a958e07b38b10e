"""Pick up masks (and images) that appear while a project is open: a QFileSystemWatcher on the
project folder and ``masks/``; changes are debounced and then the window rescans (File ▸ Rescan
Folder, F5, does the same by hand). The app's own atomic writes also touch ``masks/``; a rescan
after them finds nothing new, it only costs a directory listing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer

if TYPE_CHECKING:
    from .main_window import MainWindow

DEBOUNCE_MS = 800


class FolderWatch(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.watcher = QFileSystemWatcher(self)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(DEBOUNCE_MS)
        self.timer.timeout.connect(self._changed)
        self.watcher.directoryChanged.connect(lambda _p: self.timer.start())
        self._known: tuple[frozenset, frozenset] | None = None
        self._project: Any = None

    def watch(self, project: Any) -> None:
        dirs = self.watcher.directories()
        if dirs:
            self.watcher.removePaths(dirs)
        self._project = project
        self.timer.stop()
        if project is not None:
            self.watcher.addPaths([str(project.root), str(project.masks_dir)])
            self._known = self._listing()

    def _listing(self) -> tuple[frozenset, frozenset] | None:
        import os

        p = self._project
        try:
            return (frozenset(n for n in os.listdir(p.root) if not n.startswith(".")),
                    frozenset(n for n in os.listdir(p.masks_dir) if not n.startswith(".")))
        except OSError:
            return None

    def _changed(self) -> None:
        if self._project is None or self.window.session is None:
            return
        listing = self._listing()
        if listing == self._known:  # only temp files or our own rewrites
            return
        self._known = listing
        self.window.rescan()
