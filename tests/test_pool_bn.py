"""The BatchNorm after global pooling (ASPP's image-pooling branch): found by
segcore.models.base.global_pool_norms, and left as it is by fast mode with
TrainConfig.freeze_pool_bn while the decoder's other BatchNorm layers train."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torchvision.models.segmentation.deeplabv3 import ASPPPooling

from segcore import models
from segcore.models.base import global_pool_norms
from segcore.training import TrainConfig, Trainer


def _pairs(n: int = 8, size: int = 64) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(n):
        img = rng.integers(0, 80, (size, size, 3)).astype(np.uint8)
        mask = np.zeros((size, size), np.uint8)
        a = 4 + 3 * i
        mask[a:a + 24, 12:48] = 1
        img[mask == 1] = (200, 90, 60)
        pairs.append((img, mask))
    return pairs


def test_global_pool_norms_finds_the_pooled_vectors_batchnorm_only():
    model = models.build("deeplabv3plus_mobilenet_v2", num_classes=2, pretrained=False)
    found = global_pool_norms(model.decoder)
    pools = [m for m in model.decoder.modules() if isinstance(m, ASPPPooling)]
    assert len(pools) == 1 and found == [pools[0][2]]
    assert isinstance(found[0], nn.BatchNorm2d)
    all_bn = [m for m in model.decoder.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(all_bn) > 1  # the atrous branches, the projection, ... are not pooled vectors
    # a pooling to more than one bin keeps spatial statistics: not a pooled vector
    block = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    assert global_pool_norms(block) == []
    assert global_pool_norms(nn.Sequential(nn.AdaptiveMaxPool2d((1, 1)), nn.BatchNorm2d(3)))


def _bn_state(bn: nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in (bn.running_mean, bn.running_var, bn.weight, bn.bias)]


def _fit(freeze: bool) -> tuple[list[torch.Tensor], list[torch.Tensor], nn.Module]:
    torch.manual_seed(0)
    model = models.build("deeplabv3plus_mobilenet_v2", num_classes=2, pretrained=False)
    pooled = global_pool_norms(model.decoder)[0]
    before = _bn_state(pooled)
    cfg = TrainConfig(mode="fast", epochs=1, time_budget_s=None, input_size=64, batch_size=8,
                      micro_batch=4, fast_views=1, scale_policy="stretch", freeze_pool_bn=freeze)
    pairs = _pairs()
    result = Trainer(model, cfg).fit(pairs, pairs[:2])
    trained = result.model
    return before, _bn_state(global_pool_norms(trained.decoder)[0]), trained


def test_fast_mode_leaves_the_pooled_batchnorm_alone_when_asked():
    before, after, trained = _fit(freeze=True)
    for a, b in zip(before, after):
        assert torch.equal(a, b)
    # the decoder's other BatchNorm layers still learned statistics (batch chunks of 4 >= min_bn_batch)
    others = [m for m in trained.decoder.modules()
              if isinstance(m, nn.BatchNorm2d) and m not in global_pool_norms(trained.decoder)]
    assert any(not torch.equal(m.running_mean, torch.zeros_like(m.running_mean)) for m in others)
    # the same run without the option moves it
    before, after, _ = _fit(freeze=False)
    assert not torch.equal(before[0], after[0])
