"""Persist and restore the tool/layer/list settings of the main window (QSettings ``tools/*``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from .panels.crf_popover import params_from_dict, params_to_dict

if TYPE_CHECKING:
    from .main_window import MainWindow

TOOLS = ("brush", "eraser", "fill", "pan")


def restore_tool_state(w: MainWindow) -> None:
    s = w.settings
    tool = s.tool("tool", "brush", str)
    w.actions[f"tool_{tool if tool in TOOLS else 'brush'}"].setChecked(True)
    w.canvas.set_tool(tool if tool in TOOLS else "brush")
    w.canvas.set_brush_size(s.tool("brush_size", 15, int))
    w.tools.set_brush_size(w.canvas.brush_size())
    opacity = min(1.0, max(0.0, s.tool("opacity", 0.5, float)))
    w.canvas.set_mask_opacity(opacity)
    w.tools.set_opacity(opacity)
    width = s.tool("boundary_width", 2, int)
    w.canvas.set_boundary_width(width)
    w.tools.set_boundary_width(width)
    for name in ("mask", "boundary", "diff"):
        visible = s.tool(f"show_{name}", name == "mask", bool)
        w.actions[f"show_{name}"].setChecked(visible)
        getattr(w.canvas, f"set_{name}_visible")(visible)
    try:
        w.crf_params = params_from_dict(json.loads(s.tool("crf_params", "{}", str)))
    except ValueError:
        w.crf_params = params_from_dict(None)
    w.actions.crf.setChecked(s.tool("crf", False, bool))
    w.image_list.set_sort(s.tool("list_sort", "name", str))
    w.image_list.set_filter(s.tool("list_filter", "", str) or None)


def save_tool_state(w: MainWindow) -> None:
    s = w.settings
    s.set_tool("tool", w.canvas.tool())
    s.set_tool("brush_size", w.canvas.brush_size())
    s.set_tool("opacity", float(w.canvas.mask_opacity()))
    s.set_tool("boundary_width", int(w.canvas.boundary_width()))
    for name in ("mask", "boundary", "diff"):
        s.set_tool(f"show_{name}", bool(w.actions[f"show_{name}"].isChecked()))
    s.set_tool("crf", bool(w.actions.crf.isChecked()))
    s.set_tool("crf_params", json.dumps(params_to_dict(w.crf_params)))
    s.set_tool("list_sort", w.image_list.model.sort_key)
    s.set_tool("list_filter", w.image_list.model.status_filter or "")
