"""segcore.io: every image/mask flavour a user may have, every bad input, atomic writes."""

from __future__ import annotations

import errno
import os
import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from segcore import io
from segcore.errors import ImageReadError, MaskReadError, MaskWriteError, ProjectError


def _rgb(h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height (no real pixel data behind it)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk
    data += struct.pack(">I", zlib.crc32(chunk))
    idat = b"IDAT" + zlib.compress(b"\x00" * 64)
    data += struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat))
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- read_image
@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff", ".webp"])
def test_read_image_lossless_formats_roundtrip(tmp_path, suffix):
    a = _rgb()
    path = tmp_path / f"img{suffix}"
    Image.fromarray(a).save(path, **({"lossless": True} if suffix == ".webp" else {}))
    out = io.read_image(path)
    assert out.dtype == np.uint8 and out.shape == (24, 32, 3)
    np.testing.assert_array_equal(out, a)


@pytest.mark.parametrize("name", ["photo.jpg", "photo.JPEG", "UPPER.PNG"])
def test_read_image_jpeg_and_uppercase_suffix(tmp_path, name):
    a = np.full((24, 32, 3), (200, 100, 50), np.uint8)
    Image.fromarray(a).save(tmp_path / name, format="PNG" if name.endswith("PNG") else "JPEG",
                            quality=95)
    out = io.read_image(tmp_path / name)
    assert out.shape == (24, 32, 3)
    assert np.abs(out.astype(int) - a).max() <= 3


def test_read_image_grayscale_and_1bit(tmp_path):
    g = np.arange(24 * 32, dtype=np.uint32).reshape(24, 32).astype(np.uint8)
    Image.fromarray(g, mode="L").save(tmp_path / "g.png")
    out = io.read_image(tmp_path / "g.png")
    assert out.shape == (24, 32, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], g)
    Image.fromarray(g > 100).convert("1").save(tmp_path / "b.bmp")
    assert set(np.unique(io.read_image(tmp_path / "b.bmp")).tolist()) == {0, 255}


def test_read_image_rgba_composited_on_white(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)   # opaque: its colour
    rgba[0, 1] = (10, 20, 30, 0)     # transparent: white
    rgba[0, 2] = (0, 0, 0, 128)      # half black over white: mid gray
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    out = io.read_image(tmp_path / "a.png")
    assert tuple(out[0, 0]) == (10, 20, 30)
    assert tuple(out[0, 1]) == (255, 255, 255)
    assert all(126 <= v <= 128 for v in out[0, 2])
    la = Image.fromarray(rgba[:, :, [0, 3]], mode="LA")
    la.save(tmp_path / "la.png")
    assert tuple(io.read_image(tmp_path / "la.png")[0, 1]) == (255, 255, 255)


def test_read_image_palette_with_and_without_transparency(tmp_path):
    idx = np.array([[0, 1], [2, 1]], np.uint8)
    img = Image.fromarray(idx, mode="P")
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    img.save(tmp_path / "p.png")
    out = io.read_image(tmp_path / "p.png")
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[1, 0]) == (0, 0, 255)
    img.save(tmp_path / "pt.png", transparency=1)
    out = io.read_image(tmp_path / "pt.png")
    assert tuple(out[0, 1]) == (255, 255, 255) and tuple(out[0, 0]) == (255, 0, 0)


def test_read_image_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (8, 6), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    out = io.read_image(tmp_path / "c.jpg")
    assert out.shape == (6, 8, 3) and out[..., 0].mean() > 200 and out[..., 1].mean() < 60


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_read_image_12bit_in_16bit_gray_is_stretched_not_black(tmp_path, suffix):
    g = np.linspace(100, 4095, 24 * 32).reshape(24, 32).astype(np.uint16)
    Image.fromarray(g).save(tmp_path / f"m{suffix}")
    out = io.read_image(tmp_path / f"m{suffix}")
    assert out.dtype == np.uint8 and out.shape == (24, 32, 3)
    assert out.min() == 0 and out.max() == 255  # image range [min, max] -> [0, 255]
    assert np.all(np.diff(out[:, :, 0].ravel().astype(int)) >= 0)  # order kept


def test_read_image_16bit_colour_keeps_low_bits(tmp_path):
    """Pillow reads 16-bit colour as 8-bit by dropping the low byte: 12-bit data would be dark."""
    bgr = np.zeros((8, 10, 3), np.uint16)
    bgr[:, :, 2] = 4000  # red channel in BGR order
    bgr[:4, :, 1] = 2000
    path = tmp_path / "colour16 ü.png"
    ok, buf = cv2.imencode(".png", bgr)
    assert ok
    path.write_bytes(buf.tobytes())
    out = io.read_image(path)
    assert out.shape == (8, 10, 3)
    assert out[0, 0, 0] == 255 and out[0, 0, 2] == 0 and 120 <= out[0, 0, 1] <= 135


