"""Scene items of the canvas: the image, the RGBA overlays (mask, boundary, diff) and the brush cursor.

Every overlay owns one ARGB32-premultiplied QImage whose pixel buffer is also a numpy
uint32 view (``QImage.bits()`` → ``np.frombuffer``). Updating a rectangle writes
``lut[class_ids]`` into that view and calls ``QGraphicsItem.update(rect)``: only that rect is
converted and repainted. Scene coordinates equal image pixel coordinates.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from app.canvas.document import Rect

VOID = 255  # mask value "not labelled" (design.md: never trained on, never scored)
DEFAULT_CLASS_COLORS: list[tuple[int, int, int]] = [(0, 0, 0), (255, 64, 64)]
BOUNDARY_COLOR = (255, 230, 0)
DIFF_ADDED_COLOR = (40, 220, 90)     # labelled in the mask, not in the prediction
DIFF_REMOVED_COLOR = (200, 60, 255)  # in the prediction, erased from the mask
TILE = 4096  # image tiles keep single textures/pixmaps at a sane size for > 50 MP images


def argb(rgb: Sequence[int], alpha: int = 255) -> int:
    """Premultiplied 0xAARRGGBB for an RGB colour."""
    r, g, b = (int(c) * alpha // 255 for c in rgb[:3])
    return (alpha << 24) | (r << 16) | (g << 8) | b


def class_lut(colors: Sequence[Sequence[int]], alpha: int = 255) -> np.ndarray:
    """256-entry uint32 lookup table: class 0 transparent, class i colour i at ``alpha``.

    Classes without a colour get a deterministic fallback hue; 255 (void, "not labelled")
    is transparent.
    """
    lut = np.zeros(256, np.uint32)
    for idx in range(1, 256):
        if idx < len(colors):
            rgb = colors[idx]
        else:
            hue = (idx * 47) % 180
            hsv = np.array([[[hue, 200, 255]]], np.uint8)
            rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
        lut[idx] = argb(rgb, alpha)
    lut[VOID] = 0
    return lut


class OverlayItem(QGraphicsItem):
    """An ARGB32 QImage the size of the image, updated rectangle by rectangle from numpy."""

    def __init__(self, width: int, height: int, z: float, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self._w, self._h = int(width), int(height)
        self._image: QImage | None = None
        self._pixels: np.ndarray | None = None
        self.setZValue(z)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def ensure_buffer(self) -> np.ndarray:
        """Allocate the QImage on first use (hidden layers of huge images cost nothing)."""
        if self._pixels is None:
            image = QImage(self._w, self._h, QImage.Format.Format_ARGB32_Premultiplied)
            image.fill(0)
            stride = image.bytesPerLine() // 4
            # bits() is called once: the buffer is never detached afterwards (no other writer).
            pixels = np.frombuffer(image.bits(), np.uint32).reshape(self._h, stride)
            self._image, self._pixels = image, pixels[:, : self._w]
        return self._pixels

    def qimage(self) -> QImage | None:
        return self._image

    def write(self, rect: Rect, argb_pixels: np.ndarray) -> None:
        """Copy uint32 premultiplied pixels into ``rect`` and schedule a repaint of it only."""
        pixels = self.ensure_buffer()
        pixels[rect.slices()] = argb_pixels
        self.update(QRectF(rect.x0, rect.y0, rect.width, rect.height))

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt name)
        return QRectF(0, 0, self._w, self._h)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        if self._image is None:
            return
        exposed = option.exposedRect.toAlignedRect().intersected(self._image.rect())
        if exposed.isEmpty():
            return
        painter.drawImage(exposed, self._image, exposed)


class ImageItem(QGraphicsItem):
    """The photo as pixmap tiles, with a mip level per power-of-two zoom-out.

    Zoomed out, painting a 12 MP pixmap every frame is slow and aliased; a level ``k`` pixmap
    (area-downsampled by 2**k) is drawn instead, built lazily on first need.
    """

    def __init__(self, image_rgb: np.ndarray) -> None:
        super().__init__()
        self._rgb = np.ascontiguousarray(image_rgb[..., :3], dtype=np.uint8)
        self._h, self._w = self._rgb.shape[:2]
        self._levels: dict[int, list[tuple[QRectF, QPixmap]]] = {}
        self._lut: np.ndarray | None = None  # display-only brightness / contrast
        self.setZValue(0)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self._tiles(0)

    def set_lut(self, lut: np.ndarray | None) -> None:
        """Draw the photo through a uint8[256] table (None: as it is); the data stay unchanged."""
        if lut is None and self._lut is None:
            return
        self._lut = None if lut is None else np.asarray(lut, np.uint8)
        self._levels.clear()
        self.update()

    def rgb(self) -> np.ndarray:
        """The photo as loaded (never changed by brightness / contrast)."""
        return self._rgb

    @staticmethod
    def _to_pixmap(rgb: np.ndarray) -> QPixmap:
        rgb = np.ascontiguousarray(rgb)
        h, w = rgb.shape[:2]
        qimg = QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888)
        return QPixmap.fromImage(qimg)  # deep copy: rgb may go away afterwards

    def _tiles(self, level: int) -> list[tuple[QRectF, QPixmap]]:
        tiles = self._levels.get(level)
        if tiles is not None:
            return tiles
        scale = 2 ** level
        src: np.ndarray = self._rgb
        if level:
            size = (max(1, self._w // scale), max(1, self._h // scale))
            src = cv2.resize(self._rgb, size, interpolation=cv2.INTER_AREA)
        if self._lut is not None:
            src = cv2.LUT(src, self._lut)  # a new array: self._rgb is never written
        sy, sx = self._h / src.shape[0], self._w / src.shape[1]
        tiles = []
        for y in range(0, src.shape[0], TILE):
            for x in range(0, src.shape[1], TILE):
                part = src[y:y + TILE, x:x + TILE]
                target = QRectF(x * sx, y * sy, part.shape[1] * sx, part.shape[0] * sy)
                tiles.append((target, self._to_pixmap(part)))
        self._levels[level] = tiles
        return tiles

    def boundingRect(self) -> QRectF:  # noqa: N802
        return QRectF(0, 0, self._w, self._h)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        scale = painter.worldTransform().m11() or 1.0
        level = 0
        while scale * (2 ** (level + 1)) <= 1.0 and level < 5 and min(self._w, self._h) >> (level + 1) >= 64:
            level += 1
        exposed = option.exposedRect
        smooth = scale < 1.0
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        for target, pixmap in self._tiles(level):
            part = target.intersected(exposed)
            if part.isEmpty():
                continue
            fx = pixmap.width() / target.width()
            fy = pixmap.height() / target.height()
            source = QRectF((part.x() - target.x()) * fx, (part.y() - target.y()) * fy,
                            part.width() * fx, part.height() * fy)
            painter.drawPixmap(part, pixmap, source)


class BrushCursorItem(QGraphicsEllipseItem):
    """A circle the size of the brush that follows the mouse (two-tone, always 1 screen px)."""

    def __init__(self) -> None:
        super().__init__()
        self.setZValue(100)
        pen = QPen(QColor(255, 255, 255, 230), 0)
        pen.setCosmetic(True)
        self.setPen(pen)
        self.setBrush(Qt.BrushStyle.NoBrush)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self._inner = QGraphicsEllipseItem(self)
        inner_pen = QPen(QColor(0, 0, 0, 200), 0, Qt.PenStyle.DashLine)
        inner_pen.setCosmetic(True)
        self._inner.setPen(inner_pen)
        self._size = 1

    def set_size(self, size: int) -> None:
        self._size = max(1, int(size))
        r = self._size / 2.0
        self.setRect(QRectF(-r, -r, 2 * r, 2 * r))
        self._inner.setRect(QRectF(-r, -r, 2 * r, 2 * r))

    def move_to(self, scene_pos: QPointF) -> None:
        """Centre on the pixel under ``scene_pos`` (strokes are drawn around pixel centres)."""
        self.setPos(QPointF(np.floor(scene_pos.x()) + 0.5, np.floor(scene_pos.y()) + 0.5))
