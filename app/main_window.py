"""SegLoop's main window: menus, toolbar, docks and status bar around the canvas.

Thin composition only. Project logic lives in :class:`app.session.Session`; panels in
``app/panels``; commands and what they do in ``app/actions.py``; the editor's settings (tool,
brush, class, layers, DenseCRF) in the one :class:`app.editor_state.EditorState`, which the
canvas, the Tools panel, the actions and the CRF popover bind to; persistence in
``app/settings.py``. Default layout: image list (left dock), canvas (centre), tools (right
dock). Further panels (the Training dock) use the window only through the
:class:`app.host.PanelHost` protocol, which this class implements.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QUndoGroup
from PySide6.QtWidgets import (QApplication, QDockWidget, QFileDialog, QFrame, QMainWindow, QMenu,
                               QMessageBox, QScrollArea, QStackedWidget, QToolBar, QVBoxLayout,
                               QWidget)

from segcore.project import Project

from . import recovery, theme
from .actions import MENUS, Actions
from .canvas import MaskCanvas
from .display import DisplayController
from .editor_state import EditorState
from .image_status import StatusChip
from .folder_watch import FolderWatch
from .mask_checks import MaskChecks
from .panels.banner import Banner
from .panels.crf_popover import CRFPopover
from .panels.classes_panel import ClassesDialog
from .panels.dialogs import RecentMenu, ask_adopt_classes, ask_mask_resize
from .panels.export_dialog import ExportDialog, ImportDialog
from .panels.image_list import ImageListPanel
from .panels.pages import MessagePage
from .panels.shortcuts_dialog import ShortcutsDialog
from .panels.status_bar import StatusBar
from .panels.tools_panel import ToolsPanel
from .resources import app_icon
from .session import Session
from .settings import Settings
from .training import attach_training
from .workers.thumbnails import ThumbnailProvider

TOOLBAR = ("open_folder", None, "previous_image", "next_image", "next_unlabelled", None, "undo",
           "redo", None, "tool_brush", "tool_eraser", "tool_fill", "tool_pan", "tool_box", "tool_scribble", None, "fit",
           "zoom_actual", None, "show_mask", "show_boundary", "show_diff", None,
           "accept_prediction", "mark_done", "done_next", "crf")
LABEL_ACTIONS = ("mark_done", "done_next", "skip_image", "reset_image", "partial_labels",
                 "edit_classes")  # need a writable image


DEFAULT_SIZE = QSize(1400, 900)
SMALLEST_DEFAULT = QSize(1280, 720)  # the layout is made to work down to this size


def default_size(available: QSize) -> QSize:
    """1400x900, shrunk to the screen's available area but not below 1280x720."""
    return QSize(min(DEFAULT_SIZE.width(), max(SMALLEST_DEFAULT.width(), available.width())),
                 min(DEFAULT_SIZE.height(), max(SMALLEST_DEFAULT.height(), available.height())))


