"""The canvas side of the assist tools: rubber band, scribble strokes, jobs off the GUI thread.

``AssistController`` belongs to one :class:`~app.canvas.view.MaskCanvas`. The box and scribble
tools (app/canvas/tools.py) call it through the canvas's ToolHost methods; it shows their
geometry as scene items and runs the engine (segcore.assist: GrabCut, DenseCRF on the model's
probabilities) in a one-thread QThreadPool. A result is applied in the GUI thread as one edit
through ``canvas.commit_edit`` (one undo step, saved and journaled like a brush stroke), and
dropped with a status message if the image or the mask under it changed meanwhile.

Scribbles accumulate per image: every finished stroke refines the ROI around it with all
strokes drawn so far as hard labels. They are forgotten on a new image, another tool, Esc
("clear scribbles") and on undo. Strokes drawn while a job runs are refined together when it
returns. Probabilities come from ``set_probability_source(fn)``: ``fn(stem, image)`` is called
in the worker thread and returns the model's CxHxW probabilities, or None without a model (then
GrabCut with the scribbles as seeds, said in the status bar).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsRectItem

from app.canvas.document import MaskDocument, Rect

if TYPE_CHECKING:
    from app.canvas.view import MaskCanvas

log = logging.getLogger(__name__)

ProbabilitySource = Callable[[str, np.ndarray], "np.ndarray | None"]
FG_STROKE_COLOR = (0, 210, 255)     # scribbles: foreground (the active class)
BG_STROKE_COLOR = (255, 150, 0)     # scribbles: background
STROKE_ALPHA = 190
Z_ASSIST = 90  # above the overlays (10-30), under the brush cursor (100)


class _Relay(QObject):
    finished = Signal(int, object, str)  # job id, segcore.assist.Update | None, error text


class _Job(QRunnable):
    def __init__(self, relay: _Relay, job_id: int, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.relay, self.job_id, self.fn = relay, job_id, fn

    def run(self) -> None:
        try:
            result, error = self.fn(), ""
        except Exception as exc:  # shown in the status bar, the canvas keeps working
            log.exception("assist job failed")
            result, error = None, str(exc) or type(exc).__name__
        self.relay.finished.emit(self.job_id, result, error)


@dataclass
class _Pending:
    kind: str          # "box" | "refine" | "scribble"
    stem: str
    doc: MaskDocument
    label: str         # undo text
    snapshot: np.ndarray  # the whole mask when the job started (compared on return)
    rect: Rect | None = None
    extra: dict = field(default_factory=dict)


class AssistController(QObject):
    message = Signal(str, int)       # status-bar text, timeout ms
    busyChanged = Signal(bool)

    def __init__(self, canvas: MaskCanvas) -> None:
        super().__init__(canvas)
        self.canvas = canvas
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._relay = _Relay(self)
        self._relay.finished.connect(self._finished)
        self._source: ProbabilitySource | None = None
        self._next_id = 0
        self._jobs: dict[int, _Pending] = {}
        self._box_item: list[QGraphicsRectItem] = []
        self._live: QGraphicsPathItem | None = None
        self._stroke_items: list[QGraphicsPathItem] = []
        self._scribbles: np.ndarray | None = None  # HxW class labels, NO_SCRIBBLE elsewhere
        self._scribble_doc: MaskDocument | None = None
        self._dirty: Rect | None = None            # strokes not yet refined (their ROI)
        self._last_box: dict[str, tuple[Rect, np.ndarray]] = {}  # stem → box, mask after it
        self._stack = None
        self._stack_index = 0
        self._pushing = False

    # ---- settings ---------------------------------------------------------------------------
    def set_probability_source(self, source: ProbabilitySource | None) -> None:
        self._source = source

    def busy(self) -> bool:
        return bool(self._jobs)

    def wait(self, ms: int = 5000) -> bool:
        return self.pool.waitForDone(ms)

    # ---- lifetime: the canvas calls these ---------------------------------------------------
    def image_changing(self) -> None:
        """Before the scene is cleared for another image: drop items and scribbles (running
        jobs are dropped when they return: their document is gone)."""
        self._box_item, self._live, self._stroke_items = [], None, []
        self._scribbles, self._scribble_doc, self._dirty = None, None, None

    def stack_changed(self, stack: Any) -> None:
        if self._stack is not None:
            try:
                self._stack.indexChanged.disconnect(self._index_changed)
            except (RuntimeError, TypeError):
                pass
        self._stack = stack
        self._stack_index = stack.index()
        stack.indexChanged.connect(self._index_changed)

    def _index_changed(self, index: int) -> None:
        went_back = index < self._stack_index and not self._pushing
        self._stack_index = index
        if went_back:
            self.clear_scribbles()
            self._last_box.pop(self.canvas.current_stem() or "", None)

    def tool_changed(self) -> None:
        self.clear_scribbles()

    def clear_scribbles(self) -> None:
        scene = self.canvas.scene()
        for item in self._stroke_items + ([self._live] if self._live is not None else []):
            scene.removeItem(item)
        self._stroke_items, self._live = [], None
        self._scribbles, self._scribble_doc, self._dirty = None, None, None

    def has_scribbles(self) -> bool:
        return bool(self._stroke_items)

    # ---- the rubber band --------------------------------------------------------------------
    def show_box(self, rect: Rect | None) -> None:
        scene = self.canvas.scene()
        if rect is None:
            for item in self._box_item:
                scene.removeItem(item)
            self._box_item = []
            return
        if not self._box_item:
            for color, style, width in ((QColor(0, 0, 0, 200), Qt.PenStyle.SolidLine, 3),
                                        (QColor(255, 255, 255), Qt.PenStyle.DashLine, 1.5)):
                item = QGraphicsRectItem()
                pen = QPen(color, width, style)
                pen.setCosmetic(True)
                item.setPen(pen)
                item.setZValue(Z_ASSIST)
                item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
                scene.addItem(item)
                self._box_item.append(item)
        for item in self._box_item:
            item.setRect(QRectF(rect.x0, rect.y0, rect.width, rect.height))

    # ---- scribble strokes -------------------------------------------------------------------
    def _path_item(self, points: list[tuple[float, float]], background: bool) -> QGraphicsPathItem:
        item = QGraphicsPathItem()
        rgb = BG_STROKE_COLOR if background else FG_STROKE_COLOR
        pen = QPen(QColor(*rgb, STROKE_ALPHA), max(1, self.canvas.brush_size()))
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        item.setPen(pen)
        item.setZValue(Z_ASSIST)
        item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        path = QPainterPath(QPointF(np.floor(points[0][0]) + 0.5, np.floor(points[0][1]) + 0.5))
        for x, y in points[1:] or points:
            path.lineTo(QPointF(np.floor(x) + 0.5, np.floor(y) + 0.5))
        item.setPath(path)
        return item

    def show_scribble(self, points: list[tuple[float, float]] | None, background: bool) -> None:
        scene = self.canvas.scene()
        if self._live is not None:
            scene.removeItem(self._live)
            self._live = None
        if points:
            self._live = self._path_item(points, background)
            scene.addItem(self._live)

    def add_scribble(self, points: list[tuple[float, float]], background: bool) -> None:
        """A finished stroke: keep it (drawn), add it to the label map, refine around it."""
        from segcore.assist import NO_SCRIBBLE, draw_stroke

        doc = self.canvas.document()
        self.show_scribble(None, background)
        if doc is None or not points:
            return
        active = self.canvas.active_class()
        if not background and active == 255:
            self.message.emit("Scribbles need a class: pick one (keys 1–9), not void", 6000)
            return
        if self._scribble_doc is not doc or self._scribbles is None:
            self.clear_scribbles()
            self._scribbles = np.full(doc.mask.shape, NO_SCRIBBLE, np.uint8)
            self._scribble_doc = doc
        item = self._path_item(points, background)
        self.canvas.scene().addItem(item)
        self._stroke_items.append(item)
        box = draw_stroke(self._scribbles, points, self.canvas.brush_size(), 0 if background else active)
        if box is None:
            return
        self._dirty = Rect(*box).union(self._dirty)
        self._start_scribble_job()

    def _start_scribble_job(self) -> None:
        if self.busy() or self._dirty is None or self._scribbles is None:
            return
        from segcore.assist import roi_around, scribble_update

        doc, stem = self.canvas.document(), self.canvas.current_stem()
        image = self.canvas.image_rgb()
        if doc is None or stem is None or image is None or doc is not self._scribble_doc:
            return
        dirty, self._dirty = self._dirty, None
        roi = roi_around((dirty.x0, dirty.y0, dirty.x1, dirty.y1), doc.mask.shape)  # around the strokes not yet refined
        scribbles, mask, active, source = self._scribbles.copy(), doc.mask.copy(), \
            self.canvas.active_class(), self._source

        def work() -> Any:
            probs = source(stem, image) if source is not None else None
            return scribble_update(image, mask, scribbles, active, probs=probs, roi=roi)

        self._submit(_Pending("scribble", stem, doc, "Scribble refinement", mask), work)

    # ---- boxes ------------------------------------------------------------------------------
    def box(self, rect: Rect) -> None:
        from segcore.assist import box_update

        doc, stem, image = self.canvas.document(), self.canvas.current_stem(), self.canvas.image_rgb()
        if doc is None or stem is None or image is None:
            return
        if self.busy():
            self.message.emit("Still working on the last assist: box ignored", 4000)
            return
        active = self.canvas.active_class()
        if active == 255:
            self.message.emit("A box needs a class: pick one (keys 1–9), not void", 6000)
            return
        mask = doc.mask.copy()
        box = (rect.x0, rect.y0, rect.x1, rect.y1)
        self._submit(_Pending("box", stem, doc, "Box (GrabCut)", mask, rect),
                     lambda: box_update(image, mask, box, active))

    def can_refine(self) -> bool:
        return (self.canvas.current_stem() or "") in self._last_box

    def refine_box(self) -> None:
        """GrabCut mask mode on the last box: the mask in it as probable labels, the strokes
        painted since the box as definite ones (segcore.assist.refine_update)."""
        from segcore.assist import refine_update

        doc, stem, image = self.canvas.document(), self.canvas.current_stem(), self.canvas.image_rgb()
        if doc is None or stem is None or image is None:
            return
        last = self._last_box.get(stem)
        if last is None:
            self.message.emit("Refine box: draw a box first (X), correct it with the brush or "
                              "eraser, then refine", 6000)
            return
        if self.busy():
            self.message.emit("Still working on the last assist", 4000)
            return
        rect, after = last
        mask, active = doc.mask.copy(), self.canvas.active_class()
        box = (rect.x0, rect.y0, rect.x1, rect.y1)
        self._submit(_Pending("refine", stem, doc, "Refine box (GrabCut)", mask, rect),
                     lambda: refine_update(image, mask, box, after, active))

    # ---- jobs -------------------------------------------------------------------------------
    def _submit(self, pending: _Pending, fn: Callable[[], Any]) -> None:
        self._next_id += 1
        self._jobs[self._next_id] = pending
        if len(self._jobs) == 1:
            self.busyChanged.emit(True)
        self.pool.start(_Job(self._relay, self._next_id, fn))

    def _finished(self, job_id: int, update: Any, error: str) -> None:
        job = self._jobs.pop(job_id, None)
        if not self._jobs:
            self.busyChanged.emit(False)
        if job is None:
            return
        try:
            self._apply(job, update, error)
        finally:
            if job.kind == "scribble":
                self._start_scribble_job()  # strokes drawn meanwhile

    def _apply(self, job: _Pending, update: Any, error: str) -> None:
        canvas = self.canvas
        name = {"box": "Box", "refine": "Refine box", "scribble": "Scribble"}[job.kind]
        if error:
            self.message.emit(f"⚠ {name} failed: {error}", 10000)
            return
        doc = canvas.document()
        if doc is not job.doc or canvas.current_stem() != job.stem:
            self.message.emit(f"{name} dropped: another image is shown", 5000)
            return
        if update is None:
            return
        region = Rect(*update.region)
        if canvas.tool_is_drawing() or not np.array_equal(doc.mask[region.slices()],
                                                          job.snapshot[region.slices()]):
            self.message.emit(f"{name} dropped: the mask was edited meanwhile", 5000)
            return
        doc.mask[region.slices()] = update.pixels
        canvas.refresh(region)
        self._pushing = True
        try:
            canvas.commit_edit(region, job.label)
        finally:
            self._pushing = False
            if self._stack is not None:
                self._stack_index = self._stack.index()
        if job.kind in ("box", "refine") and job.rect is not None:
            self._last_box[job.stem] = (job.rect, doc.mask[job.rect.slices()].copy())
            while len(self._last_box) > 8:
                self._last_box.pop(next(iter(self._last_box)))
        if job.kind == "box":
            self.message.emit("Box: mask set by GrabCut. Correct with brush / eraser, then "
                              "Refine Box (Shift+X); Ctrl+Z undoes it", 6000)
        elif update.method == "grabcut-fallback":
            self.message.emit("Scribbles refined by GrabCut (colours only): no model "
                              "probabilities yet — fine-tune once to use the model's", 6000)
        elif job.kind == "scribble":
            self.message.emit("Scribbles refined on the model's probabilities (DenseCRF); "
                              "Esc clears the scribbles", 4000)
