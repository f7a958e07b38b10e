"""MaskCanvas: the QGraphicsView the user paints on.

Data lives in ``MaskDocument`` (numpy); this class wires it to the scene items, the tools,
the per-image undo stacks and the signals. Mouse/keyboard handling is in ``input.py``.
Scene coordinates are image pixel coordinates (pixel (x, y) covers [x, x+1) x [y, y+1)).
Tool, brush size, active class and the layer settings are read from an
:class:`app.editor_state.EditorState` (the window's, or the canvas's own when it stands alone);
``set_tool`` / ``set_brush_size`` / ... write to that state, and the canvas follows its signals.
"""

from __future__ import annotations

import logging
import zlib
from collections import OrderedDict
from typing import Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QUndoStack
from PySide6.QtWidgets import QFrame, QGraphicsScene, QGraphicsView, QWidget

from app.canvas.assist import AssistController, ProbabilitySource
from app.canvas.document import MaskDocument, Rect
from app.canvas.input import CanvasInputMixin
from app.canvas.layers import BrushCursorItem, ImageItem
from app.canvas.overlays import OverlaySet
from app.canvas.tools import Tool, make_tools
from app.canvas.undo import PatchCommand, make_stack
from app.editor_state import EditorState

log = logging.getLogger(__name__)

MAX_KEPT_STACKS = 32  # undo history is kept for this many recently shown images


def _fingerprint(mask: np.ndarray) -> int:
    data = np.ascontiguousarray(mask)
    return zlib.crc32(data.data.cast("B"), hash(data.shape) & 0xFFFFFFFF)  # .data: memoryview(data)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] < 3:
        raise ValueError(f"image must be HxWx3 RGB, got shape {img.shape}")
    return np.ascontiguousarray(img[:, :, :3], dtype=np.uint8)


