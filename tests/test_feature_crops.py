"""Fast mode's random crops cut in feature space (segcore.training.data.FeatureCrops): every
feature map and the label are cut at the same place of the image, and a fast-mode run trains
on the crops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segcore import models
from segcore.training import TrainConfig, Trainer
from segcore.training.data import FeatureCache, FeatureCrops, collate_features
from segcore.training.losses import segmentation_loss


def _positional_cache(size: int = 64, views: int = 3) -> FeatureCache:
    """Views whose maps at stride 4 ("low") and 16 ("mid") and whose label all hold the index
    of the 16-px cell their pixel lies in (plus the view number), so a misaligned cut shows."""
    cells = size // 16
    cell = torch.arange(cells * cells, dtype=torch.float32).reshape(cells, cells)
    cache = FeatureCache()
    for v in range(views):
        mid = (cell + 10 * v).expand(5, cells, cells)
        low = mid.repeat_interleave(4, -2).repeat_interleave(4, -1)
        label = (cell + 10 * v).repeat_interleave(16, -2).repeat_interleave(16, -1)
        cache.add({"mid": mid[None], "low": low[None]}, label[None].long())
    return cache


def test_crops_cut_every_map_and_the_label_at_the_same_place():
    cache = _positional_cache(size=64)
    crops = FeatureCrops(cache, share=0.5, seed=3, min_cells=1)
    offsets = set()
    for _ in range(20):
        for i in range(len(crops)):
            feats, label = crops[i]
            assert label.shape == (32, 32)                      # half of 64 px, in 16-px cells
            assert feats["mid"].shape == (5, 2, 2) and feats["low"].shape == (5, 8, 8)
            # each map's cell value equals the label's at that cell's place in the image
            mid = feats["mid"][0]
            low = feats["low"][0]
            assert torch.equal(mid.repeat_interleave(16, -2).repeat_interleave(16, -1), label.float())
            assert torch.equal(low.repeat_interleave(4, -2).repeat_interleave(4, -1), label.float())
            offsets.add(int(label[0, 0]) - 10 * i)
    assert len(offsets) > 1  # the place moves from one draw to the next
    batch_feats, batch_labels = collate_features([crops[0], crops[1]])
    assert batch_feats["low"].shape == (2, 5, 8, 8) and batch_labels.shape == (2, 32, 32)


def test_whole_views_when_share_is_one_or_the_maps_do_not_tile_the_label():
    cache = _positional_cache(size=64)
    feats, label = FeatureCrops(cache, share=1.0)[0]
    assert label.shape == (64, 64) and feats["mid"].shape[-2:] == (4, 4)
    odd = FeatureCache()
    odd.add({"out": torch.zeros(1, 2, 5, 5)}, torch.zeros(1, 66, 66, dtype=torch.long))  # 66 / 5
    feats, label = FeatureCrops(odd, share=0.5, min_cells=1)[0]
    assert label.shape == (66, 66) and feats["out"].shape[-2:] == (5, 5)
    # never narrower than min_cells: 4 cells at share 0.5 with a floor of 3 cells → 3 cells
    feats, label = FeatureCrops(cache, share=0.5, min_cells=3)[0]
    assert label.shape == (48, 48) and feats["mid"].shape[-2:] == (3, 3)


def test_fast_mode_trains_on_crops_of_the_configured_share():
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(4):
        img = rng.integers(0, 80, (120, 120, 3)).astype(np.uint8)
        mask = np.zeros((120, 120), np.uint8)
        mask[30:90, 20:80] = 1
        img[mask == 1] = (200, 90, 60)
        pairs.append((img, mask))
    seen: list[tuple[int, int]] = []

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(labels.shape[-2:]))
        assert logits.shape[-2:] == labels.shape[-2:]
        return segmentation_loss(logits, labels)

    torch.manual_seed(0)
    model = models.build("deeplabv3plus_mobilenet_v2", num_classes=2, pretrained=False)
    cfg = TrainConfig(mode="fast", epochs=2, time_budget_s=None, input_size=160, batch_size=4,
                      fast_views=2, fast_crop=0.8, scale_policy="stretch")
    result = Trainer(model, cfg, loss_fn=loss).fit(pairs, pairs[:1])
    assert result.model is not None and seen
    assert set(seen) == {(128, 128)}  # 8 of the 10 cells of a 160-px view at stride 16
    whole: list[tuple[int, int]] = []
    Trainer(model, TrainConfig(**{**cfg.to_dict(), "fast_crop": 1.0}),
            loss_fn=lambda lo, la: whole.append(tuple(la.shape[-2:])) or segmentation_loss(lo, la)).fit(pairs)
    assert set(whole) == {(160, 160)}
    # a model not measured with crops (DeepLabV3's ASPP head collapsed on them) trains on whole views
    plain: list[tuple[int, int]] = []
    other = models.build("deeplabv3_mobilenet_v2", num_classes=2, pretrained=False)
    assert not other.fast_crop_ok and model.fast_crop_ok
    Trainer(other, cfg, loss_fn=lambda lo, la: plain.append(tuple(la.shape[-2:])) or segmentation_loss(lo, la)).fit(pairs)
    assert set(plain) == {(160, 160)}


def test_fast_crop_out_of_range_is_refused():
    with pytest.raises(ValueError, match="fast_crop"):
        TrainConfig(fast_crop=0.0).validate()
    with pytest.raises(ValueError, match="fast_crop"):
        TrainConfig(fast_crop=1.5).validate()
