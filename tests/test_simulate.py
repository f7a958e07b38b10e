"""Simulated annotator (segcore.simulate) and `segloop-cli simulate` on tiny synthetic demo data."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from segcore.demo import generate_demo_project
from segcore.errors import SegLoopError
from segcore.simulate import ROW_KEYS, simulate
from segcore.training import TrainConfig


@pytest.fixture
def labelled(tmp_path):
    """images/ + masks/ (0/255 ground truth) of 10 small demo images."""
    root = generate_demo_project(tmp_path / "demo", n_images=10, size=(64, 80), seed=2)
    images, masks = tmp_path / "data" / "images", tmp_path / "data" / "masks"
    images.mkdir(parents=True)
    shutil.copytree(root / "ground_truth", masks)
    for p in root.glob("*.png"):
        shutil.copy2(p, images / p.name)
    return images, masks


def _cfg() -> TrainConfig:
    return TrainConfig(mode="fast", epochs=2, time_budget_s=None, input_size=64, batch_size=4,
                       fast_views=2, pretrained=False)


def test_rows_have_the_stable_keys_and_sane_values(labelled):
    images, masks = labelled
    rows = simulate(images, masks, test_last=3, ks=(2, 4), orders=("attention", "random"), config=_cfg())
    assert [(r["k"], r["order"]) for r in rows] == [(2, "attention"), (4, "attention"), (2, "random"),
                                                    (4, "random")]
    for r in rows:
        assert set(ROW_KEYS) <= set(r) and r["dataset"] == "data"
        assert 0.0 <= r["iou"] <= 1.0 and 0.0 <= r["biou"] <= 1.0 and r["seconds"] > 0
        assert r["iou_crf"] is None or 0.0 <= r["iou_crf"] <= 1.0
        assert r["biou_crf"] is None or 0.0 <= r["biou_crf"] <= 1.0
        assert r["n_train"] + r["n_held_out"] == r["k"]
        json.dumps(r)


def test_random_order_is_seeded_and_never_uses_test_stems(labelled, monkeypatch):
    from segcore import simulate as sim
    seen: list[str] = []
    real = sim._correct

    def spy(project, stem, masks):
        seen.append(stem)
        return real(project, stem, masks)

    monkeypatch.setattr(sim, "_correct", spy)
    images, masks = labelled
    runs = []
    for _ in range(2):
        seen.clear()
        rows = simulate(images, masks, test_last=3, ks=(2, 4), orders=("random",), config=_cfg(), crf=False)
        runs.append(list(seen))
        assert [r["clicks"] for r in rows] == [1, 2] and [r["protocol"] for r in rows] == ["session"] * 2
    test = sorted(p.stem for p in images.glob("*.png"))[-3:]
    assert runs[0] == runs[1] and len(runs[0]) == 4 == len(set(runs[0])) and not set(runs[0]) & set(test)


def test_session_warm_starts_and_attention_follows_the_project(labelled, monkeypatch):
    """Each click trains from the previous version; attention takes the app's attention order."""
    from segcore import loop, simulate as sim
    parents: list = []
    real_finetune = loop.finetune

    def finetune(project, config):
        result = real_finetune(project, config)
        parents.append((result.parent_id, result.version_id))
        return result

    monkeypatch.setattr(loop, "finetune", finetune)
    batches: dict[int, tuple[list[str], list[str]]] = {}  # clicks so far → (order then, taken)
    real_correct = sim._correct

    def correct(project, stem, masks):
        if len(parents) not in batches:
            corrected = set(project.corrected_stems())
            batches[len(parents)] = ([s for s in project.attention_order() if s not in corrected], [])
        batches[len(parents)][1].append(stem)
        return real_correct(project, stem, masks)

    monkeypatch.setattr(sim, "_correct", correct)
    images, masks = labelled
    rows = simulate(images, masks, test_last=3, ks=(2, 5), orders=("attention",), config=_cfg(), crf=False)
    assert parents[0][0] is None and parents[1][0] == parents[0][1]  # second click starts from v1
    assert [r["n_train"] + r["n_held_out"] for r in rows] == [2, 5]
    assert [len(batches[0][1]), len(batches[1][1])] == [2, 3]
    for order, taken in batches.values():
        assert taken == order[:len(taken)]  # each batch is the head of the project's order then
    assert rows[1]["total_train_seconds"] >= rows[1]["train_seconds"]


