"""The Trainer's recipe is pinned: a tiny model trained for a fixed number of epochs with a fixed
seed ends with the same weights and the same epoch losses every time, in every mode.

The reference numbers (``GOLDEN``) were recorded with the trainer before it was split into
segcore.training.budget / phases; a change to the recipe, the RNG use or the step order moves
them far more than the tolerance (float32 arithmetic of one machine vs another: 1e-4 relative).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segcore import models
from segcore.demo import render_demo_image
from segcore.training import TrainConfig, Trainer

# mode -> (epoch losses, held-out IoU of the last epoch, sum of |trained - initial| over all weights)
GOLDEN: dict[str, tuple[list[float], float, float]] = {
    "fast": ([0.7077355980873108, 0.7071705857912699], 0.20722853535353536, 0.9073205602179553),
    "full": ([0.7095257043838501, 0.7045097351074219], 0.20722853535353536, 0.49102332116984637),
    "fast+full": ([0.7077481150627136, 0.7088916599750519, 0.7040542960166931], 0.20722853535353536, 1.030155834604361),
}


def _pairs(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [render_demo_image(rng, (72, 88)) for _ in range(n)]


def _run(mode: str) -> tuple[list[float], float | None, float, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    model = models.build("deeplabv3_mobilenet_v2", num_classes=2, pretrained=False)
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    cfg = TrainConfig(mode=mode, epochs=2, fast_epochs=1, time_budget_s=None, input_size=64,
                      batch_size=3, fast_views=2, tail_blocks=2, seed=3)
    result = Trainer(model, cfg).fit(_pairs(5, 11), _pairs(2, 12))
    state = {k: v.detach().clone() for k, v in result.model.state_dict().items()}
    moved = float(sum((v.double() - start[k].double()).abs().sum()
                      for k, v in state.items() if v.is_floating_point()))
    return [r.train_loss for r in result.history], result.val_iou, moved, state


def test_same_seed_same_weights_and_losses(offline_one_thread):
    losses, iou, _, state = _run("fast+full")
    losses2, iou2, _, state2 = _run("fast+full")
    assert losses == losses2 and iou == iou2
    assert state.keys() == state2.keys()
    assert all(torch.equal(state[k], state2[k]) for k in state)


@pytest.mark.parametrize("mode", ["fast", "full", "fast+full"])
def test_recipe_matches_the_recorded_run(mode, offline_one_thread):
    losses, iou, moved, _ = _run(mode)
    g_losses, g_iou, g_moved = GOLDEN[mode]
    assert losses == pytest.approx(g_losses, rel=1e-4)
    assert iou == pytest.approx(g_iou, rel=1e-4, abs=1e-6)
    assert moved == pytest.approx(g_moved, rel=1e-4)
