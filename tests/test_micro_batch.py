"""Micro-batching (TrainConfig.micro_batch): one optimizer step per batch, computed in chunks.

The chunked backward must give the batch's gradient (same update, less activation memory), the
chunks must never be smaller than ``micro_batch`` (BatchNorm statistics), and a non-finite chunk
must leave no gradient behind.
"""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from segcore.preprocess import Preset
from segcore.training.budget import RunBudget
from segcore.training.config import TrainCallbacks, TrainConfig
from segcore.training.run import RunContext


def _ctx(micro: int, **cfg) -> RunContext:
    config = TrainConfig(micro_batch=micro, **cfg)
    return RunContext(config, TrainCallbacks(), threading.Event(), nn.functional.cross_entropy,
                      Preset("stretch", 32), torch.device("cpu"), RunBudget(config))


@pytest.mark.parametrize("n,micro,sizes", [(8, 4, [4, 4]), (8, 3, [4, 4]), (7, 4, [7]), (9, 4, [4, 5]),
                                           (8, 1, [1] * 8), (3, 4, [3]), (1, 4, [1])])
def test_chunks_cover_the_batch_and_are_never_below_micro_batch(n, micro, sizes):
    chunks = _ctx(micro).micro_batches(n)
    assert [c.stop - c.start for c in chunks] == sizes
    assert chunks[0].start == 0 and chunks[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(chunks, chunks[1:]))


def test_chunked_backward_gives_the_batch_gradient():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 1))
    x, y = torch.randn(8, 3, 12, 12), torch.randint(0, 3, (8, 12, 12))

    def grads(micro: int) -> tuple[list[torch.Tensor], float]:
        net.zero_grad(set_to_none=True)
        loss, finite = _ctx(micro).accumulate(8, lambda c: nn.functional.cross_entropy(net(x[c]), y[c]))
        assert finite
        return [p.grad.clone() for p in net.parameters()], float(loss)

    whole, loss_whole = grads(8)
    chunked, loss_chunked = grads(2)
    assert loss_chunked == pytest.approx(loss_whole, rel=1e-5)
    for a, b in zip(whole, chunked):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_a_non_finite_chunk_is_reported_and_stops_the_batch():
    net = nn.Linear(4, 2)
    x = torch.randn(8, 4)
    x[6] = float("nan")
    calls = []

    def chunk_loss(c: slice) -> torch.Tensor:
        calls.append(c)
        return net(x[c]).sum()

    loss, finite = _ctx(4).accumulate(8, chunk_loss)
    assert not finite and not torch.isfinite(loss)
    assert len(calls) == 2


def test_decoder_bn_decision_uses_the_chunk_size():
    # batch 8 in chunks of 4: BN (min_bn_batch 4) still learns; chunks of 2 would freeze it
    assert not _ctx(4).bn_frozen_head(8)
    assert _ctx(2, min_bn_batch=4).bn_frozen_head(8)
    assert _ctx(4).bn_frozen_head(3)  # a batch of 3 is one chunk of 3 < 4
