"""Reading images and masks, writing masks and other files atomically.

Conventions
-----------
* Images come back as ``H x W x 3`` ``uint8`` RGB arrays, whatever the file holds:
  - grayscale / 1-bit: replicated into three channels;
  - RGBA, LA, palette-with-transparency: **composited on white** (a transparent background
    reads as paper, not as black ink);
  - palette: expanded to its colours; CMYK / YCbCr: converted to RGB;
  - 16-bit (and 32-bit int / float) data: **stretched linearly from the image's own range**
    ``[min, max]`` to ``[0, 255]``, so a 12-bit-in-16 microscope image is not black; a constant
    image maps its value by the type's full range instead;
  - EXIF orientation (tag 274) is applied, so arrays look like the photo viewer shows them.
* Files larger than :data:`MAX_IMAGE_PIXELS` pixels are refused before decoding (a
  decompression bomb guard; ~300 MP allows 250 MP scans). Only the formats in
  :data:`IMAGE_SUFFIXES` are read; the suffix is matched case-insensitively. GIFs (also
  animated ones) give their first frame.
* A file whose name is not valid UTF-8 (Python sees it with surrogate escapes) is refused with
  ``NON_UTF8_NAME`` in the message: SQLite, Qt and JSON cannot carry such a name, so it could
  be read but never indexed, shown or saved consistently. :func:`display_name` prints it.
* Masks are ``H x W`` ``uint8`` arrays of class indices (0 = background); :data:`VOID` (255)
  means "not labelled": never trained on, never scored. :func:`read_mask` accepts 0/1, 0/255
  (255 -> 1), class indices with 255 as void, palette PNGs (the palette *indices* are the
  classes), RGB masks (max over channels, then as gray) and JPEG-noisy masks (thresholded at
  128, with a warning). ``num_classes`` (the project's) settles the one ambiguous case: in a
  multi-class project gray 255 is void, never "foreground".
* :func:`write_mask` writes PNG: binary masks (``num_classes == 2``) as 8-bit gray 0/255 so any
  viewer shows them (a binary mask holding void pixels as a palette PNG with indices 0/1/255);
  multi-class masks as palette PNGs whose indices are the classes (255 = void).
* Every write is atomic: a dot-prefixed temp file in the same folder, flush + fsync,
  ``os.replace``; on any failure the temp file is removed and the old file is untouched.
* Every failure raises exactly one type: :class:`ImageReadError`, :class:`MaskReadError` or
  :class:`MaskWriteError`, with the file name and the reason in the message.
"""

from __future__ import annotations

import io as _io
import os
import struct
import warnings
from collections.abc import Iterator, Sequence
from typing import BinaryIO
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from segcore._atomic import atomic_write_bytes, os_error_reason
from segcore.errors import ImageReadError, MaskReadError, MaskWriteError, SegLoopError

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp",
                                   ".gif")
_SUFFIX_SET = frozenset(IMAGE_SUFFIXES)
#: Largest image (width x height) that is decoded; bigger files raise ImageReadError.
MAX_IMAGE_PIXELS: int = 300_000_000
#: Pillow decoders allowed to run (the JPEG decoder also reads multi-picture MPO files).
_PIL_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "DIB", "WEBP", "GIF")
_ORIENTATION_TAG = 0x0112
_MASK_JPEG_THRESHOLD = 128
_PNG_COMPRESS_LEVEL = 1  # masks compress well even at level 1, and saving stays fast

# Pillow's own bomb guard (default ~89 MP warn, ~179 MP error) would refuse legitimate
# 250 MP scans; ours is checked from the header instead. Never lower a stricter user setting.
if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_IMAGE_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

PathLike = str | os.PathLike[str]
#: mask value meaning "not labelled" (void / ignore)
VOID = 255
_VOID_COLOUR = (224, 224, 192)  # the PASCAL VOC void colour

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_IMAGE_PIXELS",
    "NON_UTF8_NAME",
    "display_name",
    "atomic_write_bytes",
    "image_size",
    "is_image_name",
    "read_image",
    "read_mask",
    "write_mask",
]


#: The reason given for a file whose name cannot be encoded as UTF-8 (see module conventions).
NON_UTF8_NAME = "file name is not valid UTF-8"


