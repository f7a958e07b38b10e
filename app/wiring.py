"""Signal/slot wiring of the main window's actions, canvas and panels (no logic of its own)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .panels.dialogs import show_about

if TYPE_CHECKING:
    from .main_window import MainWindow


def _resize_brush(w: MainWindow, sign: int) -> None:
    size = w.canvas.brush_size()
    w.canvas.set_brush_size(size + sign * max(1, round(size * 0.1)))


def connect_window(w: MainWindow) -> None:
    a, c, t = w.actions, w.canvas, w.tools
    a.open_folder.triggered.connect(w.choose_folder)
    w.empty_page.button.clicked.connect(w.choose_folder)
    a.open_demo.triggered.connect(w.open_demo)
    a.quit.triggered.connect(w.close)
    a.export_masks.triggered.connect(w.show_export)
    a.import_masks.triggered.connect(w.show_import)
    a.rescan.triggered.connect(w.rescan)
    a.undo.triggered.connect(w.undo_group.undo)
    a.redo.triggered.connect(w.undo_group.redo)
    w.undo_group.canUndoChanged.connect(a.undo.setEnabled)
    w.undo_group.canRedoChanged.connect(a.redo.setEnabled)
    c.undoStackChanged.connect(w._set_undo_stack)
    a.accept_prediction.triggered.connect(lambda: w.session and w.session.accept_prediction())
    a.clear_mask.triggered.connect(lambda: w.session and w.session.clear_mask())
    a.reset_image.triggered.connect(lambda: w.session and w.session.status.reset())
    a.mark_done.triggered.connect(lambda: w.session and w.session.status.mark_done())
    a.done_next.triggered.connect(lambda: w.session and w.session.status.mark_done()
                                  and w.nav.next_unlabelled())
    a.skip_image.triggered.connect(lambda: w.session and w.session.status.skip())
    a.use_for_training.triggered.connect(lambda: w.session and w.session.status.use_for_training())
    for tool in ("brush", "eraser", "fill", "pan"):
        a[f"tool_{tool}"].triggered.connect(lambda _=False, n=tool: c.set_tool(n))
    c.toolChanged.connect(lambda n: a[f"tool_{n}"].setChecked(True))
    a.brush_smaller.triggered.connect(lambda: _resize_brush(w, -1))
    a.brush_larger.triggered.connect(lambda: _resize_brush(w, +1))
    c.brushSizeChanged.connect(t.set_brush_size)
    t.brushSizeChanged.connect(c.set_brush_size)
    t.classChanged.connect(c.set_active_class)
    a.edit_classes.triggered.connect(w.show_classes)
    a.partial_labels.toggled.connect(lambda on: w.session and w.session.status.set_partial(on))
    t.classes_button.clicked.connect(w.show_classes)
    for i in range(1, 10):
        a[f"class_{i}"].triggered.connect(lambda _=False, k=i: w.pick_class(k))
    t.opacityChanged.connect(c.set_mask_opacity)
    t.boundaryWidthChanged.connect(c.set_boundary_width)
    a.fit.triggered.connect(c.fit_to_view)
    a.zoom_actual.triggered.connect(c.zoom_actual)
    for layer in ("mask", "boundary", "diff"):
        a[f"show_{layer}"].toggled.connect(getattr(c, f"set_{layer}_visible"))
    c.layerVisibilityChanged.connect(lambda n, v: a[f"show_{n}"].setChecked(v))
    c.zoomChanged.connect(w.status.set_zoom)
    c.cursorMoved.connect(w.status.set_pixel)
    a.theme_dark.triggered.connect(lambda: w.set_theme("dark"))
    a.theme_light.triggered.connect(lambda: w.set_theme("light"))
    a.next_image.triggered.connect(w.nav.next)
    a.previous_image.triggered.connect(w.nav.previous)
    a.next_unlabelled.triggered.connect(w.nav.next_unlabelled)
    a.predict_again.triggered.connect(lambda: w.session and w.session.request_predictions(True))
    a.crf.toggled.connect(w._crf_toggled)
    a.crf_settings.triggered.connect(lambda: w.crf_popover.popup_at(w.tools.crf_settings_button))
    w.crf_popover.paramsChanged.connect(w._crf_params_changed)
    a.shortcuts.triggered.connect(w.show_shortcuts)
    a.about.triggered.connect(lambda: show_about(w))
    w.image_list.stemActivated.connect(w.show_stem)
    w.thumbs.failed.connect(w._thumb_failed)
