"""Masks in and out: every export format re-imports to the same masks; JPEG, RGB, instance and
palette masks decode as documented; the CLI export / import commands."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from segcore.cli import main
from segcore.export import export_project
from segcore.mask_import import (NeedsColorMap, decode_mask, find_masks, import_arrays,
                                 import_masks, proposed_classes, read_coco)
from segcore.project import ClassInfo, ImageStatus, Project

H, W = 24, 32
CLASSES = [ClassInfo("background", (0, 0, 0)), ClassInfo("cat", (255, 0, 0)),
           ClassInfo("dog", (0, 128, 255))]


def _images(folder, n=4):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((H, W, 3), 40 * i, np.uint8)).save(folder / f"im{i}.png")
    return folder


def _mask(i, k=3):
    m = np.zeros((H, W), np.uint8)
    m[2:10, 3 + i:15] = 1
    if k > 2:
        m[12:20, 10:28 - i] = 2
    return m


def _project(tmp_path, k=3, name="src"):
    p = Project.open(_images(tmp_path / name))
    if k > 2:
        p.set_classes(CLASSES)
    for i, s in enumerate(p.stems()):
        p.save_mask(s, _mask(i, k))
    return p


@pytest.mark.parametrize("fmt", ["index", "palette", "dataset", "binary"])
def test_png_exports_round_trip_through_import(tmp_path, fmt):
    k = 2 if fmt == "binary" else 3
    with _project(tmp_path, k) as src:
        summary = export_project(src, tmp_path / "out", fmt)
        assert not summary.skipped
        expected = {s: src.load_mask(s) for s in src.stems()}
    dst_dir = _images(tmp_path / "dst")
    with Project.open(dst_dir) as dst:
        if k > 2:
            dst.set_classes(CLASSES)
        found = find_masks(dst, tmp_path / "out" / "masks")
        assert sorted(found) == sorted(expected)
        report = import_masks(dst, found)
        assert sorted(report.imported) == sorted(expected), report.text()
        for s, m in expected.items():
            np.testing.assert_array_equal(dst.load_mask(s), m)
            assert dst.record(s).status is ImageStatus.DONE
    classes = json.loads((tmp_path / "out" / "classes.json").read_text())
    assert [c["name"] for c in classes["classes"]] == [c.name for c in (CLASSES if k > 2 else
                                                                         Project.open(dst_dir).classes)]


def test_coco_export_uses_rle_and_round_trips(tmp_path):
    from pycocotools import mask as mask_utils

    with _project(tmp_path) as src:
        export_project(src, tmp_path / "coco", "coco")
        expected = {s: src.load_mask(s) for s in src.stems()}
    data = json.loads((tmp_path / "coco" / "annotations.json").read_text())
    assert [c["name"] for c in data["categories"]] == ["cat", "dog"]
    assert len(data["annotations"]) == 8  # 4 images x 2 classes
    ann = data["annotations"][0]
    assert isinstance(ann["segmentation"]["counts"], str)
    rle = {"size": ann["segmentation"]["size"], "counts": ann["segmentation"]["counts"].encode()}
    assert mask_utils.area(rle) == ann["area"] > 0
    with Project.open(_images(tmp_path / "dst")) as dst:
        dst.set_classes(CLASSES)
        report = import_arrays(dst, read_coco(dst, tmp_path / "coco" / "annotations.json"))
        assert len(report.imported) == 4
        for s, m in expected.items():
            np.testing.assert_array_equal(dst.load_mask(s), m)


def test_overlay_and_dataset_lists_follow_roles(tmp_path):
    with _project(tmp_path) as src:
        export_project(src, tmp_path / "ov", "overlay")
        export_project(src, tmp_path / "ds", "dataset")
        train, held = src.training_split()
    overlay = np.asarray(Image.open(tmp_path / "ov" / "overlays" / "im1.jpg"))
    assert overlay.shape == (H, W, 3) and overlay[5, 10, 0] > overlay[0, 0, 0] + 60  # red cat
    assert (tmp_path / "ds" / "train.txt").read_text().split() == train
    assert (tmp_path / "ds" / "val.txt").read_text().split() == held
    assert sorted(p.name for p in (tmp_path / "ds" / "images").iterdir()) == [
        f"im{i}.png" for i in range(4)]


def test_jpeg_masks_are_cleaned_and_reported(tmp_path):
    folder = _images(tmp_path / "p")
    (folder / "masks").mkdir()
    m = np.zeros((H, W), np.uint8)
    m[4:18, 4:20] = 255
    m[1, 28] = 255  # a one-pixel speck
    Image.fromarray(m).save(folder / "masks" / "im0.jpg", quality=60)
    with Project.open(folder) as p:
        found = find_masks(p)
        assert found == {"im0": folder / "masks" / "im0.jpg"}
        report = import_masks(p, found)
        assert report.imported == ["im0"] and "JPEG" in report.notes["im0"]
        out = p.load_mask("im0")
    assert out[1, 28] == 0 and out[10, 10] == 1
    assert abs(int(out.sum()) - 14 * 16) < 20


def test_rgb_masks_need_a_colour_map_and_instances_merge(tmp_path):
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[2:8, 2:8] = (255, 0, 0)
    rgb[10:20, 10:20] = (10, 200, 30)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    with pytest.raises(NeedsColorMap) as info:
        decode_mask(tmp_path / "c.png", 3, [c.color for c in CLASSES])
    assert info.value.colors == [(10, 200, 30)]
    d = decode_mask(tmp_path / "c.png", 3, [c.color for c in CLASSES], {(10, 200, 30): 2})
    assert d.kind == "rgb" and d.mask[5, 5] == 1 and d.mask[15, 15] == 2 and d.mask[0, 0] == 0
    inst = np.zeros((H, W), np.uint8)
    inst[1:5, 1:5], inst[8:12, 8:12], inst[15:20, 1:5] = 1, 2, 3
    Image.fromarray(inst).save(tmp_path / "i.png")
    assert decode_mask(tmp_path / "i.png", 2).kind == "index"  # never merged silently
    merged = decode_mask(tmp_path / "i.png", 2, instances="merge")
    assert merged.kind == "instances" and set(np.unique(merged.mask)) == {0, 1}
    kept = decode_mask(tmp_path / "i.png", 4, instances="keep")
    assert set(np.unique(kept.mask)) == {0, 1, 2, 3}


def test_labels_folder_and_stem_mask_names_and_class_names(tmp_path):
    folder = _images(tmp_path / "p")
    (folder / "labels").mkdir()
    Image.fromarray(_mask(0) * 1).save(folder / "labels" / "im0_mask.png")
    Image.fromarray((_mask(1, 2) * 255)).save(folder / "labels" / "im1.bmp")
    (folder / "labels" / "classes.txt").write_text("bg\ncat\ndog\n")
    with Project.open(folder) as p:
        found = find_masks(p)
        assert sorted(found) == ["im0", "im1"]
        report = import_masks(p, found)
        assert report.imported == ["im1"] and "holds class 2" in report.skipped["im0"]
        assert report.max_index == 2
        assert proposed_classes(folder / "labels", 3) == ["bg", "cat", "dog"]


def test_cli_export_and_import(tmp_path, capsys):
    with _project(tmp_path) as src:
        root = src.root
    assert main(["export", "--project", str(root), "--out", str(tmp_path / "e"),
                 "--format", "coco"]) == 0
    assert "written" in capsys.readouterr().out
    dst = _images(tmp_path / "dst")
    shutil.copy(root / "masks" / "im0.png", tmp_path / "x.png")
    with Project.open(dst) as p:
        p.set_classes(CLASSES)
    assert main(["import", "--project", str(dst), "--from",
                 str(tmp_path / "e" / "annotations.json")]) == 0
    assert "4 mask(s) imported" in capsys.readouterr().out
    assert main(["import", "--project", str(_images(tmp_path / "empty")), "--from",
                 str(tmp_path / "nothing")]) == 1
    assert "no masks named like an image" in capsys.readouterr().err


def test_stem_mask_files_beside_images_are_masks_not_images(tmp_path):
    folder = _images(tmp_path / "p", n=2)
    Image.fromarray(_mask(0, 2) * 255).save(folder / "im0_mask.png")
    with Project.open(folder) as p:
        assert p.stems() == ["im0", "im1"]
        assert find_masks(p) == {"im0": folder / "im0_mask.png"}
        assert import_masks(p, find_masks(p)).imported == ["im0"]
        np.testing.assert_array_equal(p.load_mask("im0"), _mask(0, 2))
