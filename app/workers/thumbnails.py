"""Thumbnails made in a background QThreadPool and cached on disk.

Cache: ``<project>/.segloop/thumbs/<stem>.png`` (max side :data:`THUMB_SIZE`), valid while its
mtime is not older than the image's. Read-only projects keep thumbnails in memory only. The
GUI asks :meth:`ThumbnailProvider.pixmap` for visible rows only; a miss queues a job (newest
request first, so fast scrolling serves what is on screen) and returns None; ``ready(stem)``
fires when the pixmap is available. Images that cannot be decoded emit ``failed(stem, message)``.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap

THUMB_SIZE = 96
MEMORY_CACHE = 600


class _Relay(QObject):
    done = Signal(int, str, QImage)
    error = Signal(int, str, str)


class _UseFullReader(Exception):
    pass


def _high_bit_depth(img) -> bool:  # PIL.Image.Image
    """16-bit / integer / float samples (gray modes I, I;16, F, or 16-bit RGB in the file)."""
    if img.mode.startswith("I") or img.mode == "F":
        return True
    tile = getattr(img, "tile", None) or []
    args = getattr(tile[0], "args", None) if tile else None
    raw = args[0] if isinstance(args, tuple) and args else args
    return isinstance(raw, str) and ";16" in raw


def make_thumbnail(image_path: Path, cache_path: Path | None, size: int = THUMB_SIZE) -> QImage:
    """Decode ``image_path`` reduced to ``size`` px (or load the fresh cache). Raises on failure."""
    if cache_path is not None:
        try:
            if cache_path.stat().st_mtime >= image_path.stat().st_mtime:
                cached = QImage(str(cache_path))
                if not cached.isNull():
                    return cached
        except OSError:
            pass
    from PIL import Image, ImageOps

    img: Image.Image  # Image.open gives an ImageFile; exif_transpose / convert a plain Image
    try:
        with Image.open(image_path) as img:
            if _high_bit_depth(img):
                # Pillow would clip 16-bit gray to white and keep only the high byte of 16-bit
                # RGB (a black thumbnail): use the canvas's reader, which stretches the range
                raise _UseFullReader
            img.draft("RGB", (size * 2, size * 2))  # JPEG: decode at reduced scale
            img = ImageOps.exif_transpose(img)
            if img.mode not in ("RGB", "RGBA", "L"):
                img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
            img.thumbnail((size, size))
            rgb = img.convert("RGB")
    except Exception:  # noqa: BLE001 - PIL cannot: fall back to the full reader (16-bit, TIFF…)
        import cv2

        from segcore.io import read_image

        arr = read_image(image_path)  # raises ImageReadError with a message naming the file
        h, w = arr.shape[:2]
        scale = min(1.0, size / max(h, w))
        arr = cv2.resize(arr, (max(1, round(w * scale)), max(1, round(h * scale))),
                         interpolation=cv2.INTER_AREA)
        rgb = Image.fromarray(arr)
    data = rgb.tobytes()
    qimg = QImage(data, rgb.width, rgb.height, rgb.width * 3, QImage.Format.Format_RGB888).copy()
    if cache_path is not None:
        from PySide6.QtCore import QBuffer, QIODevice

        from segcore._atomic import atomic_write_bytes
        from segcore.errors import SegLoopError
        buffer = QBuffer()
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            # stub gaps: save() takes a str format at runtime (bytes is rejected), and QByteArray
            # supports the buffer protocol
            if qimg.save(buffer, "PNG"):  # type: ignore[call-overload]
                atomic_write_bytes(cache_path, bytes(buffer.data()))  # type: ignore[call-overload]
        except (OSError, SegLoopError):
            pass  # a cache that cannot be written is just not cached
    return qimg


class _Job(QRunnable):
    def __init__(self, relay: _Relay, generation: int, stem: str, image_path: Path,
                 cache_path: Path | None) -> None:
        super().__init__()
        self.relay, self.generation, self.stem = relay, generation, stem
        self.image_path, self.cache_path = image_path, cache_path

    def run(self) -> None:
        try:
            image = make_thumbnail(self.image_path, self.cache_path)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an error badge
            message = str(exc) or f"{self.image_path}: cannot decode ({type(exc).__name__})"
            self.relay.error.emit(self.generation, self.stem, message)
            return
        self.relay.done.emit(self.generation, self.stem, image)


class ThumbnailProvider(QObject):
    """Lazy, cached thumbnails for one project (call :meth:`set_project` to switch)."""

    ready = Signal(str)
    failed = Signal(str, str)

    def __init__(self, parent: QObject | None = None, threads: int = 1) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        # a Qt child, never a parentless relay: see the note in app/workers/metrics.py
        self._relay = _Relay(self)
        self._relay.done.connect(self._on_done)
        self._relay.error.connect(self._on_error)
        self._generation = 0
        self._project = None
        self._cache: OrderedDict[str, QPixmap] = OrderedDict()
        self._pending: set[str] = set()
        self._failed: set[str] = set()
        self._priority = itertools.count()

    def set_project(self, project) -> None:  # segcore.project.Project
        self.pool.clear()
        self._generation += 1
        self._project = project
        self._cache.clear()
        self._pending.clear()
        self._failed.clear()

    def cache_dir(self) -> Path | None:
        if self._project is None or self._project.read_only:
            return None
        return Path(self._project.state_dir) / "thumbs"

    def pixmap(self, stem: str) -> QPixmap | None:
        """The thumbnail if ready; otherwise queue it and return None."""
        pm = self._cache.get(stem)
        if pm is not None:
            self._cache.move_to_end(stem)
            return pm
        if self._project is not None and stem not in self._pending and stem not in self._failed:
            self._pending.add(stem)
            cache_dir = self.cache_dir()
            job = _Job(self._relay, self._generation, stem, Path(self._project.image_path(stem)),
                       cache_dir / f"{stem}.png" if cache_dir else None)
            self.pool.start(job, next(self._priority) % 2**30)
        return None

    def invalidate(self, stem: str) -> None:
        self._cache.pop(stem, None)
        self._failed.discard(stem)

    def wait(self, msecs: int = 30000) -> bool:
        return self.pool.waitForDone(msecs)

    def _on_done(self, generation: int, stem: str, image: QImage) -> None:
        if generation != self._generation:
            return
        self._pending.discard(stem)
        self._cache[stem] = QPixmap.fromImage(image)
        while len(self._cache) > MEMORY_CACHE:
            self._cache.popitem(last=False)
        self.ready.emit(stem)

    def _on_error(self, generation: int, stem: str, message: str) -> None:
        if generation != self._generation:
            return
        self._pending.discard(stem)
        self._failed.add(stem)
        self.failed.emit(stem, message)
