"""EditorState: the one home of the editor's settings, with one change signal per setting.

Tool, brush size, active class, mask opacity, boundary width, layer visibility and DenseCRF
(on/off and parameters) live here and nowhere else. The canvas, the Tools panel, the QActions
and the CRF popover read from this object and write to it; none of them keeps its own copy or
talks to another one. Every setter clamps its value, does nothing when the value is unchanged
(so bindings in both directions cannot loop) and otherwise emits the setting's signal once.

Defaults are :data:`DEFAULTS`, defined once. ``restore`` / ``save`` read and write them as the
QSettings keys ``tools/<name>`` through :class:`app.settings.Settings` (``tool``,
``brush_size``, ``opacity``, ``boundary_width``, ``show_mask`` / ``show_boundary`` /
``show_diff``, ``crf``, ``crf_params`` as JSON). The active class is not persisted: it belongs to
the open project's classes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from segcore.crf import CRFParams

if TYPE_CHECKING:
    from .settings import Settings

TOOLS = ("brush", "eraser", "fill", "pan", "box", "scribble")
LAYERS = ("mask", "boundary", "diff")
MIN_BRUSH, MAX_BRUSH = 1, 500
MIN_BOUNDARY, MAX_BOUNDARY = 1, 20
VOID_CLASS = 255


@dataclass(frozen=True)
class Defaults:
    tool: str = "brush"
    brush_size: int = 15
    active_class: int = 1
    opacity: float = 0.5
    boundary_width: int = 2
    layers: tuple[tuple[str, bool], ...] = (("mask", True), ("boundary", False), ("diff", False))
    crf_enabled: bool = False
    crf_params: CRFParams = field(default_factory=CRFParams)


DEFAULTS = Defaults()


def brush_step(size: int) -> int:
    """Size increment for one `]` / `[` press or Ctrl+wheel notch: ~10 %, at least 1 px."""
    return max(1, int(round(size * 0.1)))


def params_to_dict(params: CRFParams) -> dict[str, Any]:
    return asdict(params)


def params_from_dict(data: Any) -> CRFParams:
    """CRFParams from a stored dict; unknown keys are dropped, anything unusable → defaults."""
    if not isinstance(data, dict):
        return CRFParams()
    known = {k: v for k, v in data.items() if k in CRFParams.__dataclass_fields__}
    try:
        return CRFParams(**known)
    except TypeError:
        return CRFParams()


class EditorState(QObject):
    toolChanged = Signal(str)
    brushSizeChanged = Signal(int)
    activeClassChanged = Signal(int)
    opacityChanged = Signal(float)
    boundaryWidthChanged = Signal(int)
    layerVisibilityChanged = Signal(str, bool)   # "mask" | "boundary" | "diff", visible
    crfEnabledChanged = Signal(bool)
    crfParamsChanged = Signal(object)            # CRFParams

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        d = DEFAULTS
        self._tool = d.tool
        self._brush_size = d.brush_size
        self._active_class = d.active_class
        self._opacity = d.opacity
        self._boundary_width = d.boundary_width
        self._layers = dict(d.layers)
        self._crf_enabled = d.crf_enabled
        self._crf_params = d.crf_params

    # -- reading ----------------------------------------------------------------------------
    @property
    def tool(self) -> str:
        return self._tool

    @property
    def brush_size(self) -> int:
        return self._brush_size

    @property
    def active_class(self) -> int:
        return self._active_class

    @property
    def opacity(self) -> float:
        return self._opacity

    @property
    def boundary_width(self) -> int:
        return self._boundary_width

    def layer_visible(self, name: str) -> bool:
        return self._layers[name]

    @property
    def crf_enabled(self) -> bool:
        return self._crf_enabled

    @property
    def crf_params(self) -> CRFParams:
        return self._crf_params

    # -- writing ----------------------------------------------------------------------------
    def set_tool(self, name: str) -> None:
        if name not in TOOLS:
            raise ValueError(f"unknown tool {name!r}; expected one of {sorted(TOOLS)}")
        if name != self._tool:
            self._tool = name
            self.toolChanged.emit(name)

    def set_brush_size(self, px: int) -> None:
        px = int(min(MAX_BRUSH, max(MIN_BRUSH, int(px))))
        if px != self._brush_size:
            self._brush_size = px
            self.brushSizeChanged.emit(px)

    def step_brush(self, steps: int) -> None:
        """Grow (steps > 0) or shrink the brush by ~10 % per step."""
        size = self._brush_size
        for _ in range(abs(int(steps))):
            size += brush_step(size) if steps > 0 else -brush_step(size)
        self.set_brush_size(size)

    def set_active_class(self, idx: int) -> None:
        idx = int(max(0, min(VOID_CLASS, int(idx))))
        if idx != self._active_class:
            self._active_class = idx
            self.activeClassChanged.emit(idx)

    def set_opacity(self, opacity: float) -> None:
        opacity = min(1.0, max(0.0, float(opacity)))
        if opacity != self._opacity:
            self._opacity = opacity
            self.opacityChanged.emit(opacity)

    def set_boundary_width(self, width: int) -> None:
        width = int(min(MAX_BOUNDARY, max(MIN_BOUNDARY, int(width))))
        if width != self._boundary_width:
            self._boundary_width = width
            self.boundaryWidthChanged.emit(width)

    def set_layer_visible(self, name: str, visible: bool) -> None:
        if name not in self._layers:
            raise ValueError(f"unknown layer {name!r}; expected one of {LAYERS}")
        if bool(visible) != self._layers[name]:
            self._layers[name] = bool(visible)
            self.layerVisibilityChanged.emit(name, bool(visible))

    def set_crf_enabled(self, on: bool) -> None:
        if bool(on) != self._crf_enabled:
            self._crf_enabled = bool(on)
            self.crfEnabledChanged.emit(bool(on))

    def set_crf_params(self, params: CRFParams) -> None:
        if params != self._crf_params:
            self._crf_params = params
            self.crfParamsChanged.emit(params)

    # -- persistence ------------------------------------------------------------------------
    def restore(self, settings: Settings) -> None:
        """Read the saved settings (missing or unreadable values: the defaults)."""
        d = DEFAULTS
        tool = settings.tool("tool", d.tool, str)
        self.set_tool(tool if tool in TOOLS else d.tool)
        self.set_brush_size(settings.tool("brush_size", d.brush_size, int))
        self.set_opacity(settings.tool("opacity", d.opacity, float))
        self.set_boundary_width(settings.tool("boundary_width", d.boundary_width, int))
        for name, default in d.layers:
            self.set_layer_visible(name, settings.tool(f"show_{name}", default, bool))
        try:
            params = params_from_dict(json.loads(settings.tool("crf_params", "{}", str)))
        except ValueError:
            params = params_from_dict(None)
        self.set_crf_params(params)
        self.set_crf_enabled(settings.tool("crf", d.crf_enabled, bool))

    def save(self, settings: Settings) -> None:
        settings.set_tool("tool", self._tool)
        settings.set_tool("brush_size", self._brush_size)
        settings.set_tool("opacity", float(self._opacity))
        settings.set_tool("boundary_width", int(self._boundary_width))
        for name in LAYERS:
            settings.set_tool(f"show_{name}", bool(self._layers[name]))
        settings.set_tool("crf", bool(self._crf_enabled))
        settings.set_tool("crf_params", json.dumps(params_to_dict(self._crf_params)))
