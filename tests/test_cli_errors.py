"""segloop-cli never writes into a project's masks, never lets outputs collide, and ends ordinary
failures with one clear line and a non-zero exit code, not a traceback (issue 14, items 3-7)."""

from __future__ import annotations

import errno
import os

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from segcore import models
from segcore.cli import build_parser, main
from segcore.io import read_mask, write_mask
from segcore.project import ImageStatus, Project
from segcore.versions import ModelStore, save_checkpoint

pytestmark = pytest.mark.usefixtures("offline_one_thread")
SMALL = ["--input-size", "64", "--device", "cpu"]


def _img(path, seed=0, size=(48, 64)):
    rgb = np.random.default_rng(seed).integers(0, 255, (*size, 3)).astype(np.uint8)
    ok, data = cv2.imencode(os.path.splitext(os.fsdecode(path))[1] or ".png", rgb)
    with open(os.fsencode(path), "wb") as fh:
        fh.write(data.tobytes())


def _mask(i=0, size=(48, 64)):
    m = np.zeros(size, np.uint8)
    cv2.rectangle(m, (5 + 3 * i, 6), (30 + 5 * i, 30), 1, -1)
    return m


def _folder(root, n=4):
    (root / "masks").mkdir(parents=True)
    for i in range(n):
        _img(root / f"im{i}.png", i)
        write_mask(root / "masks" / f"im{i}.png", _mask(i))
    return root


def _model(k=2, fill=None):
    torch.manual_seed(0)
    model = models.build("deeplabv3_mobilenet_v2", num_classes=k, pretrained=False)
    last = [m for m in model.decoder.modules() if isinstance(m, nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        last.bias[-1] = 10.0  # every pixel: the last class
        if fill is not None:
            last.weight.fill_(fill)
    return model


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "fg.pt", _model())


def _err(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


# --------------------------------------------------------------------------- item 3
@pytest.mark.parametrize("make_project", [True, False], ids=["project", "plain-folder"])
def test_predict_refuses_the_masks_folder(tmp_path, ckpt, capsys, make_project):
    root = _folder(tmp_path / "photos")
    if make_project:
        Project.open(root).close()
    before = {p.name: p.read_bytes() for p in (root / "masks").iterdir()}
    rc = main(["predict", "--images", str(root), "--checkpoint", str(ckpt), "--out",
               str(root / "masks") + "/", *SMALL])
    assert rc == 1
    err = _err(capsys)
    assert err.startswith("segloop-cli predict: --out") and "is the masks folder of" in err
    assert "predict --project" in err
    assert {p.name: p.read_bytes() for p in (root / "masks").iterdir()} == before


def test_predict_refuses_the_masks_folder_of_the_project_given(tmp_path, ckpt, capsys):
    root = _folder(tmp_path / "photos")
    with Project.open(root) as project:
        ModelStore(project).save_version(_model(), {}, None, {})
    elsewhere = tmp_path / "copy"
    elsewhere.mkdir()
    _img(elsewhere / "x.png")
    assert main(["predict", "--images", str(elsewhere), "--project", str(root), "--out",
                 str(root / "masks"), *SMALL]) == 1
    assert "is the masks folder of" in _err(capsys)
    assert main(["predict", "--images", str(root), "--checkpoint", str(ckpt), "--out",
                 str(root / ".segloop" / "predictions"), *SMALL]) == 1
    assert "inside SegLoop's state folder" in _err(capsys)
    assert not (root / "masks" / "x.png").exists()


def test_predict_project_without_out_fills_the_prediction_store(tmp_path, capsys):
    root = _folder(tmp_path / "photos", n=3)
    with Project.open(root) as project:
        ModelStore(project).save_version(_model(), {}, None, {})
        project.delete_mask("im2")  # im0, im1 corrected; im2 not
    before = {p.name: p.read_bytes() for p in (root / "masks").iterdir()}
    assert main(["predict", "--project", str(root), *SMALL]) == 0
    assert "3 predictions stored in" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in (root / "masks").iterdir()} == before
    with Project.open(root) as project:
        assert project.record("im0").status is ImageStatus.CORRECTED
        assert project.record("im2").status is ImageStatus.PREDICTED
        assert (project.load_prediction("im2") == 1).all()


def test_outputs_never_collide(tmp_path, ckpt, capsys):
    images = tmp_path / "images"
    images.mkdir()
    _img(images / "a.jpg", 1)
    _img(images / "a.png", 2)
    _img(images / "b.tif", 3)
    out = tmp_path / "out"
    assert main(["predict", "--images", str(images), "--checkpoint", str(ckpt), "--out", str(out),
                 *SMALL]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "a.png.png", "b.png"]
    assert "3 masks written" in capsys.readouterr().out
    help_text = build_parser()._subparsers._group_actions[0].choices["predict"].format_help()
    assert "a.png -> a.png.png" in " ".join(help_text.split())


def test_predict_does_not_replace_existing_files_without_overwrite(tmp_path, ckpt, capsys):
    images = _folder(tmp_path / "images", n=2)
    gt = tmp_path / "gt"
    gt.mkdir()
    write_mask(gt / "im0.png", _mask(0))
    mine = (gt / "im0.png").read_bytes()
    assert main(["predict", "--images", str(images), "--checkpoint", str(ckpt), "--out", str(gt),
                 *SMALL]) == 1
    assert "already holds 1 of the output files (im0.png)" in _err(capsys)
    assert (gt / "im0.png").read_bytes() == mine and not (gt / "im1.png").exists()
    assert main(["predict", "--images", str(images), "--checkpoint", str(ckpt), "--out", str(gt),
                 "--overwrite", *SMALL]) == 0
    assert (read_mask(gt / "im0.png") == 1).all()


# --------------------------------------------------------------------------- item 4
def test_non_utf8_name_does_not_stop_versions_or_train(tmp_path, capsys):
    root = _folder(tmp_path / "p")
    bad = os.fsencode(root) + b"/bad\xff.png"
    _img(bad)
    write_mask(os.fsdecode(os.fsencode(root) + b"/masks/bad\xff.png"), _mask(1))
    assert main(["versions", "--project", str(root)]) == 0
    assert "no model versions yet" in capsys.readouterr().out
    rc = main(["train", "--images", str(root), "--masks", str(root / "masks"), "--out",
               str(tmp_path / "m.pt"), "--mode", "fast", "--epochs", "1", "--batch-size", "2",
               "--no-pretrained", *SMALL])
    err = capsys.readouterr().err
    assert rc == 0 and (tmp_path / "m.pt").is_file()
    assert "skipped" in err and "bad\\xff.png: file name is not valid UTF-8" in err


# --------------------------------------------------------------------------- item 6
def test_nan_and_random_checkpoints_are_refused(tmp_path, capsys):
    images = _folder(tmp_path / "images", n=1)
    nan = save_checkpoint(tmp_path / "nan.pt", _model(fill=float("nan")))
    noise = tmp_path / "noise.pt"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4096).astype(np.uint8).tobytes())
    for path, text in ((nan, "weights contain NaN/inf"), (noise, "not a SegLoop checkpoint (not a zip")):
        assert main(["predict", "--images", str(images), "--checkpoint", str(path), "--out",
                     str(tmp_path / "o"), *SMALL]) == 1
        assert text in _err(capsys)
        assert not any((tmp_path / "o").iterdir())


