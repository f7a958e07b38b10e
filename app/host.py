"""PanelHost: what a panel (a dock such as the Training dock) may use from the main window.

A panel is given the window as a :class:`PanelHost` and uses nothing else of it: no polling,
no ``getattr`` probing, no private members. The main window (:class:`app.main_window.MainWindow`)
implements this protocol; it is a QMainWindow, so a panel may parent its QObjects to it.

- ``session`` is the open project's :class:`app.session.Session` (None when no folder is open);
  ``sessionChanged(session)`` is emitted after a folder has been opened (the new session, its
  first image already requested) and after it has been closed (None).
- ``closing`` is emitted when the window is about to close for good (the user did not cancel):
  stop threads, cancel work.
- ``action_table`` is the one action table (not named ``actions``: that is QWidget's method):
  a panel registers its commands as :class:`app.actions.ActionSpec` rows
  (``action_table.register(specs, target)``), so menus, shortcuts and Help ▸ Shortcuts know
  them; ``menu(title)`` gives the window's menu of that title (a new one before Help if needed)
  and ``add_toolbar_action`` puts an action on the main toolbar.
- ``editor`` is the :class:`app.editor_state.EditorState` (tool, brush, layers, DenseCRF); a
  panel that changes an editor setting writes it there.
- ``settings`` is the :class:`app.settings.Settings` (QSettings) of the app.
- ``add_panel_dock`` adds a dock widget (its place persists); ``dockWidgetArea``,
  ``resizeDocks``, ``setCorner`` and ``height`` are QMainWindow's, for a dock to size itself.
- ``show_message`` puts a message on the status bar.
- ``show_stem(stem)`` shows that image on the main canvas; ``canvas`` is the
  :class:`app.canvas.view.MaskCanvas` (the version comparison draws its diff layer there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, Sequence

if TYPE_CHECKING:
    from PySide6.QtCore import Qt, SignalInstance
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QDockWidget, QMenu, QWidget

    from .actions import Actions
    from .canvas.view import MaskCanvas
    from .editor_state import EditorState
    from .session import Session
    from .settings import Settings


class PanelHost(Protocol):
    sessionChanged: SignalInstance   # (Session | None)
    closing: SignalInstance          # ()
    session: Session | None
    action_table: Actions
    editor: EditorState
    settings: Settings
    canvas: MaskCanvas

    def menu(self, title: str) -> QMenu: ...

    def add_toolbar_action(self, action: QAction) -> None: ...

    def add_panel_dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget: ...

    def show_message(self, text: str, ms: int = 10000) -> None: ...

    def show_stem(self, stem: str | None) -> None: ...

    # QMainWindow's dock layout
    def dockWidgetArea(self, dock: QDockWidget) -> Qt.DockWidgetArea: ...

    def resizeDocks(self, docks: Sequence[QDockWidget], sizes: Sequence[int],
                    orientation: Qt.Orientation) -> None: ...

    def setCorner(self, corner: Qt.Corner, area: Qt.DockWidgetArea) -> None: ...

    def height(self) -> int: ...
