"""A click whose new model is surely worse than its parent on the held-out images saves the new
version but leaves the parent active (segcore.loop.surely_worse)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segcore import loop
from segcore.demo import generate_demo_project, load_ground_truth
from segcore.project import Project
from segcore.training import TrainCallbacks, TrainConfig, Trainer


def _scores(*ious):
    return {f"s{i}": [v, None] for i, v in enumerate(ious)}


def test_a_consistent_drop_is_surely_worse():
    worse, old, new, n = loop.surely_worse(_scores(0.7, 0.8, 0.75), _scores(0.0, 0.1, 0.05))
    assert worse and n == 3 and old == pytest.approx(0.75) and new == pytest.approx(0.05)


def test_a_large_mean_drop_is_worse_even_when_one_image_rose():
    # no consistent drop (one image rose, so no bound), but a mean drop of at least
    # KEEP_LARGE_DROP: the suite's ph2_skin_lesion click (0.70 -> 0.47 on 3 held-out images,
    # test IoU 0.852 -> 0.647)
    worse, old, new, n = loop.surely_worse(_scores(0.75, 0.70, 0.64), _scores(0.42, 0.18, 0.81))
    assert worse and n == 3 and old - new >= loop.KEEP_LARGE_DROP
    # the same spread with a smaller mean drop is not
    assert not loop.surely_worse(_scores(0.75, 0.70, 0.64), _scores(0.62, 0.48, 0.81))[0]


def test_mixed_small_or_missing_changes_are_not():
    # one image much worse, one much better: not consistent
    assert not loop.surely_worse(_scores(0.7, 0.3, 0.6), _scores(0.3, 0.7, 0.55))[0]
    # consistent but below KEEP_DROP
    assert not loop.surely_worse(_scores(0.70, 0.80, 0.75), _scores(0.69, 0.79, 0.74))[0]
    # better
    assert not loop.surely_worse(_scores(0.5, 0.6), _scores(0.7, 0.8))[0]
    # images without an IoU in both are left out; none left: nothing to compare
    assert loop.surely_worse({"a": [None, None]}, {"a": [0.1, None]}) == (False, None, None, 0)
    worse, _, _, n = loop.surely_worse({"a": [0.9, 0], "b": [0.8, 0]}, {"a": [0.0, 0], "b": [None, 0]})
    assert n == 1 and worse  # one image left, dropped by more than KEEP_LARGE_DROP


def test_a_single_image_needs_a_large_drop():
    assert loop.surely_worse(_scores(0.8), _scores(0.8 - loop.KEEP_LARGE_DROP - 0.01))[0]
    assert not loop.surely_worse(_scores(0.8), _scores(0.7))[0]


class _ConstantTrainer(Trainer):
    """Trains as usual, then sets the binary logit's bias so the model predicts everything
    (+50) or nothing (-50): a click with a known, extreme outcome."""

    bias = 50.0

    def fit(self, *args, **kwargs):
        result = super().fit(*args, **kwargs)
        with torch.no_grad():
            result.model.decoder.classifier.weight.zero_()
            result.model.decoder.classifier.bias.fill_(type(self).bias)
        return result


def test_a_worse_click_keeps_the_parent_active(tmp_path, monkeypatch):
    root = generate_demo_project(tmp_path / "demo", n_images=20, size=(96, 128), seed=1)
    project = Project.open(root)
    for s in project.stems():
        project.save_mask(s, (load_ground_truth(root, s) > 0).astype(np.uint8))
    cfg = TrainConfig(mode="fast", epochs=1, time_budget_s=None, input_size=64, batch_size=4,
                      fast_views=1, pretrained=False, seed=0)
    monkeypatch.setattr(loop, "Trainer", _ConstantTrainer)
    try:
        _ConstantTrainer.bias = 50.0  # everything foreground: IoU = the object's share (0.14-0.34)
        first = loop.finetune(project, cfg)
        assert len(first.held_out) >= 3 and first.active_id == first.version_id and not first.kept_parent

        _ConstantTrainer.bias = -50.0  # nothing: IoU 0 on every held-out image
        said: list[str] = []
        second = loop.finetune(project, cfg, TrainCallbacks(on_message=said.append))
        assert second.kept_parent and second.active_id == first.version_id
        assert project.models.active().id == first.version_id  # the parent stays active
        saved = project.models.get(second.version_id)  # the new version is kept, not active
        assert not saved.active and saved.metrics["kept_parent"]
        assert all(v[0] == 0.0 for v in saved.metrics["held_out_scores"].values())
        assert f"v{first.version_id} stays active" in second.message and second.message in said

        _ConstantTrainer.bias = 50.0  # as good as the active version: activated
        third = loop.finetune(project, cfg)
        assert not third.kept_parent and third.parent_id == first.version_id
        assert project.models.active().id == third.version_id
    finally:
        project.close()
