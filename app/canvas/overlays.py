"""The three overlay layers of one image (mask fill, boundary line, prediction diff).

Visible layers are updated per dirty rect; a hidden boundary/diff layer is only marked
stale and recomputed in full when it is shown again (lazy), so hidden layers cost nothing.
Which layers are visible, the mask's opacity and the boundary width are read from the
:class:`app.editor_state.EditorState`; the canvas calls ``apply_*`` when one of them changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
from PySide6.QtWidgets import QGraphicsScene

from app.canvas import render
from app.canvas.document import MaskDocument, Rect
from app.canvas.layers import (BOUNDARY_COLOR, DEFAULT_CLASS_COLORS, DIFF_ADDED_COLOR,
                               DIFF_REMOVED_COLOR, OverlayItem, argb, class_lut)
from app.editor_state import LAYERS

if TYPE_CHECKING:
    from app.editor_state import EditorState

PREDICTION_GAP_ALPHA = 60  # a prediction's stripes alternate full colour with this alpha


class OverlaySet:
    """Owns the overlay items for the current image and keeps them in sync with the mask."""

    def __init__(self, state: EditorState) -> None:
        self.state = state
        self.items: dict[str, OverlayItem] = {}
        self.colors: list[tuple[int, int, int]] = list(DEFAULT_CLASS_COLORS)
        self.lut = class_lut(self.colors)
        self.boundary_argb = argb(BOUNDARY_COLOR)
        self.added_argb = argb(DIFF_ADDED_COLOR)
        self.removed_argb = argb(DIFF_REMOVED_COLOR)
        self._stale = {name: True for name in LAYERS}
        self._doc: MaskDocument | None = None
        self.hatched = False  # the mask shown is a prediction, not the user's
        self.partial = False  # partial labels: void pixels show the prediction hatched
        self.light_lut = class_lut(self.colors, alpha=PREDICTION_GAP_ALPHA)
        # two model versions compared (segcore.compare.diff_codes): the diff layer shows these
        # codes through version_lut instead of mask vs prediction, until the next image
        self.version_codes: np.ndarray | None = None
        self.version_lut = np.zeros(256, np.uint32)

    @property
    def opacity(self) -> float:
        return self.state.opacity

    @property
    def boundary_width(self) -> int:
        return self.state.boundary_width

    def _shown(self, name: str) -> bool:
        return self.state.layer_visible(name)

    # ---- lifetime ---------------------------------------------------------------------------
    def attach(self, scene: QGraphicsScene, doc: MaskDocument) -> None:
        """Create fresh items for ``doc`` in ``scene`` (the old ones went with scene.clear())."""
        self._doc = doc
        self.version_codes = None
        self.items = {name: OverlayItem(doc.width, doc.height, z) for name, z in
                      (("mask", 10), ("boundary", 20), ("diff", 30))}
        for name, item in self.items.items():
            scene.addItem(item)
            item.setVisible(self._shown(name))
        self.items["mask"].setOpacity(self.opacity)
        self._stale = {name: True for name in LAYERS}
        for name in LAYERS:
            if self._shown(name):
                self._rebuild(name)

    # ---- updates ----------------------------------------------------------------------------
    def refresh(self, rect: Rect) -> None:
        """The mask changed inside ``rect``: convert and repaint that region only."""
        doc = self._doc
        if doc is None or rect.is_empty():
            return
        for name in LAYERS:
            if not self._shown(name):
                self._stale[name] = True
            elif self._stale[name]:
                self._rebuild(name)
            else:
                self._update(name, rect)

    def refresh_all(self) -> None:
        for name in LAYERS:
            self._stale[name] = True
            if self._shown(name):
                self._rebuild(name)

    def _rebuild(self, name: str) -> None:
        if self._doc is not None:
            self._update(name, self._doc.full_rect())
            self._stale[name] = False

    def _update(self, name: str, rect: Rect) -> None:
        doc = self._doc
        assert doc is not None
        item = self.items[name]
        if name == "mask":
            under = doc.prediction if self.partial else None
            item.write(rect, render.mask_pixels(doc.mask, rect, self.lut,
                                                self.light_lut if (self.hatched or under is not None)
                                                else None, under))
        elif name == "boundary":
            out, pixels = render.boundary_pixels(doc.mask, rect, self.boundary_width, self.boundary_argb)
            item.write(out, pixels)
        elif self.version_codes is not None:
            item.write(rect, self.version_lut[self.version_codes[rect.slices()]])
        else:
            item.write(rect, render.diff_pixels(doc.mask, doc.prediction, rect,
                                                self.added_argb, self.removed_argb))

    def set_version_diff(self, codes: np.ndarray | None, colors: Sequence[Sequence[int]] = ()) -> None:
        """Show ``codes`` (HxW uint8, 0 = same) in the diff layer, code i in ``colors[i - 1]``;
        None: back to mask vs prediction."""
        self.version_codes = None if codes is None else np.asarray(codes, np.uint8)
        lut = np.zeros(256, np.uint32)
        for i, rgb in enumerate(colors, start=1):
            lut[i] = argb(rgb)
        self.version_lut = lut
        self._stale["diff"] = True
        if self._shown("diff"):
            self._rebuild("diff")

    # ---- settings ---------------------------------------------------------------------------
    def apply_visibility(self, name: str) -> None:
        """The state's visibility of layer ``name`` changed: show (catching up) or hide it."""
        item = self.items.get(name)
        if item is None:
            return
        visible = self._shown(name)
        if visible and self._stale[name]:
            self._rebuild(name)
        item.setVisible(visible)

    def apply_opacity(self) -> None:
        if "mask" in self.items:
            self.items["mask"].setOpacity(self.opacity)

    def set_colors(self, colors: Sequence[Sequence[int]]) -> None:
        self.colors = [tuple(int(c) for c in rgb[:3]) for rgb in colors]  # type: ignore[misc]
        self.lut = class_lut(self.colors)
        self.light_lut = class_lut(self.colors, alpha=PREDICTION_GAP_ALPHA)
        self._stale["mask"] = True
        if self._shown("mask"):
            self._rebuild("mask")

    def set_hatched(self, hatched: bool) -> None:
        """Draw the mask as diagonal stripes (a prediction) or solid (the user's mask)."""
        if bool(hatched) == self.hatched:
            return
        self.hatched = bool(hatched)
        self._stale["mask"] = True
        if self._shown("mask"):
            self._rebuild("mask")

    def set_partial(self, partial: bool) -> None:
        if bool(partial) == self.partial:
            return
        self.partial = bool(partial)
        self._stale["mask"] = True
        if self._shown("mask"):
            self._rebuild("mask")

    def apply_boundary_width(self) -> None:
        self._stale["boundary"] = True
        if self._shown("boundary"):
            self._rebuild("boundary")

    def prediction_changed(self) -> None:
        if self.partial:
            self._stale["mask"] = True
            if self._shown("mask"):
                self._rebuild("mask")
        self._stale["diff"] = True
        if self._shown("diff"):
            self._rebuild("diff")