def test_class_count_mismatch_is_reported(tmp_path, ckpt, capsys):
    root = _folder(tmp_path / "photos", n=2)
    Project.open(root).close()  # a binary project
    k5 = save_checkpoint(tmp_path / "k5.pt", _model(k=5))
    assert main(["predict", "--images", str(root), "--checkpoint", str(k5), "--out",
                 str(tmp_path / "out"), *SMALL]) == 1
    err = _err(capsys)
    assert "predicts 5 classes but project" in err and "has 2 (background, foreground)" in err
    assert not any((tmp_path / "out").iterdir())
    assert main(["eval", "--images", str(root), "--masks", str(root / "masks"), "--checkpoint",
                 str(k5), *SMALL]) == 0
    assert "warning: the checkpoint predicts 5 classes but every mask" in capsys.readouterr().err
    multi = tmp_path / "multi"
    multi.mkdir()
    write_mask(multi / "im0.png", np.full((48, 64), 3, np.uint8), num_classes=4)
    assert main(["eval", "--images", str(root), "--masks", str(multi), "--checkpoint", str(ckpt),
                 *SMALL]) == 1
    assert "holds class 3 but the checkpoint predicts only 2 classes" in _err(capsys)


# --------------------------------------------------------------------------- item 7
def test_disk_full_on_predict_out(tmp_path, ckpt, capsys, monkeypatch):
    import segcore._atomic as atomic
    images = _folder(tmp_path / "images", n=2)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)  # the writer's fsync, as on a full disk
    rc = main(["predict", "--images", str(images), "--checkpoint", str(ckpt), "--out",
               str(tmp_path / "out"), *SMALL])
    monkeypatch.undo()
    assert rc == 1
    err = _err(capsys)
    assert "im0.png: cannot write (no space left on the disk)" in err and "Stopped: 0 of 2" in err
    assert list((tmp_path / "out").iterdir()) == []  # no temp file left behind