def test_independent_protocol_starts_each_k_from_imagenet(labelled):
    images, masks = labelled
    rows = simulate(images, masks, test_last=3, ks=(2, 3), orders=("random",), config=_cfg(), crf=False,
                    protocol="independent")
    assert [(r["k"], r["clicks"], r["protocol"]) for r in rows] == [(2, 1, "independent"), (3, 1, "independent")]
    with pytest.raises(SegLoopError, match="protocol"):
        simulate(images, masks, test_last=3, ks=(2,), config=_cfg(), protocol="batch")


def test_bad_input_is_reported(labelled):
    images, masks = labelled
    with pytest.raises(SegLoopError, match="test-last"):
        simulate(images, masks, test_last=10, ks=(2,), config=_cfg())
    with pytest.raises(SegLoopError, match="order"):
        simulate(images, masks, test_last=3, ks=(2,), orders=("smart",), config=_cfg())


def test_cli_simulate_json(labelled, capsys, monkeypatch):
    from segcore import cli, simulate as sim
    monkeypatch.setattr(sim, "default_config", _cfg)
    images, masks = labelled
    assert cli.main(["simulate", "--images", str(images), "--masks", str(masks), "--test-last", "3",
                     "--k", "2", "--order", "random", "--no-crf", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1 and rows[0]["k"] == 2 and rows[0]["order"] == "random"
    assert rows[0]["iou_crf"] is None and np.isfinite(rows[0]["iou"])
    assert cli.main(["simulate", "--images", str(images), "--masks", str(masks), "--test-last", "30"]) != 0


def test_evaluate_test_per_class_scores_on_three_classes(tmp_path):
    """segcore.simulate.evaluate_test with a predictor of known output: per-class IoU / BIoU."""
    from types import SimpleNamespace

    from segcore import metrics
    from segcore.io import write_mask
    from segcore.simulate import evaluate_test
    gts, images, masks = [], {}, {}
    for i in range(2):
        gt = np.zeros((32, 48), np.uint8)
        gt[:, 24:] = 2
        if i == 0:
            gt[4:12, 4:12] = 1
        gts.append(gt)
        images[f"s{i}"] = tmp_path / f"s{i}.png"
        masks[f"s{i}"] = tmp_path / f"s{i}_mask.png"
        from PIL import Image
        Image.fromarray(np.full((32, 48, 3), 100, np.uint8)).save(images[f"s{i}"])
        write_mask(masks[f"s{i}"], gt, num_classes=3)
    pred = np.zeros((32, 48), np.uint8)
    pred[:, 16:] = 2                                     # class 2 too wide, class 1 never

    class Fixed:
        def predict(self, image):
            return SimpleNamespace(mask=pred.copy(), probs=None)

    out = evaluate_test(Fixed(), images, masks, ["s0", "s1"], num_classes=3)
    # class 0 pooled: gt 704 + 768 px, predicted 2 x 512, overlap 448 + 512 (class 1 takes 64)
    assert out["per_class_iou"][0] == pytest.approx(960 / (704 + 768 + 1024 - 960))
    assert out["per_class_iou"][1] == 0.0
    assert out["per_class_iou"][2] == pytest.approx(2 * 32 * 24 / (2 * 32 * 32))
    b0 = metrics.score_mask(gts[0], pred, 3).class_biou
    b1 = metrics.score_mask(gts[1], pred, 3).class_biou
    assert out["per_class_biou"] == pytest.approx([(b0[0] + b1[0]) / 2, 0.0, (b0[2] + b1[2]) / 2])
    assert out["miou"] == pytest.approx(sum(out["per_class_iou"]) / 3)


def test_cli_simulate_prints_per_class_rows_for_multi_class(capsys, monkeypatch):
    from segcore import simulate as sim
    from segcore.cli import main
    row = {k: None for k in ROW_KEYS}
    row.update(dataset="d", k=4, order="random", iou=0.5, biou=0.25, seconds=3.0, miou=0.4,
               per_class_iou=[0.9, None, 0.3], per_class_biou=[0.8, None, 0.125])
    monkeypatch.setattr(sim, "simulate", lambda *a, **kw: [row])
    assert main(["simulate", "--images", "x", "--masks", "y", "--classes", "3"]) == 0
    out = capsys.readouterr().out
    assert "per class (test images)" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert lines["0"].split()[1:] == ["0.900", "/", "0.800"]
    assert lines["1"].split()[1:] == ["-", "/", "-"]
    assert lines["2"].split()[1:] == ["0.300", "/", "0.125"]
    assert lines["mIoU"].split()[1:] == ["0.400"]


def test_given_test_stems_are_the_test_set_and_never_trained_on(labelled, monkeypatch):
    from segcore import simulate as sim
    seen: list[str] = []
    real = sim._correct
    monkeypatch.setattr(sim, "_correct", lambda project, stem, masks: (seen.append(stem),
                                                                          real(project, stem, masks))[1])
    images, masks = labelled
    stems = sorted(p.stem for p in images.glob("*.png"))
    test = [stems[0], stems[4], stems[7]]  # not the last sorted ones
    scored: list[list[str]] = []
    real_eval = sim.evaluate_test
    monkeypatch.setattr(sim, "evaluate_test", lambda predictor, images_, masks_, stems_, *a, **kw: (
        scored.append(list(stems_)), real_eval(predictor, images_, masks_, stems_, *a, **kw))[1])
    simulate(images, masks, ks=(5,), orders=("random",), config=_cfg(), crf=False, test_stems=test)
    assert len(seen) == 5 and not set(seen) & set(test)
    assert scored and all(sorted(s) == sorted(test) for s in scored)
    with pytest.raises(SegLoopError, match="nope"):
        simulate(images, masks, ks=(2,), orders=("random",), config=_cfg(), test_stems=["nope"])


def test_suite_split_is_stratified_where_stems_are_grouped():
    from tests.benchmarks.suite_data import test_stems
    stems = [f"{row}_{i}_s" for row in range(1, 21) for i in range(1, 31)]  # 600: MSRC-like rows
    test = test_stems("msrc_v2", stems)
    assert len(test) == 80 and len(set(test)) == 80
    rows = {s.split("_")[0] for s in test}
    assert rows == {str(r) for r in range(1, 21)}      # every row is in the test set...
    assert all(f"{r}_30_s" in test for r in range(1, 21))  # ...by its last stems (natural order)
    assert test_stems("weizmann_horse", stems) == sorted(stems)[-80:]


def test_default_crf_off_skips_the_default_columns_but_keeps_the_project_decision(labelled, monkeypatch):
    """default_crf=False: no default-parameter CRF pass over the test images; the fine-tune's own
    CRF decision still scores them (project_iou), with the parameters it chose."""
    pytest.importorskip("pydensecrf")
    from segcore import crf as crf_mod
    refined_with = []
    real_refine = crf_mod.refine

    def spy(image, probs, params):
        refined_with.append(params)
        return real_refine(image, probs, params)

    monkeypatch.setattr(crf_mod, "refine", spy)
    on = crf_mod.CRFParams(bilateral_sxy=40.0)
    monkeypatch.setattr(crf_mod, "params_from", lambda decision: on)
    images, masks = labelled
    rows = simulate(images, masks, test_last=3, ks=(2,), orders=("random",), config=_cfg(), default_crf=False)
    assert rows[0]["iou_crf"] is None and rows[0]["biou_crf"] is None
    assert 0.0 <= rows[0]["project_iou"] <= 1.0
    assert refined_with == [on] * 3  # one pass over the 3 test images, with the project's parameters only


def test_a_click_kept_back_is_scored_with_the_parent(labelled, monkeypatch):
    """When a click's model is surely worse on the held-out images, the app keeps predicting
    with the parent: the simulator's row scores that model too and says so."""
    from segcore import loop

    from .test_keep_parent import _ConstantTrainer

    monkeypatch.setattr(loop, "Trainer", _ConstantTrainer)
    monkeypatch.setattr(loop, "KEEP_LARGE_DROP", 0.05)  # one held-out demo image; objects 10-30 %
    real_finetune = loop.finetune

    def finetune(project, config):  # click 1 marks everything, click 2 nothing
        _ConstantTrainer.bias = 50.0 if project.models.active() is None else -50.0
        return real_finetune(project, config)

    monkeypatch.setattr(loop, "finetune", finetune)
    images, masks = labelled
    try:
        rows = simulate(images, masks, test_last=3, ks=(2, 5), orders=("random",), config=_cfg(), crf=False)
    finally:
        _ConstantTrainer.bias = 50.0
    assert [r["kept_parent"] for r in rows] == [False, True]
    assert set(rows[1]["held_out_scores"].values()) == {0.0} and rows[1]["parent_held_out_iou"] > 0.05
    assert rows[1]["iou"] == rows[0]["iou"] > 0.05  # the parent's test score, not the broken model's 0
