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


_FRAGMENT = textwrap.dedent("""
    import torch
    from segcore.memory import configure_allocator

    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

    configured = configure_allocator()
    first = torch.ones(6 << 20)       # 24 MB: once freed, glibc's dynamic threshold rises to it...
    del first
    kept = [torch.ones(5 << 20) for _ in range(20)]  # ...and these 20 MB tensors come from the heap
    guard = torch.ones(5 << 20)       # a live one above them: the heap's top cannot shrink
    before = rss_mb()
    del kept
    print(configured, before - rss_mb())
""")


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_configure_allocator_returns_large_freed_tensors_to_the_os_at_once():
    import os

    def freed_mb(**env: str) -> tuple[str, float]:
        out = subprocess.run([sys.executable, "-c", _FRAGMENT], capture_output=True, text=True, check=True,
                             env={**os.environ, **env})
        configured, freed = out.stdout.split()
        return configured, float(freed)

    configured, freed = freed_mb()
    default_configured, default_freed = freed_mb(SEGLOOP_MALLOC_DEFAULTS="1")
    assert (configured, default_configured) == ("True", "False")
    assert default_freed < 200, "glibc returned the memory by itself: the test no longer tests"
    assert freed > 350  # the 400 MB of freed 20 MB tensors leave the resident set without a trim


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


def _saved_bytes(fn) -> int:
    """Bytes of the tensors autograd saves for backward while ``fn`` runs (each storage once)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return sum(seen.values()), out


def _frozen_tail_model():
    from segcore.models import build
    from segcore.models.base import freeze_bn

    torch.manual_seed(0)
    model = build("deeplabv3plus_mobilenet_v2", 2, pretrained=False)
    model.freeze_encoder(3)  # fast mode: the last 3 encoder blocks train, their BN frozen
    model.eval()
    model.decoder.train()
    freeze_bn(model.encoder)
    for p in model.encoder.parameters():  # full-mode-like: encoder convs train too
        p.requires_grad_(True)
    for m in model.encoder.modules():
        if isinstance(m, nn.BatchNorm2d):
            for p in m.parameters(recurse=False):
                p.requires_grad_(False)
    return model


def test_frozen_bn_as_affine_keeps_outputs_and_gradients_and_saves_less():
    from segcore.models.base import frozen_bn_as_affine

    model = _frozen_tail_model()
    x = torch.randn(2, 3, 96, 128)
    target = (torch.rand(2, 96, 128) > 0.5).long()
    keys = list(model.state_dict())
    types = [type(m) for m in model.modules()]

    def step():
        model.zero_grad(set_to_none=True)
        torch.manual_seed(1)  # the decoder's dropout draws the same mask in both runs
        out = model(x)["out"]
        return out

    plain_bytes, out_plain = _saved_bytes(step)
    segmentation_loss(out_plain, target).backward()
    grads_plain = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    with frozen_bn_as_affine(model) as n:
        assert n > 10  # every encoder BN of MobileNetV2 is frozen here
        assert not any(type(m) is nn.BatchNorm2d for m in model.encoder.modules())
        affine_bytes, out_affine = _saved_bytes(step)
        segmentation_loss(out_affine, target).backward()
        grads_affine = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    torch.testing.assert_close(out_affine, out_plain, rtol=1e-4, atol=1e-4)
    assert grads_affine.keys() == grads_plain.keys() and grads_plain
    for name in grads_plain:
        torch.testing.assert_close(grads_affine[name], grads_plain[name], rtol=1e-3, atol=1e-5)
    # the BN inputs are no longer kept (measured: 66 → 51 MB here; the decoder still learns its BN)
    assert affine_bytes < 0.85 * plain_bytes, (affine_bytes, plain_bytes)
    # back as it was: the same modules, so checkpoints keep their keys
    assert [type(m) for m in model.modules()] == types
    assert list(model.state_dict()) == keys


def test_frozen_bn_as_affine_leaves_learning_batchnorm_alone():
    from segcore.models.base import frozen_bn_as_affine

    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4))
    net.train()
    net[4].eval()                       # eval but its affine still learns: not frozen
    with frozen_bn_as_affine(net) as n:
        assert n == 0
        assert type(net[1]) is nn.BatchNorm2d and type(net[4]) is nn.BatchNorm2d


def test_recompute_tail_gives_the_same_gradients_and_keeps_less_for_backward():
    """Fast mode's ``recompute_tail``: the tail blocks run again in backward (checkpointing), so
    the step's gradients are the plain step's while autograd keeps only the blocks' inputs."""
    from segcore.models import build
    from segcore.models.base import frozen_bn_as_affine

    torch.manual_seed(0)
    model = build("deeplabv3plus_mobilenet_v2", 2, pretrained=False)
    tail = 7
    model.freeze_encoder(tail)
    model.eval()
    with torch.no_grad():
        feats = model.cached_features(torch.randn(2, 3, 128, 160), tail)
    feats = {k: v for k, v in feats.items() if k != "aux"}
    target = (torch.rand(2, 128, 160) > 0.5).long()
    model.decoder.train()

    def step(recompute: bool):
        model.zero_grad(set_to_none=True)
        torch.manual_seed(1)  # the decoder's dropout draws the same mask in both runs
        saved, out = _saved_bytes(lambda: model.head_from_cache(feats, (128, 160), tail, recompute_tail=recompute))
        segmentation_loss(out, target).backward()
        return saved, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    with frozen_bn_as_affine(model):
        plain_bytes, plain = step(False)
        recompute_bytes, recomputed = step(True)
    tail_names = {n for n in plain if n.startswith("encoder.")}
    assert tail_names and plain.keys() == recomputed.keys()  # the tail trains in both
    for name in plain:
        torch.testing.assert_close(recomputed[name], plain[name], rtol=1e-4, atol=1e-6)
    assert recompute_bytes < 0.75 * plain_bytes, (recompute_bytes, plain_bytes)