def test_read_image_constant_16bit(tmp_path):
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(tmp_path / "w.png")
    assert io.read_image(tmp_path / "w.png").min() == 255


def test_read_image_exif_rotated_jpeg(tmp_path):
    """Camera JPEG stored landscape with orientation 6 (rotate 90 degrees clockwise to view)."""
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = (255, 0, 0)  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(a).save(path, exif=exif, quality=95)
    out = io.read_image(path)
    assert out.shape == (40, 20, 3)
    assert io.image_size(path) == (40, 20)
    assert out[:20, :, 0].mean() > 200 and out[20:, :, 0].mean() < 50  # left became top


@pytest.mark.parametrize("suffix", [".png", ".tif", ".webp"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, orientation, suffix):
    a = _rgb(5, 7, seed=orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{suffix}"
    Image.fromarray(a).save(path, exif=exif, **({"lossless": True} if suffix == ".webp" else {}))
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    np.testing.assert_array_equal(io.read_image(path), expected)
    assert io.image_size(path) == expected.shape[:2]
    m = (a[:, :, 0] > 127).astype(np.uint8)
    Image.fromarray(m * 255).save(path.with_name("m.png"), exif=exif)
    np.testing.assert_array_equal(io.read_mask(path.with_name("m.png")),
                                  (expected[:, :, 0] > 127).astype(np.uint8))


def test_image_size_sees_png_exif_after_the_pixels(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "late.png"
    Image.fromarray(_rgb(10, 30)).save(path)
    data = path.read_bytes()
    chunk = b"eXIf" + exif.tobytes()
    late = struct.pack(">I", len(chunk) - 4) + chunk + struct.pack(">I", zlib.crc32(chunk))
    path.write_bytes(data[:-12] + late + data[-12:])  # just before IEND
    assert io.read_image(path).shape == (30, 10, 3)
    assert io.image_size(path) == (30, 10)


def test_unicode_path(tmp_path):
    folder = tmp_path / "données 图像"
    folder.mkdir()
    a = _rgb()
    Image.fromarray(a).save(folder / "éléphant_猫.png")
    np.testing.assert_array_equal(io.read_image(folder / "éléphant_猫.png"), a)
    io.write_mask(folder / "маска.png", np.ones((3, 3), np.uint8))
    assert io.read_mask(folder / "маска.png").sum() == 9


def test_image_size_reads_header_only(tmp_path, monkeypatch):
    Image.fromarray(_rgb(30, 50)).save(tmp_path / "x.png")

    def no_decode(*args, **kwargs):
        raise AssertionError("pixels decoded")

    exif = Image.Exif()
    exif[0x0112] = 8
    Image.fromarray(_rgb(30, 50)).save(tmp_path / "r.jpg", exif=exif)
    Image.fromarray(_rgb(30, 50)).save(tmp_path / "r.webp", exif=exif)
    Image.fromarray(_rgb(30, 50)).save(tmp_path / "r.tif", exif=exif)
    monkeypatch.setattr(Image.Image, "load", no_decode)
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decode)
    assert io.image_size(tmp_path / "x.png") == (30, 50)
    for name in ("r.jpg", "r.webp", "r.tif"):
        assert io.image_size(tmp_path / name) == (50, 30), name


def test_decompression_bomb_refused_but_250mp_allowed(tmp_path):
    bomb = _png_header(tmp_path / "bomb.png", 40_000, 40_000)  # 1600 MP
    with pytest.raises(ImageReadError, match="too large") as info:
        io.read_image(bomb)
    assert "bomb.png" in str(info.value)
    with pytest.raises(ImageReadError, match="too large"):
        io.image_size(bomb)
    with pytest.raises(MaskReadError, match="too large"):
        io.read_mask(bomb)
    big = _png_header(tmp_path / "scan.png", 20_000, 12_500)  # 250 MP passes the size guard
    assert io.image_size(big) == (12_500, 20_000)


# --------------------------------------------------------------------------- bad inputs
def _bad_file(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A bad input of ``kind`` and a regex its error message must match."""
    if kind == "missing":
        return tmp_path / "nope.png", "does not exist"
    if kind == "directory":
        (tmp_path / "dir.png").mkdir()
        return tmp_path / "dir.png", "folder"
    if kind == "empty":
        (tmp_path / "empty.png").write_bytes(b"")
        return tmp_path / "empty.png", "empty"
    if kind == "random":
        (tmp_path / "noise.jpg").write_bytes(np.random.default_rng(0).bytes(2048))
        return tmp_path / "noise.jpg", "not a readable image"
    if kind == "unsupported":
        (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
        return tmp_path / "clip.mp4", "unsupported file type"
    if kind == "no_suffix":
        (tmp_path / "README").write_bytes(b"hello")
        return tmp_path / "README", "unsupported file type"
    fmt = {"truncated_png": "PNG", "truncated_jpeg": "JPEG"}[kind]
    path = tmp_path / f"cut.{fmt.lower()}"
    Image.fromarray(_rgb(200, 200)).save(path, format=fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path, "corrupt|truncated"


BAD_KINDS = ["missing", "directory", "empty", "random", "unsupported", "no_suffix",
             "truncated_png", "truncated_jpeg"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_read_image_bad_inputs(tmp_path, kind):
    path, reason = _bad_file(tmp_path, kind)
    with pytest.raises(ImageReadError, match=reason) as info:
        io.read_image(path)
    assert path.name in str(info.value)


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_read_mask_bad_inputs(tmp_path, kind):
    path, reason = _bad_file(tmp_path, kind)
    with pytest.raises(MaskReadError, match=reason) as info:
        io.read_mask(path)
    assert path.name in str(info.value)


@pytest.mark.parametrize("kind", ["missing", "directory", "empty", "random", "unsupported"])
def test_image_size_bad_inputs(tmp_path, kind):
    path, reason = _bad_file(tmp_path, kind)
    with pytest.raises(ImageReadError, match=reason):
        io.image_size(path)


# --------------------------------------------------------------------------- read_mask
def _save_gray(path: Path, a: np.ndarray, **kw) -> Path:
    Image.fromarray(a).save(path, **kw)
    return path


def test_read_mask_01_and_0255_and_indices(tmp_path):
    m = np.zeros((6, 8), np.uint8)
    m[2:4, 3:6] = 1
    np.testing.assert_array_equal(io.read_mask(_save_gray(tmp_path / "a.png", m)), m)
    np.testing.assert_array_equal(io.read_mask(_save_gray(tmp_path / "b.png", m * 255)), m)
    multi = (np.arange(48).reshape(6, 8) % 4).astype(np.uint8)
    np.testing.assert_array_equal(io.read_mask(_save_gray(tmp_path / "c.png", multi)), multi)
    np.testing.assert_array_equal(io.read_mask(_save_gray(tmp_path / "z.png", m * 0)), m * 0)


def test_read_mask_palette_gives_indices(tmp_path):
    idx = np.array([[0, 1, 2], [2, 2, 0]], np.uint8)
    img = Image.fromarray(idx, mode="P")
    img.putpalette([0, 0, 0, 255, 255, 255, 10, 200, 30])
    img.save(tmp_path / "p.png")
    np.testing.assert_array_equal(io.read_mask(tmp_path / "p.png"), idx)


def test_read_mask_rgb_gray_and_colour(tmp_path):
    m = np.zeros((6, 8), np.uint8)
    m[1:3] = 255
    Image.fromarray(np.stack([m] * 3, axis=2)).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(io.read_mask(tmp_path / "rgb.png"), m // 255)
    red = np.zeros((6, 8, 3), np.uint8)
    red[1:3, :, 0] = 255
    Image.fromarray(red).save(tmp_path / "red.png")
    np.testing.assert_array_equal(io.read_mask(tmp_path / "red.png"), m // 255)


def test_read_mask_jpeg_noisy_thresholded_with_warning(tmp_path):
    m = np.zeros((64, 64), np.uint8)
    m[16:48, 10:40] = 255
    path = tmp_path / "noisy mask.jpg"
    Image.fromarray(m).save(path, quality=60)
    with pytest.warns(UserWarning, match="noisy mask.jpg"):
        out = io.read_mask(path)
    assert set(np.unique(out).tolist()) <= {0, 1}
    assert (out != m // 255).mean() < 0.01


def test_read_mask_clean_file_does_not_warn(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        io.read_mask(_save_gray(tmp_path / "a.png", np.eye(5, dtype=np.uint8) * 255))


def test_read_mask_16bit(tmp_path):
    m = (np.eye(5) * 65535).astype(np.uint16)
    np.testing.assert_array_equal(io.read_mask(_save_gray(tmp_path / "a.png", m)), np.eye(5))
    idx = (np.arange(25).reshape(5, 5) % 3).astype(np.uint16)
    np.testing.assert_array_equal(io.read_mask(_save_gray(tmp_path / "b.png", idx)), idx)


# --------------------------------------------------------------------------- write_mask
def test_write_mask_binary_is_0_255_png(tmp_path):
    m = np.zeros((6, 8), np.uint8)
    m[2:5, 1:4] = 1
    io.write_mask(tmp_path / "m.png", m)
    with Image.open(tmp_path / "m.png") as img:
        assert img.format == "PNG" and img.mode == "L"
        raw = np.asarray(img)
    np.testing.assert_array_equal(raw, m * 255)
    np.testing.assert_array_equal(io.read_mask(tmp_path / "m.png"), m)
    io.write_mask(tmp_path / "b.png", m.astype(bool))  # bool is accepted
    np.testing.assert_array_equal(io.read_mask(tmp_path / "b.png"), m)


def test_write_mask_multiclass_is_palette_png(tmp_path):
    m = (np.arange(48).reshape(6, 8) % 5).astype(np.uint8)
    colours = [(0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255), (9, 9, 9)]
    io.write_mask(tmp_path / "m.png", m, num_classes=5, palette=colours)
    with Image.open(tmp_path / "m.png") as img:
        assert img.mode == "P"
        assert img.getpalette()[:15] == [v for c in colours for v in c]
    np.testing.assert_array_equal(io.read_mask(tmp_path / "m.png"), m)
    io.write_mask(tmp_path / "d.png", m, num_classes=5)  # default palette
    np.testing.assert_array_equal(io.read_mask(tmp_path / "d.png"), m)


@pytest.mark.parametrize("mask, num_classes, reason", [
    (np.zeros((4, 4), np.float32), 2, "dtype"),
    (np.zeros((4, 4, 3), np.uint8), 2, "2-D"),
    (np.zeros((4,), np.uint8), 2, "2-D"),
    (np.zeros((0, 4), np.uint8), 2, "empty"),
    (np.full((4, 4), 254, np.uint8), 2, "0..1"),  # 255 is void, so 254 is the first bad value
    (np.full((4, 4), 7, np.uint8), 3, "0..2"),
    (np.full((4, 4), -1, np.int16), 2, "class indices"),
    ([[0, 1]], 2, "numpy array"),
    (np.zeros((4, 4), np.uint8), 1, "num_classes"),
])
def test_write_mask_rejects_bad_arrays(tmp_path, mask, num_classes, reason):
    with pytest.raises(MaskWriteError, match=reason) as info:
        io.write_mask(tmp_path / "m.png", mask, num_classes=num_classes)
    assert "m.png" in str(info.value)
    assert os.listdir(tmp_path) == []


def test_write_mask_needs_png_name(tmp_path):
    with pytest.raises(MaskWriteError, match="PNG"):
        io.write_mask(tmp_path / "m.jpg", np.zeros((2, 2), np.uint8))


def _old_mask(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "m.png"
    io.write_mask(path, np.eye(4, dtype=np.uint8))
    return path, path.read_bytes()


def test_crash_between_write_and_replace_keeps_old_mask(tmp_path, monkeypatch):
    path, before = _old_mask(tmp_path)
    seen = []

    def crash(src, dst):
        seen.append(Path(src).name)
        assert Path(src).read_bytes() != before  # the new content was fully written
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(MaskWriteError, match="no space left") as info:
        io.write_mask(path, np.zeros((4, 4), np.uint8))
    assert "m.png" in str(info.value)
    assert seen and seen[0].startswith(".") and seen[0].endswith(".tmp")
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.png"]


@pytest.mark.parametrize("exc", [RuntimeError("boom"), OSError(errno.EIO, "I/O error")])
def test_failed_fsync_leaves_no_temp_file(tmp_path, monkeypatch, exc):
    path, before = _old_mask(tmp_path)

    def fail(fd):
        raise exc

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(MaskWriteError):
        io.write_mask(path, np.zeros((4, 4), np.uint8))
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.png"]


def test_interrupt_during_write_propagates_and_cleans_up(tmp_path, monkeypatch):
    path, before = _old_mask(tmp_path)

    def interrupt(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        io.write_mask(path, np.zeros((4, 4), np.uint8))
    assert sorted(os.listdir(tmp_path)) == ["m.png"] and path.read_bytes() == before


def test_unwritable_targets(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_bytes(b"x")
    with pytest.raises(MaskWriteError, match="not a folder") as info:
        io.write_mask(blocker / "m.png", np.zeros((2, 2), np.uint8))
    assert "m.png" in str(info.value)
    with pytest.raises(MaskWriteError, match="does not exist"):
        io.write_mask(tmp_path / "missing" / "m.png", np.zeros((2, 2), np.uint8))
    (tmp_path / "d.png").mkdir()
    with pytest.raises(MaskWriteError, match="folder"):
        io.write_mask(tmp_path / "d.png", np.zeros((2, 2), np.uint8))
    assert sorted(os.listdir(tmp_path)) == ["afile", "d.png"]


def test_atomic_write_bytes(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    io.atomic_write_bytes(path, b'{"a": 1}')
    io.atomic_write_bytes(path, b'{"a": 2}')
    assert path.read_bytes() == b'{"a": 2}'
    def deny(src, dst):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "replace", deny)
    with pytest.raises(ProjectError, match="permission denied"):
        io.atomic_write_bytes(path, b"{}", error=ProjectError)
    assert os.listdir(tmp_path) == ["state.json"] and path.read_bytes() == b'{"a": 2}'
