"""Bad input that used to break a folder or give silent garbage (issue 14, items 4 and 6):
non-UTF-8 file names, unreadable folders, animated GIFs, 16-bit masks beyond 255, damaged or
foreign checkpoints."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
import torch
from PIL import Image

from segcore import io, models
from segcore.errors import CheckpointError, ImageReadError, MaskReadError, ProjectError
from segcore.project import ImageStatus, Project
from segcore.versions import ModelStore, load_checkpoint, save_checkpoint

BAD = b"bad\xff.png"


def _png(path, value=100, size=(24, 32)):
    Image.fromarray(np.full((*size, 3), value, np.uint8)).save(path)


def _bad_name_folder(root):
    """A folder with two images, one corrected, and one image whose name is not UTF-8."""
    root.mkdir(exist_ok=True)
    _png(root / "a.png")
    _png(root / "b.png")
    with open(os.fsencode(root) + b"/" + BAD, "wb") as fh:
        fh.write((root / "a.png").read_bytes())
    return root


# --------------------------------------------------------------------------- item 4
def test_non_utf8_name_is_listed_with_an_error_and_the_rest_works(tmp_path):
    root = _bad_name_folder(tmp_path / "p")
    with Project.open(root) as project:
        records = {r.filename: r for r in project.records()}
        assert set(records) == {"a.png", "b.png", "bad\\xff.png"}
        bad = records["bad\\xff.png"]
        assert bad.status is ImageStatus.ERROR and "file name is not valid UTF-8" in bad.error
        project.save_mask("a", np.ones((24, 32), np.uint8))  # everything else works
        assert project.corrected_stems() == ["a"]
        with pytest.raises(ImageReadError, match="file name is not valid UTF-8"):
            project.load_image(bad.stem)
        project.set_error(bad.stem, "x")  # the per-image error mechanism accepts the row
        project.rescan()
        assert "not valid UTF-8" in project.record(bad.stem).error
        assert ModelStore(project).versions() == []
    with Project.open(root) as project:  # and the index reopens
        assert project.record("bad\\xff").status is ImageStatus.ERROR


def test_non_utf8_name_gives_a_clear_read_error(tmp_path):
    root = _bad_name_folder(tmp_path / "p")
    path = os.fsdecode(os.fsencode(root) + b"/" + BAD)
    for reader, error in ((io.read_image, ImageReadError), (io.image_size, ImageReadError),
                          (io.read_mask, MaskReadError)):
        with pytest.raises(error, match=r"bad\\xff\.png: file name is not valid UTF-8") as info:
            reader(path)
        str(info.value).encode("utf-8")  # the message itself can be stored and shown


def test_unreadable_folder_is_an_error_not_an_empty_project(tmp_path, monkeypatch):
    root = tmp_path / "p"
    root.mkdir()
    _png(root / "a.png")
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(root):
            raise PermissionError(errno.EACCES, "Permission denied", str(root))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(ProjectError, match=r"p: cannot list the folder \(permission denied\)"):
        Project.open(root)


def test_unreadable_masks_folder_does_not_demote_corrected_images(tmp_path, monkeypatch):
    root = tmp_path / "p"
    root.mkdir()
    _png(root / "a.png")
    with Project.open(root) as project:
        project.save_mask("a", np.ones((24, 32), np.uint8))
        masks = str(project.masks_dir)
        real = os.scandir
        monkeypatch.setattr(os, "scandir", lambda p=".": (_ for _ in ()).throw(
            PermissionError(errno.EACCES, "Permission denied", masks)) if os.fspath(p) == masks else real(p))
        with pytest.raises(ProjectError, match="masks: cannot list the folder"):
            project.rescan()
        monkeypatch.undo()
        assert project.record("a").status is ImageStatus.CORRECTED


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder; the patched test covers it")
def test_unreadable_folder_real_permissions(tmp_path):
    root = tmp_path / "p"
    root.mkdir()
    _png(root / "a.png")
    root.chmod(0o300)
    try:
        with pytest.raises(ProjectError, match="cannot list the folder"):
            Project.open(root)
    finally:
        root.chmod(0o700)


# --------------------------------------------------------------------------- item 6
def test_animated_gif_reads_its_first_frame(tmp_path):
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    frames = [Image.new("RGB", (32, 24), c) for c in colours]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=80, loop=0)
    rgb = io.read_image(tmp_path / "anim.gif")
    assert rgb.shape == (24, 32, 3) and rgb.dtype == np.uint8
    assert np.abs(rgb.astype(int) - colours[0]).max() <= 8  # first frame, not the last
    assert io.image_size(tmp_path / "anim.gif") == (24, 32)
    with Project.open(tmp_path) as project:
        assert project.stems() == ["anim"]


def test_16bit_mask_with_values_beyond_255_is_refused(tmp_path):
    import cv2
    a = (np.arange(40 * 30).reshape(30, 40) % 301).astype(np.uint16)  # 0..300
    cv2.imwrite(str(tmp_path / "m.png"), a)
    with pytest.raises(MaskReadError, match=r"m\.png: 16-bit mask holds values up to 300"):
        io.read_mask(tmp_path / "m.png")


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return models.build("deeplabv3_mobilenet_v2", num_classes=2, pretrained=False)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_checkpoint_with_nan_or_inf_weights_is_refused(tmp_path, tiny_model, bad):
    import copy
    model = copy.deepcopy(tiny_model)
    with torch.no_grad():
        next(model.decoder.parameters()).view(-1)[3] = bad
    save_checkpoint(tmp_path / "m.pt", model)
    with pytest.raises(CheckpointError, match=r"m\.pt: weights contain NaN/inf \(decoder\..*; the "
                                              r"checkpoint is damaged"):
        load_checkpoint(tmp_path / "m.pt")


def test_random_bytes_are_not_a_checkpoint(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096).astype(np.uint8).tobytes())
    with pytest.raises(CheckpointError, match=r"noise\.pt: not a SegLoop checkpoint \(not a zip/torch "
                                              r"file\)"):
        load_checkpoint(path)
