"""Test setup shared by every test: Qt offscreen, isolated settings and caches, small demo data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Qt must never need a display in tests, whatever the caller's environment says.
os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Pin torchvision's weight cache before the fixture below moves XDG_CACHE_HOME.
os.environ.setdefault(
    "TORCH_HOME",
    os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch"),
)

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from segcore.memory import import_torch_lean  # noqa: E402

import_torch_lean()  # tests run torch as the app does: without Triton on a CPU-only machine


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Settings, demo data and thumbnail caches go to a temp dir, never the user's home.

    TORCH_HOME is left alone so the pretrained weights `make test` installed stay visible.
    """
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    yield


@pytest.fixture
def demo_project(tmp_path):
    """A small synthetic project folder (images + ground_truth/), unlabelled."""
    from segcore.demo import generate_demo_project

    return generate_demo_project(tmp_path / "demo", n_images=6, size=(96, 128), seed=1)


@pytest.fixture
def offline_one_thread(monkeypatch):
    """No weight downloads, a fixed seed, and one intra-op torch thread.

    One thread: on a shared 2-core machine, 2 OpenMP threads under contention were measured
    ~100x slower (spin-waiting), not faster.
    """
    import torch

    monkeypatch.setenv("SEGLOOP_OFFLINE", "1")
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
