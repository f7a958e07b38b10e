"""segcore.inference.Predictor: odd sizes, tiling, OOM fallback, batch decoding, optimised path.

Random-init models and small input sizes keep these cheap; only the optimised-vs-eager test
uses the ImageNet MobileNetV2 backbone (skipped, with the reason, when it is not cached).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from segcore.inference import Prediction, Predictor, mean_normalised_entropy
from segcore.models import build
from segcore.weights import MOBILENET_V2_FILE, hub_checkpoint_dir


pytestmark = pytest.mark.usefixtures("offline_one_thread")


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return build("deeplabv3_mobilenet_v2", num_classes=2, pretrained=False).eval()


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _check(pred: Prediction, h: int, w: int, classes: int = 2) -> None:
    assert pred.mask.shape == (h, w) and pred.mask.dtype == np.uint8
    assert pred.probs.shape == (classes, h, w) and pred.probs.dtype == np.float32
    np.testing.assert_allclose(pred.probs.sum(0), 1.0, atol=1e-4)
    assert 0.0 <= pred.uncertainty <= 1.0


@pytest.mark.parametrize("shape", [(1, 1), (5, 300), (300, 7)])
def test_tiny_images_are_refused_clearly(small_model, shape):
    predictor = Predictor(small_model, optimize=False, input_size=64)
    with pytest.raises(ValueError, match="too small"):
        predictor.predict(_image(*shape))


def test_wrong_image_type_is_refused(small_model):
    with pytest.raises(ValueError, match="uint8 RGB"):
        Predictor(small_model, optimize=False, input_size=64).predict(np.zeros((32, 32), np.uint8))


def test_elongated_image_37x1001(small_model):
    pred = Predictor(small_model, optimize=False, input_size=128).predict(_image(37, 1001))
    _check(pred, 37, 1001)


def test_multiclass_probs_at_full_resolution():
    model = build("deeplabv3_mobilenet_v2", num_classes=4, pretrained=False).eval()
    predictor = Predictor(model, optimize=False, input_size=64)
    _check(predictor.predict(_image(50, 70)), 50, 70, classes=4)
    assert predictor.predict_probs(_image(50, 70)).shape == (4, 50, 70)


def test_huge_image_is_tiled(small_model, monkeypatch):
    predictor = Predictor(small_model, optimize=False, input_size=64)
    calls: list[tuple[int, ...]] = []
    original = predictor._forward
    monkeypatch.setattr(predictor, "_forward", lambda x: calls.append(tuple(x.shape)) or original(x))
    image = np.full((4000, 5000, 3), 120, np.uint8)
    image[1000:3000, 1500:3500] = (200, 40, 40)
    pred = predictor.predict(image)
    assert pred.mask.shape == (4000, 5000) and pred.probs.shape == (2, 4000, 5000)
    assert len(calls) > 4 and all(max(s[-2:]) <= 64 for s in calls)


def test_oom_retries_with_smaller_tiles_and_never_raises(small_model):
    predictor = Predictor(small_model, optimize=False, input_size=128)
    real = predictor._runner
    state = {"calls": 0}

    def flaky(x):
        state["calls"] += 1
        if state["calls"] == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(x)

    predictor._runner = flaky
    pred = predictor.predict(_image(120, 100))
    _check(pred, 120, 100)
    assert predictor.tile_size == 64 and state["calls"] > 2


def test_oom_at_every_tile_size_on_accelerator_falls_back_to_cpu(small_model):
    predictor = Predictor(small_model, optimize=False, input_size=128)
    predictor.device = torch.device("meta")  # stands in for a GPU that is always out of memory

    def always_oom(x):
        raise RuntimeError("CUDA error: out of memory")

    predictor._runner = always_oom
    pred = predictor.predict(_image(90, 140))
    _check(pred, 90, 140)
    assert predictor.device.type == "cpu" and predictor.device_name == "CPU"


def test_non_oom_errors_are_not_swallowed(small_model):
    predictor = Predictor(small_model, optimize=False, input_size=64)

    def broken(x):
        raise RuntimeError("shape mismatch")

    predictor._runner = broken
    with pytest.raises(RuntimeError, match="shape mismatch"):
        predictor.predict(_image(40, 40))


def test_predict_paths_returns_errors_per_path_in_order(small_model, tmp_path):
    good = [tmp_path / f"img{i}.png" for i in range(3)]
    for i, path in enumerate(good):
        cv2.imwrite(str(path), _image(40 + i, 50, seed=i))
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 definitely not a jpeg")
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), _image(2, 2))
    paths = [good[0], corrupt, good[1], tmp_path / "missing.png", tiny, good[2]]
    seen = []
    predictor = Predictor(small_model, optimize=False, input_size=64)
    results = list(predictor.predict_paths(paths, on_result=lambda p, r: seen.append(p)))
    assert [p for p, _ in results] == paths == seen
    kinds = [isinstance(r, Prediction) for _, r in results]
    assert kinds == [True, False, True, False, False, True]
    assert results[2][1].mask.shape == (41, 50)
    assert "too small" in str(results[4][1])


def test_checkpoint_path_is_accepted(small_model, tmp_path):
    from segcore.versions import save_checkpoint

    path = save_checkpoint(tmp_path / "v1.pt", small_model, {})
    from_file = Predictor(path, optimize=False, input_size=64).predict(_image(48, 64))
    direct = Predictor(small_model, optimize=False, input_size=64).predict(_image(48, 64))
    np.testing.assert_allclose(from_file.probs, direct.probs, atol=1e-5)


def test_crf_step_runs_when_requested(small_model):
    crf = pytest.importorskip("segcore.crf")
    ok, reason = crf.crf_available()
    if not ok:
        pytest.skip(f"DenseCRF unavailable: {reason}")
    pred = Predictor(small_model, optimize=False, input_size=64, crf_params=crf.CRFParams()).predict(_image(40, 60))
    _check(pred, 40, 60)


def test_mean_normalised_entropy_bounds():
    assert mean_normalised_entropy(torch.full((2, 4, 4), 0.5)) == pytest.approx(1.0)
    onehot = torch.zeros(3, 4, 4)
    onehot[1] = 1.0
    assert mean_normalised_entropy(onehot) == pytest.approx(0.0, abs=1e-6)


def test_every_variant_runs_on_odd_sizes(small_model):
    """TorchScript must cope with shapes other than the one it was traced with."""
    image = _image(70, 90)
    ref = Predictor(small_model, optimize=False, input_size=64).predict(image).probs
    for variant in ("channels_last", "fused", "torchscript"):
        predictor = Predictor(small_model, optimize=variant, input_size=64)
        assert predictor.variant == variant
        np.testing.assert_allclose(predictor.predict(image).probs, ref, atol=2e-3)


@pytest.mark.slow
def test_optimised_path_gives_the_eager_masks_on_demo_images():
    if not (hub_checkpoint_dir() / MOBILENET_V2_FILE).is_file():
        pytest.skip(f"ImageNet MobileNetV2 weights not in {hub_checkpoint_dir()} "
                    f"(run `python -m segcore.cli weights --ensure`)")
    from segcore.demo import render_demo_image

    model = build("deeplabv3_mobilenet_v2", pretrained=True).eval()
    assert model.meta["init"]["weights_source"] != "random-init"
    rng = np.random.default_rng(3)
    images = [render_demo_image(rng, (240, 320))[0] for _ in range(3)]
    with torch.no_grad():  # centre the untrained classifier: masks ~half foreground (a harsh test)
        x = (torch.from_numpy(images[0]).permute(2, 0, 1)[None].float() / 255 - 0.45) / 0.225
        model.decoder.classifier.bias -= model(x)["out"].median()
    eager = Predictor(model, optimize=False, input_size=256)
    fast = Predictor(model, optimize=True, input_size=256)
    assert fast.variant == "fused" and eager.variant == "eager"
    for image in images:
        a, b = eager.predict(image).mask.astype(bool), fast.predict(image).mask.astype(bool)
        assert 0.05 < a.mean() < 0.95
        assert (a & b).sum() / (a | b).sum() >= 0.999


def test_working_view_is_the_training_view_at_the_trained_size(monkeypatch):
    """Predictor and Trainer must see the same picture: stretched to a square of the size
    the model was trained at (model.meta["input_size"], set by load_checkpoint)."""
    from segcore.training.data import stretch_image

    model = build("deeplabv3_mobilenet_v2", pretrained=False)
    model.meta["input_size"] = 96
    predictor = Predictor(model, optimize=False)
    assert predictor.input_size == 96
    seen = []
    original = predictor._forward

    def spy(x):
        seen.append(x.clone())
        return original(x)

    monkeypatch.setattr(predictor, "_forward", spy)
    image = np.random.default_rng(0).integers(0, 255, (50, 170, 3), dtype=np.uint8)
    prediction = predictor.predict(image)
    assert prediction.mask.shape == (50, 170)
    assert tuple(seen[0].shape) == (1, 3, 96, 96)
    from segcore.preprocess import to_tensor
    expected = to_tensor(stretch_image(image, 96), model.mean, model.std)
    assert torch.allclose(seen[0], expected)
    assert Predictor(model, optimize=False, input_size=160).input_size == 160