class MaskCanvas(CanvasInputMixin, QGraphicsView):
    """Image + mask/boundary/diff overlays, brush/eraser/fill/pan, undo per image."""

    strokeFinished = Signal(str)
    # stem, Rect, pixels after the edit (a read-only view: copy to keep); emitted just before
    # strokeFinished for every finished edit, undo and redo (the stroke journal stores it)
    editCommitted = Signal(str, object, object)
    maskReplaced = Signal(str)
    zoomChanged = Signal(float)
    brushSizeChanged = Signal(int)
    cursorMoved = Signal(int, int)
    toolChanged = Signal(str)
    layerVisibilityChanged = Signal(str, bool)   # "mask" | "boundary" | "diff"
    undoStackChanged = Signal(object)            # the QUndoStack of the image just shown

    def __init__(self, parent: QWidget | None = None, state: EditorState | None = None) -> None:
        super().__init__(parent)
        self.state = state if state is not None else EditorState(self)
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setBackgroundBrush(QColor(38, 40, 44))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState, True)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing, True)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.setMouseTracking(True)
        self.viewport().setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._doc: MaskDocument | None = None
        self._stem: str | None = None
        self._overlays = OverlaySet(self.state)
        self._cursor_item: BrushCursorItem | None = None
        self._tools: dict[str, Tool] = make_tools()
        self._tool: Tool = self._tools[self.state.tool]
        self._stacks: OrderedDict[str, QUndoStack] = OrderedDict()
        self._fingerprints: dict[str, int] = {}
        self._fit_mode = True
        self._image_item: ImageItem | None = None
        self._display_lut: np.ndarray | None = None
        self._init_input()
        self.assist = AssistController(self)  # box / scribble jobs (app/canvas/assist.py)
        self.undoStackChanged.connect(self.assist.stack_changed)
        st = self.state
        st.toolChanged.connect(self._tool_changed)
        st.brushSizeChanged.connect(self._brush_size_changed)
        st.layerVisibilityChanged.connect(self._layer_changed)
        st.opacityChanged.connect(lambda _v: self._overlays.apply_opacity())
        st.boundaryWidthChanged.connect(lambda _w: self._overlays.apply_boundary_width())

    # ---- image / mask ----------------------------------------------------------------------
    def set_image(self, stem: str, image_rgb: np.ndarray, mask: np.ndarray | None,
                  prediction: np.ndarray | None) -> None:
        """Show ``image_rgb`` with ``mask`` (None ⇒ empty) and ``prediction`` (may be None).

        An unfinished stroke on the previous image is committed first (and announced).
        Undo history of ``stem`` is kept if ``mask`` equals the mask it was left with.
        """
        self._finish_active_edit()
        self._remember_fingerprint()
        rgb = _as_rgb(image_rgb)
        doc = MaskDocument(rgb.shape[:2], mask, prediction)
        self.assist.image_changing()
        self._scene.clear()
        self._image_item = ImageItem(rgb)
        self._image_item.set_lut(self._display_lut)
        self._scene.addItem(self._image_item)
        self._doc, self._stem = doc, stem
        self._overlays.attach(self._scene, doc)
        self._cursor_item = BrushCursorItem()
        self._cursor_item.set_size(self.state.brush_size)
        self._cursor_item.setVisible(False)
        self._scene.addItem(self._cursor_item)
        self._scene.setSceneRect(QRectF(0, 0, doc.width, doc.height))
        stack = self._stack_for(stem, _fingerprint(doc.mask))
        stack.setClean()
        self.fit_to_view()
        self.maskReplaced.emit(stem)
        self.undoStackChanged.emit(stack)

    def set_prediction(self, prediction: np.ndarray | None) -> None:
        if self._doc is None:
            return
        self._doc.set_prediction(prediction)
        self._overlays.prediction_changed()

    def prediction(self) -> np.ndarray | None:
        return None if self._doc is None else self._doc.prediction

    def set_version_diff(self, codes: np.ndarray | None, colors: Sequence[tuple[int, int, int]] = ()) -> bool:
        """Two versions' predictions compared (segcore.compare.diff_codes) in the diff layer, code i
        in ``colors[i - 1]``, until another image is shown; None: mask vs prediction again.
        False when ``codes`` do not fit the image shown."""
        if self._doc is None or (codes is not None and codes.shape != (self._doc.height, self._doc.width)):
            return False
        self._overlays.set_version_diff(codes, colors)
        return True

    def diff_layer_pixels(self) -> np.ndarray | None:
        """The diff layer's ARGB pixels (tests, screenshots), or None before it was drawn."""
        item = self._overlays.items.get("diff")
        return None if item is None or item.qimage() is None else item.ensure_buffer()

    def accept_prediction(self) -> None:
        """Copy the prediction into the mask as one undoable edit (emits strokeFinished)."""
        doc = self._doc
        if doc is None or doc.prediction is None:
            return
        self._finish_active_edit()
        rect = doc.replace_all(doc.prediction)
        if rect is not None:
            self.refresh(rect)
            self.commit_edit(rect, "Accept prediction")

    def current_stem(self) -> str | None:
        return self._stem

    def mask(self) -> np.ndarray:  # type: ignore[override]  # shadows QWidget.mask() (a QRegion) on purpose
        """The live mask (HxW uint8). Copy it before handing it to another thread."""
        return self._doc.mask if self._doc is not None else np.zeros((0, 0), np.uint8)

    def document(self) -> MaskDocument | None:
        return self._doc

    def has_edits(self) -> bool:
        stack = self._stacks.get(self._stem or "")
        return stack is not None and not stack.isClean()

    # ---- tools (the settings live in self.state) -------------------------------------------
    def set_tool(self, name: str) -> None:
        self.state.set_tool(name)

    def _tool_changed(self, name: str) -> None:
        self._finish_active_edit()  # the stroke of the previous tool ends here
        self._tool = self._tools[name]
        self.assist.tool_changed()
        self._update_cursor_shape()
        self.toolChanged.emit(name)

    def tool(self) -> str:
        return self._tool.name

    def set_brush_size(self, px: int) -> None:
        self.state.set_brush_size(px)

    def _brush_size_changed(self, px: int) -> None:
        if self._cursor_item is not None:
            self._cursor_item.set_size(px)
        self.brushSizeChanged.emit(px)

    def brush_size(self) -> int:
        return self.state.brush_size

    def set_active_class(self, idx: int) -> None:
        self.state.set_active_class(idx)

    def active_class(self) -> int:
        return self.state.active_class

    # ---- display (never changes image data or mask) ----------------------------------------
    def set_display_lut(self, lut: np.ndarray | None) -> None:
        """Brightness / contrast of the photo as drawn (uint8[256] table; None: unchanged).
        Kept for the next images; the image data and the mask are untouched."""
        self._display_lut = None if lut is None else np.asarray(lut, np.uint8)
        if self._image_item is not None:
            self._image_item.set_lut(self._display_lut)

    def image_rgb(self) -> np.ndarray | None:
        """The shown photo as loaded (HxWx3 uint8), not as drawn."""
        return None if self._image_item is None else self._image_item.rgb()

    # ---- layers -----------------------------------------------------------------------------
    def set_class_colors(self, colors: Sequence[tuple[int, int, int]]) -> None:
        self._overlays.set_colors(colors)

    def set_mask_is_prediction(self, is_prediction: bool) -> None:
        """Draw the mask hatched (it is the model's prediction) or solid (the user's)."""
        self._overlays.set_hatched(is_prediction)

    def set_partial_labels(self, partial: bool) -> None:
        """Partial labels: void pixels (255, not labelled) show the prediction hatched."""
        self._overlays.set_partial(partial)

    def mask_is_prediction(self) -> bool:
        return self._overlays.hatched

    def _layer_changed(self, name: str, visible: bool) -> None:
        self._overlays.apply_visibility(name)
        self.layerVisibilityChanged.emit(name, visible)

    def set_mask_visible(self, visible: bool) -> None:
        self.state.set_layer_visible("mask", visible)

    def set_boundary_visible(self, visible: bool) -> None:
        self.state.set_layer_visible("boundary", visible)

    def set_diff_visible(self, visible: bool) -> None:
        self.state.set_layer_visible("diff", visible)

    def layer_visible(self, name: str) -> bool:
        return self.state.layer_visible(name)

    def set_mask_opacity(self, opacity: float) -> None:
        self.state.set_opacity(opacity)

    def mask_opacity(self) -> float:
        return self.state.opacity

    def set_boundary_width(self, width: int) -> None:
        self.state.set_boundary_width(width)

    def boundary_width(self) -> int:
        return self.state.boundary_width

    # ---- undo -------------------------------------------------------------------------------
    def undo_stack(self) -> QUndoStack:
        """The current image's stack (a fresh empty one before the first set_image)."""
        return self._stack_for(self._stem or "", None)

    def _stack_for(self, stem: str, fingerprint: int | None) -> QUndoStack:
        stack = self._stacks.get(stem)
        if stack is None:
            stack = make_stack(self)
            self._stacks[stem] = stack
        elif fingerprint is not None and self._fingerprints.get(stem) != fingerprint:
            stack.clear()  # the mask changed outside this canvas: old patches no longer apply
        self._stacks.move_to_end(stem)
        while len(self._stacks) > MAX_KEPT_STACKS:
            old_stem, old = self._stacks.popitem(last=False)
            self._fingerprints.pop(old_stem, None)
            old.deleteLater()
        return stack

    def _remember_fingerprint(self) -> None:
        if self._doc is not None and self._stem is not None:
            self._fingerprints[self._stem] = _fingerprint(self._doc.mask)

    def _apply_patch(self, stem: str, rect: Rect, pixels: np.ndarray) -> None:
        """Undo/redo writer: put ``pixels`` back, repaint the rect, announce the edit."""
        if stem != self._stem or self._doc is None:
            log.warning("undo/redo for image %s ignored: %s is shown", stem, self._stem)
            return
        self._doc.apply(rect, pixels)
        self.refresh(rect)
        self.editCommitted.emit(stem, rect, pixels)
        self.strokeFinished.emit(stem)

    # ---- ToolHost ---------------------------------------------------------------------------
    def refresh(self, rect: Rect) -> None:
        """Re-render the overlays inside ``rect`` (image pixels) only."""
        self._overlays.refresh(rect)

    def commit_edit(self, rect: Rect | None, text: str) -> None:
        """Turn the edit in ``rect`` into an undo command and announce it."""
        if self._doc is None or self._stem is None:
            return
        patch = self._doc.commit(rect)
        if patch is None:
            return
        stem = self._stem
        # announced before the push: the push's stack signals already save (and journal) it
        self.editCommitted.emit(stem, patch.rect, patch.after)
        self._stack_for(stem, None).push(PatchCommand(stem, patch, self._apply_patch, text))
        self.strokeFinished.emit(stem)

    def tool_is_drawing(self) -> bool:
        return self._tool.active()

    # ---- ToolHost: the assist tools (app/canvas/assist.py does the work) -----------------
    def show_box(self, rect: Rect | None) -> None:
        self.assist.show_box(rect)

    def assist_box(self, rect: Rect) -> None:
        self.assist.box(rect)

    def show_scribble(self, points, background: bool) -> None:
        self.assist.show_scribble(points, background)

    def assist_scribble(self, points, background: bool) -> None:
        self.assist.add_scribble(points, background)

    def set_probability_source(self, source: ProbabilitySource | None) -> None:
        """``source(stem, image)`` → the model's CxHxW probabilities or None (worker thread)."""
        self.assist.set_probability_source(source)

    def _finish_active_edit(self) -> None:
        if self._tool.active():
            self._tool.release(self, self._tool_last_point())

    # ---- zoom -------------------------------------------------------------------------------
    def zoom(self) -> float:
        return float(self.transform().m11())

    def fit_to_view(self) -> None:
        self._fit_mode = True
        if self._doc is not None:
            self.fitInView(self._scene.sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
        self.zoomChanged.emit(self.zoom())

    def zoom_actual(self) -> None:
        """1 image pixel = 1 screen pixel, keeping the view centre."""
        self._fit_mode = False
        centre = self.mapToScene(self.viewport().rect().center())
        self.resetTransform()
        self.centerOn(centre)
        self.zoomChanged.emit(self.zoom())

    def set_zoom(self, factor: float, anchor: QPointF | None = None) -> None:
        """Absolute zoom (screen px per image px); the image point under ``anchor`` (viewport
        position, default: centre) stays where it is."""
        self._fit_mode = False
        lo, hi = self._zoom_limits()
        factor = min(hi, max(lo, float(factor)))
        current = self.zoom()
        if current > 0 and abs(factor - current) > 1e-9:
            view_pos = QPointF(anchor) if anchor is not None else QPointF(self.viewport().rect().center())
            inv, _ = self.viewportTransform().inverted()
            scene_pos = inv.map(view_pos)
            self.scale(factor / current, factor / current)
            moved = self.viewportTransform().map(scene_pos) - view_pos
            h, v = self.horizontalScrollBar(), self.verticalScrollBar()
            h.setValue(h.value() + round(moved.x()))
            v.setValue(v.value() + round(moved.y()))
        self.zoomChanged.emit(self.zoom())

    def _zoom_limits(self) -> tuple[float, float]:
        if self._doc is None:
            return 0.01, 64.0
        vp = self.viewport().rect()
        fit = min(vp.width() / max(1, self._doc.width), vp.height() / max(1, self._doc.height))
        return min(fit, 1.0) / 4.0, 64.0

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fit_mode and self._doc is not None:
            self.fitInView(self._scene.sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
            self.zoomChanged.emit(self.zoom())