def is_utf8_name(name: str) -> bool:
    """False for a name decoded with surrogate escapes (its bytes are not valid UTF-8)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def display_name(name: PathLike) -> str:
    """``name`` printable and storable anywhere: undecodable bytes shown as ``\\xff``."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def is_image_name(name: str) -> bool:
    """True for a visible file name whose suffix is one of :data:`IMAGE_SUFFIXES`."""
    dot = name.rfind(".")
    return dot > 0 and name[0] != "." and name[dot:].lower() in _SUFFIX_SET


# --------------------------------------------------------------------------- opening
@contextmanager
def _open(path: PathLike, error: type[SegLoopError]) -> Iterator[Image.Image]:
    """Open ``path`` lazily with Pillow; every failure inside the block becomes ``error``."""
    p = Path(path)
    if not is_utf8_name(str(p)):
        raise error(f"{display_name(p)}: {NON_UTF8_NAME}; rename the file to use it")
    suffix = p.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise error(f"{p}: unsupported file type {p.suffix or '(no suffix)'!r}; "
                    f"supported: {', '.join(IMAGE_SUFFIXES)}")
    if p.is_dir():
        raise error(f"{p}: is a folder, not a file")
    try:
        fh = open(p, "rb")
    except FileNotFoundError:
        raise error(f"{p}: file does not exist") from None
    except OSError as exc:
        raise error(f"{p}: cannot open ({os_error_reason(exc)})") from exc
    with fh:
        if os.fstat(fh.fileno()).st_size == 0:
            raise error(f"{p}: file is empty (0 bytes)")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img = Image.open(fh, formats=_PIL_FORMATS)
        except Image.DecompressionBombError as exc:
            raise error(f"{p}: image is too large to open safely ({exc})") from exc
        except UnidentifiedImageError as exc:
            raise error(f"{p}: not a readable image (unrecognised or corrupt data)") from exc
        except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
            raise error(f"{p}: corrupt image header ({exc})") from exc
        with img:
            width, height = img.size
            if width <= 0 or height <= 0:
                raise error(f"{p}: image has no pixels ({width}x{height})")
            if width * height > MAX_IMAGE_PIXELS:
                raise error(f"{p}: image is too large ({width}x{height} = "
                            f"{width * height / 1e6:.0f} MP; the limit is "
                            f"{MAX_IMAGE_PIXELS / 1e6:.0f} MP)")
            try:
                yield img
            except MemoryError as exc:
                raise error(f"{p}: not enough memory to decode {width}x{height} image") from exc
            except (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError,
                    TypeError, Image.DecompressionBombError) as exc:
                raise error(f"{p}: corrupt or truncated image data ({exc})") from exc


