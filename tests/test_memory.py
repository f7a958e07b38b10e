"""Memory a training run holds or keeps: segcore.memory (free heap back to the OS) and the
fast-mode feature cache's compact storage (segcore.training.data.FeatureCache)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from segcore.memory import _malloc_trim, release_free_memory
from segcore.training.data import FeatureCache, collate_features
from segcore.training.losses import segmentation_loss

GLIBC = _malloc_trim() is not None


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
def test_release_free_memory_gives_freed_tensor_memory_back_to_the_os():
    # a fresh interpreter: what glibc keeps depends on the process's allocation history
    script = textwrap.dedent("""
        import torch
        from segcore.memory import release_free_memory

        def rss_mb():
            for line in open("/proc/self/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024

        first = torch.ones(1 << 20)       # a freed 4 MB mapping raises glibc's mmap threshold...
        del first
        kept = [torch.ones(1 << 18) for _ in range(100)]  # ...so these 1 MB tensors sit in the heap
        guard = torch.ones(1 << 10)       # above them: freeing them cannot shrink the heap's top
        before = rss_mb()
        del kept
        freed = rss_mb()
        returned = release_free_memory()
        print(before, freed, rss_mb(), returned)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    before, freed, after, returned = out.stdout.split()
    before, freed, after = float(before), float(freed), float(after)
    assert freed > before - 20, "glibc returned the memory by itself: the test no longer tests"
    assert returned == "True"
    assert after < freed - 80  # ~100 MB of freed tensors leave the resident set


def test_release_free_memory_leaves_live_tensors_intact():
    t = torch.arange(1 << 20, dtype=torch.float32)
    release_free_memory()
    assert float(t.sum()) == float(sum(range(1 << 20)))


def _batch(views: int = 3, size: int = 16) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    feats = {"low": torch.randn(views, 4, size, size, generator=g),
             "mid": torch.randn(views, 8, size // 4, size // 4, generator=g)}
    labels = torch.randint(0, 3, (views, size, size), generator=g)
    labels[:, :2] = 255  # ignored pixels
    return feats, labels


def test_feature_cache_keeps_labels_as_uint8_and_serves_the_same_int64_labels():
    feats, labels = _batch()
    cache = FeatureCache()
    cache.add(feats, labels)
    assert all(t.dtype == torch.uint8 for t in cache.labels)
    assert cache.label_nbytes() == labels.numel()          # 1 byte per pixel, was 8
    assert cache.nbytes() == sum(v.numel() * 2 for v in feats.values())  # float16 features
    for i in range(len(cache)):
        item_feats, item_label = cache[i]
        assert item_label.dtype == torch.int64
        assert torch.equal(item_label, labels[i])
        assert all(v.dtype == torch.float32 for v in item_feats.values())


def test_training_loss_from_the_compact_cache_equals_the_int64_labels_loss():
    feats, labels = _batch(views=4)
    cache = FeatureCache()
    cache.add(feats, labels)
    torch.manual_seed(0)
    head = nn.Conv2d(4, 3, 1)
    batch_feats, batch_labels = collate_features([cache[i] for i in range(len(cache))])
    compact = segmentation_loss(head(batch_feats["low"]), batch_labels)
    wide = segmentation_loss(head(feats["low"].half().float()), labels)  # the int64 cache's batch
    assert float(compact) == float(wide)


def test_feature_cache_refuses_labels_that_do_not_fit_a_byte():
    feats, labels = _batch()
    labels[0, 5, 5] = 256
    with pytest.raises(ValueError, match="0..255"):
        FeatureCache().add(feats, labels)