_STARTUP = textwrap.dedent("""
    import linecache, sys
    if sys.argv[1] == "app":
        from segcore.memory import prepare_process
        prepare_process()            # what segloop's main() does before it imports Qt
    import PySide6.QtWidgets
    import torch, torchvision
    import app.main_window           # the whole app, as main() imports it
    net = torchvision.models.mobilenet_v2(num_classes=3)
    out = net(torch.zeros(1, 3, 64, 64))
    print(len(linecache.cache), sys.modules.get("triton") is not None, "x".join(map(str, out.shape)))
""")


def _startup(order: str, **env: str) -> list[str]:
    import os
    clean = {k: v for k, v in os.environ.items() if k != "SEGLOOP_KEEP_TRITON"}
    out = subprocess.run([sys.executable, "-c", _STARTUP, order], capture_output=True, text=True,
                         check=True, env={**clean, "QT_QPA_PLATFORM": "offscreen", **env})
    return out.stdout.split()


def test_app_start_imports_torch_before_qt_so_no_source_files_stay_in_memory():
    cached_app, triton_app, shape = _startup("app")
    cached_qt_first, *_ = _startup("qt-first")
    # PySide6's import hook reads (and linecache keeps) the source of each module imported after
    # it: torch and torchvision's ~1,700 files when Qt comes first (segcore.memory)
    assert int(cached_qt_first) > 1000, "Qt no longer keeps sources: the test no longer tests"
    assert int(cached_app) < 300
    assert shape == "1x3"  # torchvision still builds and runs models
    import torch
    if not torch.cuda.is_available():
        assert triton_app == "False"  # Triton (GPU kernel compiler, unused) left out without CUDA


def test_keep_triton_variable_leaves_triton_importable():
    from importlib.metadata import PackageNotFoundError, distribution
    try:  # not find_spec: this test process has Triton left out (conftest), installed or not
        distribution("triton")
    except PackageNotFoundError:
        pytest.skip("triton is not installed here")
    _, triton, _ = _startup("app", SEGLOOP_KEEP_TRITON="1")
    assert triton == "True"