def _orientation(img: Image.Image, header_only: bool = False) -> int:
    """EXIF orientation 1..8 still to apply to ``img``'s pixels (1 when absent or unreadable).

    Called after decoding: a PNG's eXIf chunk may follow the pixel data, and recent Pillow
    (13 here) rotates TIFF pixels itself while loading (then drops the tag, so this returns 1).
    With ``header_only`` nothing is decoded (Pillow's PNG ``getexif()`` would decode the whole
    image); a PNG's chunk headers are walked instead, seeking past the pixel data.
    """
    try:
        tags = getattr(img, "tag_v2", None)
        if tags is not None:  # TIFF IFD
            value = int(tags.get(_ORIENTATION_TAG, 1))
        elif header_only and img.format == "PNG":
            raw = img.info.get("exif") or _png_exif_chunk(img.fp)
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
            value = int(exif.get(_ORIENTATION_TAG, 1))
        else:
            value = int(img.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001 - broken EXIF must not make a good image unreadable
        return 1
    return value if 1 <= value <= 8 else 1


def _png_exif_chunk(fp: BinaryIO) -> bytes | None:
    """The eXIf chunk of a PNG found by walking chunk headers (seeks past pixel data)."""
    fp.seek(8)
    while True:
        head = fp.read(8)
        if len(head) < 8:
            return None
        length, kind = struct.unpack(">I4s", head)
        if kind == b"eXIf":
            return fp.read(length)
        if kind == b"IEND":
            return None
        fp.seek(length + 4, os.SEEK_CUR)


def _header_size_is_oriented(img: Image.Image) -> bool:
    """True if Pillow already reports the rotated size (TIFF in recent Pillow)."""
    tags = getattr(img, "tag_v2", None)
    if tags is None:
        return False
    return img.size != (tags.get(256), tags.get(257))


def _apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation to an HxW[xC] array (same result as ImageOps.exif_transpose)."""
    if orientation == 2:
        a = a[:, ::-1]
    elif orientation == 3:
        a = a[::-1, ::-1]
    elif orientation == 4:
        a = a[::-1]
    elif orientation == 5:
        a = a.swapaxes(0, 1)
    elif orientation == 6:
        a = np.rot90(a, -1)
    elif orientation == 7:
        a = a.swapaxes(0, 1)[::-1, ::-1]
    elif orientation == 8:
        a = np.rot90(a, 1)
    return np.ascontiguousarray(a)


def _rawmode(img: Image.Image) -> str:
    """Raw (on-disk) pixel layout of the first tile, e.g. 'RGB;16B' ('' when unknown)."""
    tile = getattr(img, "tile", None) or []
    if not tile:
        return ""
    args = tile[0].args if hasattr(tile[0], "args") else tile[0][3]
    first = args[0] if isinstance(args, tuple) and args else args
    return first if isinstance(first, str) else ""


# --------------------------------------------------------------------------- images
def image_size(path: PathLike) -> tuple[int, int]:
    """``(height, width)`` as :func:`read_image` would return it, from the header only.

    EXIF orientations 5-8 (rotated by 90 degrees) swap the two. Raises ImageReadError.
    """
    with _open(path, ImageReadError) as img:
        width, height = img.size
        if _orientation(img, header_only=True) >= 5 and not _header_size_is_oriented(img):
            width, height = height, width
        return height, width


def read_image(path: PathLike) -> np.ndarray:
    """Decode ``path`` into an ``H x W x 3`` ``uint8`` RGB array (see module conventions)."""
    with _open(path, ImageReadError) as img:
        if img.mode in ("RGB", "RGBA") and ";16" in _rawmode(img):
            rgb = _read_rgb16(Path(path))  # Pillow would drop the low byte of each sample
        else:
            rgb = _pil_to_rgb(img)
        orientation = _orientation(img)  # after decoding: see _orientation
    return _apply_orientation(rgb, orientation)


def _pil_to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img)
    if mode.startswith("I") or mode == "F":
        gray = _stretch(np.asarray(img))
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("RGBA", "RGBa", "LA", "La", "PA") or (mode == "P" and "transparency" in img.info):
        return _composite_on_white(np.asarray(img.convert("RGBA")))
    if mode == "1":
        img = img.convert("L")
    return np.asarray(img.convert("RGB"))


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """Alpha-composite straight (non-premultiplied) RGBA over white, rounding to nearest."""
    alpha = rgba[:, :, 3:4]
    if alpha.min() == 255:
        return np.ascontiguousarray(rgba[:, :, :3])
    a = alpha.astype(np.uint32)
    out = (rgba[:, :, :3].astype(np.uint32) * a + 255 * (255 - a) + 127) // 255
    return out.astype(np.uint8)


def _stretch(a: np.ndarray) -> np.ndarray:
    """Map an integer or float array linearly from its own [min, max] to uint8 [0, 255].

    A constant image keeps its level relative to the type's range (uint16: v/65535; float:
    v clipped to [0, 1]); NaN and inf become 0.
    """
    if a.dtype.kind == "f":
        a = np.where(np.isfinite(a), a, 0).astype(np.float64)
    lo, hi = a.min(), a.max()
    if hi == lo:
        top = float(np.iinfo(a.dtype).max) if a.dtype.kind in "iu" else 1.0
        level = int(round(255 * min(max(float(lo) / top, 0.0), 1.0)))
        return np.full(a.shape, level, dtype=np.uint8)
    if a.dtype.kind == "u" and a.dtype.itemsize == 2:
        # Lookup table: one byte per pixel instead of a float copy of a 250 MP image.
        lut = np.zeros(65536, dtype=np.uint8)
        span = np.arange(int(lo), int(hi) + 1, dtype=np.float64)
        lut[int(lo):int(hi) + 1] = np.rint((span - lo) * (255.0 / (hi - lo))).astype(np.uint8)
        lut[int(hi) + 1:] = 255
        return lut[a.astype(np.uint16, copy=False)]
    scaled = (a.astype(np.float64) - float(lo)) * (255.0 / (float(hi) - float(lo)))
    return np.rint(scaled).astype(np.uint8)


def _read_rgb16(path: Path) -> np.ndarray:
    """16-bit colour PNG/TIFF at full depth via OpenCV, stretched like 16-bit gray."""
    import cv2  # imported lazily: only 16-bit colour files need it

    data = np.fromfile(path, dtype=np.uint8)  # works for non-ASCII paths, unlike cv2.imread
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if arr is None or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise OSError("OpenCV could not decode the 16-bit colour data")
    if arr.shape[2] == 4:
        rgb = arr[:, :, 2::-1]
        alpha = arr[:, :, 3].astype(np.float64) / np.iinfo(arr.dtype).max
        stretched = _stretch(np.ascontiguousarray(rgb)).astype(np.float64)
        out = stretched * alpha[:, :, None] + 255.0 * (1.0 - alpha[:, :, None])
        return np.rint(out).astype(np.uint8)
    return _stretch(np.ascontiguousarray(arr[:, :, ::-1]))


# --------------------------------------------------------------------------- masks
def read_mask(path: PathLike, num_classes: int | None = None) -> np.ndarray:
    """Read a mask file as ``H x W`` ``uint8`` class indices (255 = void). Raises MaskReadError.

    Rules, in order: palette image -> its indices; RGB(A) -> max over the colour channels
    (equal channels give the gray value itself; alpha is ignored); then on the gray values:
    only {0, 255} -> 255 becomes 1 (unless ``num_classes`` > 2: then 255 is void); values < 64
    (at most 64 distinct), optionally with 255 -> class indices as they are, 255 = void;
    anything else (a JPEG-compressed or anti-aliased mask) -> threshold at 128 with a
    ``UserWarning`` naming the file (in a multi-class project: MaskReadError, a threshold would
    destroy the classes). With ``num_classes``, an index >= num_classes (other than 255) is a
    MaskReadError naming the values. 16-bit: {0, 65535} is binary, values < 256 are indices,
    anything else raises MaskReadError (values such as 0..300 are no class indices).
    """
    p = Path(path)
    with _open(p, MaskReadError) as img:
        mode = img.mode
        if mode in ("P", "PA"):
            a = np.asarray(img)
            a = a[:, :, 0] if a.ndim == 3 else a
        elif mode == "F":
            raise MaskReadError(f"{p}: floating-point masks are not supported; "
                                f"save class indices as an 8-bit PNG")
        elif mode.startswith("I"):
            a = _mask_from_wide(np.asarray(img), p)
        elif mode == "1":
            a = np.asarray(img.convert("L"))
        elif mode == "L":
            a = np.asarray(img)
        else:
            rgb = np.asarray(img.convert("RGB"))
            a = rgb.max(axis=2)
        if mode not in ("P", "PA"):
            a = _mask_from_gray(a, p, num_classes)
        orientation = _orientation(img)
    a = a.astype(np.uint8, copy=False)
    if num_classes is not None:
        _check_classes(a, num_classes, p)
    return _apply_orientation(a, orientation)


def _check_classes(a: np.ndarray, num_classes: int, path: Path) -> None:
    counts = np.bincount(a.ravel(), minlength=256)
    bad = [int(v) for v in np.flatnonzero(counts[num_classes:VOID]) + num_classes]
    if bad:
        shown = ", ".join(map(str, bad[:8])) + (" ..." if len(bad) > 8 else "")
        raise MaskReadError(f"{path}: mask holds class value(s) {shown}, beyond the {num_classes} "
                            f"classes expected (0..{num_classes - 1}; 255 = not labelled)")


def _mask_from_wide(a: np.ndarray, path: Path) -> np.ndarray:
    """16/32-bit mask: values <= 255 are class indices, {0, 65535} is binary; anything else
    (e.g. 0..300) cannot be class indices of a PNG mask, so it is refused rather than guessed."""
    a = a.astype(np.int64, copy=False)
    if a.min() < 0:
        raise MaskReadError(f"{path}: mask has negative values")
    if a.max() <= 255:
        return a.astype(np.uint8)
    if np.isin(a, (0, 65535)).all():
        return (a == 65535).astype(np.uint8) * 255
    raise MaskReadError(f"{path}: 16-bit mask holds values up to {int(a.max())}, but a mask holds "
                        f"class indices 0..255 (or 0/65535 for a binary mask); save it as an 8-bit "
                        f"PNG of class indices")


def _mask_from_gray(a: np.ndarray, path: Path, num_classes: int | None = None) -> np.ndarray:
    counts = np.bincount(a.ravel(), minlength=256)
    present = np.flatnonzero(counts)
    multi = num_classes is not None and num_classes > 2
    if set(present.tolist()) <= {0, 255} and not multi:
        return (a == 255).astype(np.uint8)
    indices = present[present != VOID]
    if indices.size == 0 or (indices.max() < 64 and indices.size <= 64):
        return a
    if multi and indices.max() < num_classes:
        return a
    if multi:
        raise MaskReadError(f"{path}: mask has {present.size} different gray values "
                            f"(JPEG-compressed or anti-aliased?), not class indices of a "
                            f"{num_classes}-class project; save it as a PNG of class indices")
    warnings.warn(f"{path}: mask has {present.size} different gray values (JPEG-compressed or "
                  f"anti-aliased?); thresholded at {_MASK_JPEG_THRESHOLD} "
                  f"(>= {_MASK_JPEG_THRESHOLD} = foreground)", UserWarning, stacklevel=3)
    return (a >= _MASK_JPEG_THRESHOLD).astype(np.uint8)


def default_palette(num_classes: int) -> list[tuple[int, int, int]]:
    """PASCAL-VOC style colour map: class 0 black, then well separated colours."""
    colours = []
    for i in range(num_classes):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colours.append((r, g, b))
    return colours


def encode_mask_png(path: PathLike, mask: np.ndarray, num_classes: int = 2,
                    palette: Sequence[tuple[int, int, int]] | None = None) -> bytes:
    """Validate ``mask`` and return the PNG bytes :func:`write_mask` would write."""
    p = Path(path)
    if not isinstance(num_classes, (int, np.integer)) or not 2 <= num_classes <= 256:
        raise MaskWriteError(f"{p}: num_classes must be 2..256, got {num_classes!r}")
    if not isinstance(mask, np.ndarray):
        raise MaskWriteError(f"{p}: mask must be a numpy array, got {type(mask).__name__}")
    if mask.ndim != 2:
        raise MaskWriteError(f"{p}: mask must be 2-D (H x W class indices), got shape "
                             f"{mask.shape}")
    if mask.dtype != np.bool_ and mask.dtype.kind not in "ui":
        raise MaskWriteError(f"{p}: mask must hold integer class indices (uint8), got dtype "
                             f"{mask.dtype}")
    if mask.size == 0:
        raise MaskWriteError(f"{p}: mask is empty (shape {mask.shape})")
    lo = int(mask.min())
    labelled = mask[mask != VOID] if num_classes < VOID else mask
    hi = int(labelled.max()) if labelled.size else 0
    if lo < 0 or hi >= num_classes:
        raise MaskWriteError(f"{p}: mask values must be class indices 0..{num_classes - 1} "
                             f"(or {VOID} = not labelled), found {lo}..{hi}")
    indices = np.ascontiguousarray(mask, dtype=np.uint8)
    void = num_classes < VOID and labelled.size < mask.size
    if num_classes == 2 and not void:
        img = Image.fromarray(indices * np.uint8(255), mode="L")
    else:
        colours = list(palette) if palette is not None else default_palette(num_classes)
        if len(colours) < num_classes:
            colours += default_palette(num_classes)[len(colours):]
        if num_classes == 2:
            colours = [(0, 0, 0), (255, 255, 255)]
        img = Image.fromarray(indices, mode="P")
        table = [tuple(int(v) for v in c) for c in colours[:num_classes]]
        table += [(0, 0, 0)] * (256 - len(table))
        if num_classes < VOID:
            table[VOID] = _VOID_COLOUR
        img.putpalette([v for colour in table for v in colour], rawmode="RGB")
    buf = _io.BytesIO()
    img.save(buf, format="PNG", compress_level=_PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def write_mask(path: PathLike, mask: np.ndarray, num_classes: int = 2,
               palette: Sequence[tuple[int, int, int]] | None = None) -> None:
    """Atomically write ``mask`` (HxW class indices < ``num_classes``) as a PNG at ``path``.

    Binary (``num_classes == 2``): gray PNG with 0/255. Multi-class: palette PNG of the indices
    (colours from ``palette``, default VOC colour map). The folder must exist. ``path`` must end
    in ``.png``. Raises MaskWriteError; the previous file (if any) is intact on failure.
    """
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise MaskWriteError(f"{p}: masks are written as PNG; the name must end in .png")
    data = encode_mask_png(p, mask, num_classes, palette)
    atomic_write_bytes(p, data)
