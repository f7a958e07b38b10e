"""Fixtures for the app tests: a MainWindow on a tiny demo project with a fake, instant model.

The settings file lives under the per-test XDG_CONFIG_HOME set by tests/conftest.py.
``fake_model`` replaces the prediction worker's model factory with a threshold "model" so
tests are fast and deterministic; ``tiny_model`` uses a random-init MobileNetV2 DeepLabV3.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import segcore.inference  # noqa: F401 - import torch once here, not inside a worker thread

N_IMAGES = 4
SIZE = (96, 128)


class FakePredictor:
    """Foreground = brighter than the image mean. Counts calls."""

    device_name = "CPU"

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def predict(self, image: np.ndarray):
        from segcore.inference import Prediction

        self.calls.append(image.shape[:2])
        gray = image.astype(np.float32).mean(axis=2)
        fg = (gray > gray.mean()).astype(np.float32)
        probs = np.stack([1 - 0.8 * fg - 0.1, 0.8 * fg + 0.1]).astype(np.float32)
        return Prediction(mask=fg.astype(np.uint8), probs=probs, uncertainty=0.3)


@pytest.fixture(autouse=True)
def no_cold_start(monkeypatch):
    """The background cold-start ranking builds a real model: off unless a test turns it on."""
    from app.workers import cold_start

    monkeypatch.setattr(cold_start, "ENABLED", False)


@pytest.fixture
def fake_model(monkeypatch):
    from app.workers import prediction

    predictor = FakePredictor()
    monkeypatch.setattr(prediction, "default_model_factory",
                        lambda project: prediction.LoadedModel(predictor, None, "fake model"))
    return predictor


@pytest.fixture
def tiny_model(monkeypatch):
    import torch

    from app.workers import prediction
    from segcore import models
    from segcore.inference import Predictor

    def factory(project):
        torch.manual_seed(0)
        torch.set_num_threads(1)
        model = models.build(models.DEFAULT_MODEL, num_classes=project.num_classes,
                             pretrained=False)
        return prediction.LoadedModel(Predictor(model, device="cpu", optimize=False,
                                                input_size=64), None, "tiny test model")

    monkeypatch.setattr(prediction, "default_model_factory", factory)


@pytest.fixture
def demo_dir(tmp_path) -> Path:
    from segcore.demo import generate_demo_project

    return generate_demo_project(tmp_path / "demo", n_images=N_IMAGES, size=SIZE, seed=3)


def make_window(qtbot, folder: Path | None = None, ask_mask_resize=None):
    from app.main_window import MainWindow
    from app.settings import Settings

    window = MainWindow(Settings())
    qtbot.addWidget(window)
    if ask_mask_resize is not None:
        window.ask_mask_resize = ask_mask_resize
    window.show()
    window.activateWindow()
    qtbot.waitExposed(window)
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)  # key clicks need an active window
    if folder is not None:
        assert window.open_project(folder)
    return window


@pytest.fixture
def window(qtbot, demo_dir, fake_model):
    w = make_window(qtbot, demo_dir)
    yield w
    w.close()
