"""``TrainConfig.average_last``: a phase ends with the uniform mean of its trained weights over
the last share of its progress (segcore.training.run._WeightAverage), and 0 leaves it off."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segcore import models
from segcore.demo import render_demo_image
from segcore.training import TrainConfig, Trainer
from segcore.training import run


def _pairs(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [render_demo_image(rng, (72, 88)) for _ in range(n)]


def _fit(average_last: float, monkeypatch) -> tuple[list[torch.Tensor], list[list[torch.Tensor]], int]:
    """Fast mode, 4 epochs of 2 steps. Returns the trained parameters (decoder + tail) at the end,
    their values after every step, and the step count."""
    averages: list[run._WeightAverage] = []
    after_step: list[list[torch.Tensor]] = []
    init, update = run._WeightAverage.__init__, run._WeightAverage.update

    def spy_init(self, optimizer, share):
        init(self, optimizer, share)
        averages.append(self)

    def spy_update(self, progress):
        after_step.append([p.detach().clone() for p in self.params])
        update(self, progress)
    monkeypatch.setattr(run._WeightAverage, "__init__", spy_init)
    monkeypatch.setattr(run._WeightAverage, "update", spy_update)
    torch.manual_seed(0)
    model = models.build("deeplabv3plus_mobilenet_v2", num_classes=2, pretrained=False)
    cfg = TrainConfig(mode="fast", epochs=4, time_budget_s=None, input_size=64, batch_size=3,
                      fast_views=1, tail_blocks=1, seed=3, average_last=average_last)
    result = Trainer(model, cfg).fit(_pairs(6, 11), _pairs(2, 12))
    assert len(averages) == 1  # one phase
    trained = {id(p) for p in result.model.parameters()}
    assert all(id(p) in trained for p in averages[0].params)  # the saved model's own parameters
    return [p.detach().clone() for p in averages[0].params], after_step, result.steps


def test_the_phase_ends_with_the_mean_of_its_last_steps(offline_one_thread, monkeypatch):
    final, after_step, steps = _fit(0.5, monkeypatch)
    assert steps == 8 and len(after_step) == 8
    # step i (0-based) is taken at progress i / 8: steps 4..7 are the last half
    for i, value in enumerate(final):
        mean = torch.stack([s[i] for s in after_step[4:]]).mean(0)
        torch.testing.assert_close(value, mean, rtol=1e-4, atol=1e-5)
    assert any((v - after_step[-1][i]).abs().max() > 1e-4 for i, v in enumerate(final))
    assert any((v - after_step[3][i]).abs().max() > 1e-4 for i, v in enumerate(final))


def test_off_keeps_the_last_steps_weights(offline_one_thread, monkeypatch):
    final, after_step, _ = _fit(0.0, monkeypatch)
    assert all(torch.equal(v, after_step[-1][i]) for i, v in enumerate(final))


def test_out_of_range_share_is_refused():
    with pytest.raises(ValueError, match="average_last"):
        TrainConfig(average_last=1.0).validate()