class MainWindow(QMainWindow):
    sessionChanged = Signal(object)  # Session | None: a folder was opened / closed
    closing = Signal()               # the window closes for good (the user did not cancel)
    signal_flush: recovery.SignalFlusher | None  # set by app.main (recovery.install_signal_flush)

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self.session: Session | None = None
        self.editor = EditorState(self)
        self.non_interactive_close = False  # SIGTERM/SIGHUP: no dialogs (app/recovery.py)
        self.setWindowTitle("SegLoop")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.action_table = Actions(self)
        self.undo_group = QUndoGroup(self)
        self.thumbs = ThumbnailProvider(self)
        self.canvas = MaskCanvas(state=self.editor)
        self.status_chip = StatusChip(self.canvas)
        self.status = StatusBar(self)
        self.setStatusBar(self.status)
        self._build_central()
        self.image_list = ImageListPanel(self.thumbs)
        self.tools = ToolsPanel(self.action_table, self.editor)
        self.images_dock = self.add_panel_dock("Images", self.image_list, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.tools_dock = self.add_panel_dock("Tools", _scrollable(self.tools),
                                              Qt.DockWidgetArea.RightDockWidgetArea)
        self.display = DisplayController(self)
        self.crf_popover = CRFPopover(self.editor, self)
        self.folder_watch = FolderWatch(self)
        self.mask_checks = MaskChecks(self)
        self._build_menus()
        self._build_toolbar()
        self.ask_mask_resize = lambda stem, m, i: ask_mask_resize(self, stem, m, i)
        self.ask_adopt_classes = lambda names, why: ask_adopt_classes(self, names, why)
        self._connect()
        self.training = attach_training(self)  # before restore_window: its dock has a saved place
        self.editor.restore(self.settings)
        self.image_list.restore(self.settings)
        self.resize(default_size(self.screen().availableGeometry().size()))
        # narrower side docks below 1400 px leave the training dock room for its three boxes
        self.resizeDocks([self.images_dock, self.tools_dock],
                         [290, 300] if self.width() >= 1400 else [265, 295], Qt.Orientation.Horizontal)
        self.settings.restore_window(self)
        self._set_project_actions(False)

    # -- construction -----------------------------------------------------------------------
    def _build_central(self) -> None:
        self.banner = Banner(closable=False)
        self.model_banner = Banner()
        self.stack = QStackedWidget()
        self.empty_page = MessagePage(None, "Open Folder…")
        self.empty_page.set_text("No project open",
                                 "Open a folder of images (Ctrl+O) or drop one onto this window.")
        self.error_page = MessagePage("warning")
        for w in (self.empty_page, self.canvas, self.error_page):
            self.stack.addWidget(w)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(self.model_banner)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

    def add_panel_dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        """Add a dock panel; its objectName makes its place persist across sessions."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower().replace(' ', '_')}")
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        if hasattr(self, "panels_menu"):
            self.panels_menu.addAction(dock.toggleViewAction())
        return dock

    def _build_menus(self) -> None:
        bar = self.menuBar()
        self.menus = {name: bar.addMenu(f"&{name}") for name in MENUS}
        a = self.action_table
        file_menu = self.menus["File"]
        file_menu.addActions([a.open_folder, a.open_demo])
        self.recent_menu = RecentMenu(self.settings.recent_projects, self.open_project,
                                      self.settings.clear_recent_projects, file_menu)
        file_menu.addMenu(self.recent_menu)
        file_menu.addSeparator()
        file_menu.addActions([a.import_masks, a.export_masks, a.rescan])
        file_menu.addSeparator()
        file_menu.addAction(a.quit)
        edit = self.menus["Edit"]
        edit.addActions([a.undo, a.redo])
        edit.addSeparator()
        edit.addActions([a.accept_prediction, a.clear_mask, a.reset_image])
        self.menus["Tools"].addActions(a.in_menu("Tools"))
        self.class_menu = self.menus["Tools"].addMenu("Pick &Class")
        self.class_menu.addActions(a.in_menu("Classes"))
        view = self.menus["View"]
        view.addActions([a.fit, a.zoom_actual])
        view.addSeparator()
        view.addActions([a.show_mask, a.show_boundary, a.show_diff])
        view.addSeparator()
        theme_menu = view.addMenu("&Theme")
        theme_menu.addActions([a.theme_dark, a.theme_light])
        self.panels_menu = view.addMenu("&Panels")
        for dock in (self.images_dock, self.tools_dock):
            self.panels_menu.addAction(dock.toggleViewAction())
        self.menus["Image"].addActions(a.in_menu("Image"))
        self.menus["Help"].addActions([a.shortcuts, a.about])

    def _connect(self) -> None:
        """What the actions do is in their ActionSpecs; these are the views' own signals."""
        a, c = self.action_table, self.canvas
        a.bind_editor(self.editor)
        self.editor.crfEnabledChanged.connect(self._apply_crf)
        self.editor.crfParamsChanged.connect(lambda _p: self._apply_crf(True) if self.editor.crf_enabled else None)
        self.empty_page.button.clicked.connect(self.choose_folder)
        self.tools.classes_button.clicked.connect(self.show_classes)
        self.undo_group.canUndoChanged.connect(a.undo.setEnabled)
        self.undo_group.canRedoChanged.connect(a.redo.setEnabled)
        c.undoStackChanged.connect(self._set_undo_stack)
        c.zoomChanged.connect(self.status.set_zoom)
        c.cursorMoved.connect(self.status.set_pixel)
        c.assist.message.connect(self.status.showMessage)
        self.image_list.stemActivated.connect(self.show_stem)
        self.thumbs.failed.connect(self._thumb_failed)

    def menu(self, title: str) -> QMenu:
        """The menu called ``title``; a new one (before Help) for a panel's commands."""
        if title not in self.menus:
            menu = QMenu(f"&{title}", self.menuBar())
            self.menuBar().insertMenu(self.menus["Help"].menuAction(), menu)
            self.menus[title] = menu
        return self.menus[title]

    def add_toolbar_action(self, action: QAction) -> None:
        """Put a panel's action at the end of the main toolbar, after a separator."""
        self.toolbar.addSeparator()
        self.toolbar.addAction(action)

    def show_message(self, text: str, ms: int = 10000) -> None:
        self.status.showMessage(text, ms)

    def _build_toolbar(self) -> None:
        bar = QToolBar("Main toolbar", self)
        bar.setObjectName("toolbar_main")
        bar.setIconSize(QSize(20, 20))
        bar.setMovable(False)
        for name in TOOLBAR:
            if name is None:
                bar.addSeparator()
            else:
                bar.addAction(self.action_table[name])
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.toolbar = bar

    # -- projects ---------------------------------------------------------------------------
    def choose_folder(self) -> None:
        start = str(self.session.root.parent) if self.session else str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", start)
        if folder:
            self.open_project(folder)

    def open_demo(self) -> None:
        from segcore.demo import ensure_demo_project

        self.open_project(ensure_demo_project())

    def open_project(self, folder: str | Path) -> bool:
        """Open ``folder`` and show its first image; False (with a message) if impossible."""
        try:
            project = Project.open(folder)
        except Exception as exc:  # noqa: BLE001 - ProjectError, OSError, sqlite errors
            QMessageBox.warning(self, "Cannot open folder", f"{folder}\n\n{exc}")
            return False
        if not self.may_close_project("open another folder"):
            project.close()
            return False
        self.close_project()
        self.status.set_model("model: loading…")
        self.status.set_pixel(None, None)  # the previous project's cursor position
        self.session = session = Session(project, self.canvas, lambda *q: self.ask_mask_resize(*q), self)
        session.order = self.image_list.model.stems
        session.shown.connect(self._shown)
        session.showFailed.connect(self._show_failed)
        session.recordChanged.connect(self.image_list.model.update_stem)
        session.recordChanged.connect(self._update_accept)
        session.recordChanged.connect(self._status_changed)
        session.message.connect(self.status.showMessage)
        session.predictionBusy.connect(self._prediction_busy)
        session.modelReady.connect(self._model_ready)
        session.modelFailed.connect(self._model_failed)
        session.saveState.connect(self.status.set_save_state)
        session.orderChanged.connect(self.image_list.reorder)
        session.status.changed.connect(self._status_changed)
        self.action_table.partial_labels.blockSignals(True)
        self.action_table.partial_labels.setChecked(session.status.partial)
        self.action_table.partial_labels.blockSignals(False)
        session.worker.set_crf(self.editor.crf_enabled, self.editor.crf_params)
        self.thumbs.set_project(project)
        self.image_list.set_project(project)
        self.display.project_opened(project)  # mask colour (automatic or the project's)
        session.shown.connect(self.display.image_shown)
        self.tools.set_classes(project.classes)  # and the active class, if the project lacks it
        self._apply_read_only(project)
        self.model_banner.hide()
        self.settings.add_recent_project(project.root)
        self.setWindowTitle(f"{project.root.name} — SegLoop")
        self._set_project_actions(True)
        self.stack.setCurrentWidget(self.error_page)
        self._ensure_focus(self.image_list.view)
        self.error_page.set_text("Empty folder" if not project.stems() else "",
                                 "This folder has no images (PNG, JPEG, TIFF, BMP, WebP)."
                                 if not project.stems() else "")
        self.folder_watch.watch(project)
        self.mask_checks.project_opened(project)
        stems = self.image_list.model.stems() or project.stems()
        last = project.get_setting("last_image") if not project.read_only else None
        if stems:
            self.show_stem(last if last in stems else stems[0])
        for text in session.startup_messages:
            self.status.showMessage(text, 15000)
        recovery.offer_restore(self, session)
        notice = recovery.other_projects_notice(project.root)
        if notice:
            self.status.showMessage(notice, 15000)
        self.sessionChanged.emit(session)
        return True

    def may_close_project(self, action: str) -> bool:
        """False if the user cancelled; unsaved masks are written, kept or discarded first."""
        return self.session is None or recovery.resolve_unsaved(
            self, self.session, action, interactive=not self.non_interactive_close)

    # -- classes (app/panels/classes_panel.py, segcore/classes.py) ----------------------------
    def show_classes(self) -> ClassesDialog | None:
        if self.session is None or self.session.read_only:
            return None
        self.session.saver.flush()
        self.classes_dialog = ClassesDialog(self.session.project, self)
        self.classes_dialog.accepted.connect(self.classes_changed)
        self.classes_dialog.show()
        return self.classes_dialog

    def classes_changed(self) -> None:
        """The project's classes changed: colours, picker, list and the shown image."""
        s = self.session
        if s is None:
            return
        classes = s.project.classes
        self.canvas.set_class_colors([c.color for c in classes])
        self.tools.set_classes(classes)
        self.image_list.model.refresh()
        self.image_list.select_stem(s.current)
        self.training.schedule_refresh()
        if s.current:
            s.show(s.current)
        self.status.showMessage(f"{len(classes)} classes: " + ", ".join(c.name for c in classes), 8000)

    def pick_class(self, idx: int) -> None:
        if not self.tools.select_class(idx):
            n = self.session.project.num_classes if self.session else 2
            self.status.showMessage(f"No class {idx}: this project has classes 1–{n - 1} "
                                    "(Tools ▸ Classes… adds more)", 4000)

    def close_project(self) -> None:
        self.folder_watch.watch(None)
        self.mask_checks.wait()
        if self.session is None:
            return
        session, self.session = self.session, None
        if not session.read_only and session.current:
            try:
                session.project.set_setting("last_image", session.current)
            except Exception:  # noqa: BLE001
                pass
        session.close()
        session.deleteLater()
        self.thumbs.set_project(None)
        self.image_list.set_project(None)
        self.sessionChanged.emit(None)

    def _apply_read_only(self, project: Project) -> None:
        ro = bool(project.read_only)
        if ro:
            self.banner.show_message(
                f"Read-only project: {project.read_only_reason or 'the folder is not writable'}. "
                "Corrections cannot be saved, so editing is disabled.")
            self.editor.set_tool("pan")
        else:
            self.banner.hide()
        for name in ("tool_brush", "tool_eraser", "tool_fill", "tool_box", "tool_scribble", "refine_box",
                     "clear_mask", *LABEL_ACTIONS):
            self.action_table[name].setEnabled(not ro)
        self._update_accept()
        self.status.set_save_state("read-only" if ro else "saved")

    def _set_project_actions(self, enabled: bool) -> None:
        for name in ("next_image", "previous_image", "next_unlabelled", "predict_again",
                     "fit", "zoom_actual", "export_masks", "rescan", "import_masks",
                     *LABEL_ACTIONS):
            self.action_table[name].setEnabled(enabled and not (self.session and self.session.read_only))
        self._update_accept()
        if not enabled:
            self.status_chip.show_state(None, None, False)
            self.action_table.use_for_training.setEnabled(False)

    # -- masks in and out (app/panels/export_dialog.py, app/folder_watch.py) ---------------
    def show_export(self) -> ExportDialog | None:
        if self.session is None:
            return None
        self.export_dialog = ExportDialog(self.session.project, self.session.saver.flush, self)
        self.export_dialog.show()
        return self.export_dialog

    def show_import(self) -> ImportDialog | None:
        if self.session is None or self.session.read_only:
            return None
        self.import_dialog = ImportDialog(self.session.project, self)
        self.import_dialog.imported.connect(lambda _r: self.rescan())
        self.import_dialog.show()
        return self.import_dialog

    def rescan(self) -> None:
        """Re-read the folder: new images and masks appear, vanished ones go."""
        s = self.session
        if s is None:
            return
        s.saver.flush()
        try:
            s.project.rescan()
        except Exception as exc:  # noqa: BLE001 - ProjectError names the index
            self.status.showMessage(f"⚠ {exc}", 10000)
            return
        self.image_list.model.refresh()
        self.image_list.select_stem(s.current)
        self.training.schedule_refresh()
        cur = s.current
        if (cur and cur in s.project.stems() and s.status.shown_without_mask(cur)
                and s.project.mask_path(cur).is_file() and not self.canvas.has_edits()
                and s.saver.is_idle()):
            s.show(cur)  # a mask for the shown image appeared from outside: draw it

    def _status_changed(self, stem: str) -> None:
        """The shown image's status, role or look changed: the chip and the role action."""
        s = self.session
        if s is None or stem != self.canvas.current_stem():
            return
        try:
            record = s.project.record(stem)
        except Exception:  # noqa: BLE001 - a vanished image
            return
        self.status_chip.show_state(record.status.value, record.role,
                                    s.status.is_prediction_shown(), s.status.partial)
        self.action_table.use_for_training.setEnabled(not s.read_only and record.role == "held_out")

    def _update_accept(self, _stem: str | None = None) -> None:
        """Accept Prediction only does something with a prediction on a writable canvas.
        Called when an image is shown and when a row changes (a prediction arrived)."""
        s = self.session
        self.action_table.accept_prediction.setEnabled(
            s is not None and not s.read_only and self.canvas.prediction() is not None)

    # -- images -----------------------------------------------------------------------------
    def show_stem(self, stem: str | None) -> None:
        if self.session is not None and stem:
            self.session.show(stem)

    def show_neighbour(self, delta: int) -> None:
        """Next (+1) or previous (-1) image in the order the list shows."""
        self.show_stem(self.image_list.model.neighbour(self.current_stem(), delta))

    def show_next_unfinished(self) -> None:
        """The next image (wrapping around) that is not done, skipped or unreadable."""
        model = self.image_list.model
        stem = model.next_unfinished(self.current_stem())
        if stem is not None:
            self.show_stem(stem)
        elif model.rowCount():
            self.status.showMessage("Every image is done or skipped", 5000)

    def current_stem(self) -> str | None:
        return self.session.current if self.session else None

    def _ensure_focus(self, widget: QWidget) -> None:
        """Give ``widget`` the keyboard focus unless something in this window has it."""
        focus = QApplication.focusWidget()
        if focus is None or not self.isAncestorOf(focus) or not focus.isVisible():
            widget.setFocus()

    def _shown(self, stem: str) -> None:
        self._update_accept()
        self.stack.setCurrentWidget(self.canvas)
        self._ensure_focus(self.canvas)
        self.image_list.select_stem(stem)
        if self.session and self.session.read_only:
            self.editor.set_tool("pan")
        if self.session is not None:
            name = self.session.project.image_path(stem).name
            h, w = self.canvas.mask().shape[:2]
            self.status.set_image_info(name, w, h)
            self.setWindowTitle(f"{name} — {self.session.root.name} — SegLoop")

    def _show_failed(self, stem: str, message: str) -> None:
        self.action_table.accept_prediction.setEnabled(False)
        self.status.set_image_info(None)
        self.status.set_pixel(None, None)
        if self.session is not None:  # the title names the selected image, readable or not
            name = self.session.project.image_path(stem).name
            self.setWindowTitle(f"{name} (cannot be read) — {self.session.root.name} — SegLoop")
        self.image_list.select_stem(stem)
        self.error_page.set_text("This image cannot be read", message)
        self.stack.setCurrentWidget(self.error_page)
        self._ensure_focus(self.image_list.view)

    def _thumb_failed(self, stem: str, message: str) -> None:
        if self.session is not None:
            self.session.image_failed(stem, message)

    def _set_undo_stack(self, stack) -> None:  # QUndoStack
        if stack not in self.undo_group.stacks():
            self.undo_group.addStack(stack)
        self.undo_group.setActiveStack(stack)

    # -- model / CRF ------------------------------------------------------------------------
    def _prediction_busy(self, busy: bool, left: int) -> None:
        self.status.set_work(f"Predicting… ({left} queued)" if busy and left > 1
                             else "Predicting…" if busy else None)

    def _model_ready(self, device: str, label: str) -> None:
        self.status.set_device(device)
        self.status.set_model(label)

    def _model_failed(self, message: str) -> None:
        self.status.set_model("model: unavailable")
        self.status.model.setToolTip(message)
        self.model_banner.show_message(f"{message}. You can still correct masks by hand.")

    def _apply_crf(self, on: bool) -> None:
        """DenseCRF was switched (or its parameters changed while on): tell the worker and
        refine the shown image again."""
        from segcore.crf import crf_available

        ok, reason = crf_available()
        self.status.set_crf(on and ok, ok)
        if on and not ok:
            self.status.showMessage(reason or "DenseCRF unavailable", 10000)
        if self.session is not None:
            self.session.worker.set_crf(on and ok, self.editor.crf_params)
            self.session.request_predictions(force_current=True)

    def show_crf_settings(self) -> None:
        self.crf_popover.popup_at(self.tools.crf_settings_button)

    # -- theme, dialogs, drops --------------------------------------------------------------
    def set_theme(self, name: str) -> None:
        app = QApplication.instance()
        name = theme.apply_theme(app, name) if isinstance(app, QApplication) else name  # None before one exists
        self.settings.set_theme(name)
        self.action_table[f"theme_{name}"].setChecked(True)
        self.action_table.refresh_icons()
        self.tools.refresh_icons()
        for page in (self.empty_page, self.error_page):
            page.refresh_icon()

    def show_shortcuts(self) -> ShortcutsDialog:
        self.shortcuts_dialog = ShortcutsDialog(self.action_table, self)
        self.shortcuts_dialog.show()
        return self.shortcuts_dialog

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if _dropped_folder(event) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        folder = _dropped_folder(event)
        if folder is not None:
            event.acceptProposedAction()
            self.open_project(folder)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.may_close_project("quit"):
            event.ignore()
            return
        self.closing.emit()
        self.editor.save(self.settings)
        self.image_list.save(self.settings)
        self.settings.save_window(self)
        self.settings.sync()
        self.close_project()
        self.thumbs.pool.clear()
        self.thumbs.wait(5000)
        super().closeEvent(event)


def _scrollable(panel: QWidget) -> QScrollArea:
    """A vertical scroll area around a dock panel, so its height never sets the window's
    (a 1280x720 screen with large fonts); it scrolls only when the dock is shorter."""
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(panel)
    scroll.setMinimumWidth(panel.minimumSizeHint().width())
    return scroll


def _dropped_folder(event: QDragEnterEvent | QDropEvent) -> Path | None:
    mime = event.mimeData()
    if mime is None or not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile():
            path = Path(url.toLocalFile())
            if path.is_dir():
                return path
            if path.is_file():
                return path.parent
    return None