def _deny(monkeypatch, folder, call, code=errno.EROFS):
    """Make ``os.<call>`` fail with ``code`` inside ``folder`` (tests run as root)."""
    real = getattr(os, call)
    inside = str(folder)

    def denied(path, *a, **k):
        if os.fspath(path) == inside or os.fspath(path).startswith(inside + os.sep):
            raise OSError(code, os.strerror(code), os.fspath(path))
        return real(path, *a, **k)

    monkeypatch.setattr(os, call, denied)


def test_read_only_out_for_predict_and_train(tmp_path, ckpt, capsys, monkeypatch):
    images = _folder(tmp_path / "images")
    ro = tmp_path / "ro"
    ro.mkdir()
    _deny(monkeypatch, ro, "open")
    _deny(monkeypatch, ro, "mkdir")
    assert main(["predict", "--images", str(images), "--checkpoint", str(ckpt), "--out",
                 str(ro / "out"), *SMALL]) == 1
    assert _err(capsys).endswith(f"--out {ro / 'out'}: cannot write there (read-only file system)")
    assert main(["predict", "--images", str(images), "--checkpoint", str(ckpt), "--out",
                 str(ro), *SMALL]) == 1
    assert "cannot write there (read-only file system)" in _err(capsys)
    assert main(["train", "--images", str(images), "--masks", str(images / "masks"), "--out",
                 str(ro / "m.pt"), "--epochs", "1", "--no-pretrained", *SMALL]) == 1
    assert "cannot write the checkpoint there (read-only file system)" in _err(capsys)


def test_unreadable_folder_for_versions_and_train(tmp_path, capsys, monkeypatch):
    root = _folder(tmp_path / "p")
    Project.open(root).close()
    _deny(monkeypatch, root, "scandir", errno.EACCES)
    assert main(["versions", "--project", str(root)]) == 1
    assert _err(capsys) == f"segloop-cli versions: {root}: cannot list the folder (permission denied)"
    assert main(["train", "--images", str(root), "--masks", str(root / "masks"), "--out",
                 str(tmp_path / "m.pt"), "--epochs", "1", "--no-pretrained", *SMALL]) == 1
    assert "cannot list the folder (permission denied)" in _err(capsys)


def test_memory_error_during_training(tmp_path, capsys, monkeypatch):
    from segcore import training
    images = _folder(tmp_path / "images")
    monkeypatch.setattr(training.Trainer, "fit", lambda self, *a, **k: np.zeros((10**6, 10**6)))
    assert main(["train", "--images", str(images), "--masks", str(images / "masks"), "--out",
                 str(tmp_path / "m.pt"), "--no-pretrained", *SMALL]) == 1
    err = _err(capsys)
    assert err.startswith("segloop-cli train: out of memory while training (Unable to allocate")
    assert "--batch-size" in err and not (tmp_path / "m.pt").exists()


def test_out_of_the_wrong_kind(tmp_path, ckpt, capsys):
    images = _folder(tmp_path / "images", n=1)
    (tmp_path / "afile").write_text("mine")
    assert main(["predict", "--images", str(images), "--checkpoint", str(ckpt), "--out",
                 str(tmp_path / "afile"), *SMALL]) == 1
    assert "is a file; give a folder for the masks" in _err(capsys)
    assert (tmp_path / "afile").read_text() == "mine"
    assert main(["train", "--images", str(images), "--masks", str(images / "masks"), "--out",
                 str(tmp_path), "--epochs", "1", "--no-pretrained", *SMALL]) == 1
    assert "is a folder; give the checkpoint file to write" in _err(capsys)


@pytest.mark.parametrize("value", ["-5", "0", "abc"])
@pytest.mark.parametrize("command", ["predict", "train", "eval"])
def test_bad_input_size_is_an_argument_error(tmp_path, capsys, command, value):
    args = {"predict": ["--images", "i", "--out", "o"], "eval": ["--images", "i", "--masks", "m",
            "--checkpoint", "c"], "train": ["--images", "i", "--masks", "m", "--out", "o.pt"]}
    with pytest.raises(SystemExit) as info:
        main([command, *args[command], "--input-size", value])
    assert info.value.code == 2
    assert "argument --input-size" in capsys.readouterr().err


def test_empty_image_folder(tmp_path, ckpt, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    for command in (["predict", "--out", str(tmp_path / "o"), "--checkpoint", str(ckpt)],
                    ["train", "--masks", str(tmp_path / "empty"), "--out", str(tmp_path / "m.pt")]):
        assert main([command[0], "--images", str(tmp_path / "empty"), *command[1:], *SMALL]) == 1
        assert f"{tmp_path / 'empty'}: no images in the folder" in _err(capsys)
