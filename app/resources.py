"""Where the app's shipped files live and how icons are made from them.

``resources/`` is a top-level folder beside ``app/`` (see design.md), found relative to this
package: ``Path(app.__file__).parents[1] / "resources"``. Icons are monochrome SVGs drawn with
``stroke="currentColor"``; :func:`icon` substitutes the current theme's icon colour before
rendering, so one file serves both themes.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QIcon, QImage, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

import app

_ICON_SIZES = (16, 20, 24, 32, 48)
_icon_color = "#d5d9e0"


def resources_dir() -> Path:
    """The ``resources/`` folder shipped with SegLoop.

    A source checkout or editable install has it beside ``app/``; a wheel installs it as
    data files under ``<prefix>/share/segloop/resources`` (see pyproject.toml).
    """
    beside = Path(app.__file__).resolve().parents[1] / "resources"
    if beside.is_dir():
        return beside
    return Path(sys.prefix) / "share" / "segloop" / "resources"


def icon_path(name: str) -> Path:
    return resources_dir() / "icons" / f"{name}.svg"


def set_icon_color(color: str) -> None:
    """Colour used for ``currentColor`` in icons made from now on (the theme sets it)."""
    global _icon_color
    if color != _icon_color:
        _icon_color = color
        _icon_cached.cache_clear()


def icon(name: str) -> QIcon:
    """A QIcon for ``resources/icons/<name>.svg`` in the theme's colour (empty if missing)."""
    return _icon_cached(name, _icon_color)


@lru_cache(maxsize=256)
def _icon_cached(name: str, color: str) -> QIcon:
    path = icon_path(name)
    if not path.is_file():
        return QIcon()
    svg = path.read_text(encoding="utf-8").replace("currentColor", color)
    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    result = QIcon()
    for size in _ICON_SIZES:
        result.addPixmap(_render(renderer, size))
    return result


def _render(renderer: QSvgRenderer, size: int) -> QPixmap:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return QPixmap.fromImage(image)


def app_icon() -> QIcon:
    """The application icon (coloured, theme independent)."""
    path = icon_path("app")
    return QIcon(str(path)) if path.is_file() else QIcon()
