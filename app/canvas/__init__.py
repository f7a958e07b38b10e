"""The editing canvas: MaskCanvas (QGraphicsView) over a numpy mask (see view.py)."""

from app.canvas.view import MaskCanvas

__all__ = ["MaskCanvas"]
