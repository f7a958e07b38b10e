"""Predictor: per-class probabilities at full image resolution for images of any size.

What the model sees (segcore.preprocess.Preset, the one definition training uses too)
------------------------------------------------------------------------------------
* Images with a side shorter than ``MIN_SIDE`` (8 px) are refused with a ValueError naming the
  size — there is nothing to segment in them.
* The preset comes from the model (``model.meta["preset"]``, stored in its checkpoint by the
  trainer); a model without one (trained before presets, or untrained) gets the legacy
  "stretch" preset at ``model.meta["input_size"]`` (else ``DEFAULT_INPUT_SIZE``).
  ``input_size=`` overrides the preset's view size.
* "scale": the image is resized by the preset's working factor (aspect kept) and predicted in
  ``input_size`` tiles, each padded like a training crop, overlapping by ``overlap`` (1/4) with
  tent-blended logits (one padded tile when the working image fits).
* "stretch": the image is resized to ``input_size`` x ``input_size`` and predicted in one
  pass; above ``tile_above_mp`` megapixels (legacy rule for such models) it is resized to a
  long side of ``tiled_long_side`` (4 x input_size) and tiled instead.
* The *logits* at the working resolution are resized back to the full resolution with cv2
  (bilinear) before sigmoid/softmax.
* ``uncertainty`` = mean over pixels of the normalised entropy ``-Σ p log p / log C`` (0..1),
  computed at the working resolution (same mean, far cheaper than at 20 MP).

Devices: ``device="auto"`` → CUDA with AMP (float16 autocast) when available, else CPU.
``optimize=True`` uses ``DEFAULT_VARIANT`` (Conv+BN folded, channels_last; measurements below);
``optimize=False`` runs the plain eager model; a string names a variant of
``segcore.models.optimize.VARIANTS``.
Out of memory (``is_oom``: CUDA's OutOfMemoryError, MemoryError, and the messages of CUDA, the
CPU allocator and OpenCV) →
retry with tiles half the size, down to 64 px → then on CPU. Only if the CPU also runs out of
memory with 64-px tiles does a SegLoopError reach the caller.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from .devices import device_label, resolve_device
from .errors import SegLoopError
from .models import SegModel, logits_to_probs
from .models.optimize import Runner, make_runner
from .preprocess import Preset, mirrored, preset_of, tiled_logits, to_tensor, working_logits

log = logging.getLogger(__name__)
MIN_SIDE = 8
PAD_MULTIPLE = 32
MIN_TILE = 64
#: working size of a model whose training size is unknown (TrainConfig's default)
DEFAULT_INPUT_SIZE = 320
#: Inference path for optimize=True: Conv+BN folded + channels_last (see segcore.models.optimize).
#: Measured on the 2-core machine (1 thread, MobileNetV2 DeepLab, medians of 9): 480×480 eager
#: 961 ms, channels_last 767, fused 568, TorchScript frozen 557, ONNX Runtime 562; 1280×960:
#: 3702 / 2681 / 2248 / 1983 / 1861 ms. Fused is within ~10% of TorchScript with no 3 s trace,
#: no per-shape re-profiling and no dependence on (deprecated) TorchScript; masks equal eager's
#: (foreground IoU ≥ 0.99999). ``optimize`` may also name a variant ("torchscript", ...).
DEFAULT_VARIANT = "fused"


@dataclass
class Prediction:
    """mask HxW uint8 class indices; probs CxHxW float32 (sum 1 over C); uncertainty 0..1."""

    mask: np.ndarray
    probs: np.ndarray
    uncertainty: float


#: How allocators say "out of memory": CUDA ("CUDA out of memory"), torch's CPU allocator
#: ("DefaultCPUAllocator: can't allocate memory"), OpenCV (cv2.error "(-4:Insufficient memory)").
_OOM_WORDS = ("out of memory", "can't allocate memory", "cannot allocate memory",
              "defaultcpuallocator", "insufficient memory")


def is_oom(exc: BaseException) -> bool:
    """True for out-of-memory errors: MemoryError, torch.cuda.OutOfMemoryError, and RuntimeError /
    cv2.error whose message is one of the allocators' out-of-memory messages (``_OOM_WORDS``)."""
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if isinstance(exc, MemoryError) or (oom_type is not None and isinstance(exc, oom_type)):
        return True
    if not isinstance(exc, (RuntimeError, cv2.error)):
        return False
    text = str(exc).lower()
    return any(word in text for word in _OOM_WORDS)


def mean_normalised_entropy(probs: torch.Tensor) -> float:
    """Mean over pixels of -Σ p log p / log C for (C, H, W) probabilities."""
    c = probs.shape[0]
    p = probs.clamp_min(1e-12)
    return float((-(p * p.log()).sum(0) / np.log(c)).mean().clamp(0.0, 1.0))


def _resize_channels(a: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize (C, H, W) float32 channel by channel (any C) with bilinear interpolation."""
    return np.stack([cv2.resize(ch, (width, height), interpolation=cv2.INTER_LINEAR) for ch in a])


class Predictor:
    """Runs a SegModel (or a checkpoint file) on RGB uint8 images of any size; see module doc.

    A SegModel passed in is copied (the caller's model is never moved, put in eval mode or
    re-strided), so the Predictor is a snapshot of the weights at construction.
    """

    def __init__(
        self,
        model_or_checkpoint: SegModel | str | os.PathLike[str],
        device: str | torch.device = "auto",
        optimize: bool | str = True,
        input_size: int | None = None,
        crf_params: Any = None,
        tile_above_mp: float = 4.0,
        tiled_long_side: int | None = None,
        overlap: float = 0.25,
        output_stride: int | None = None,
        decode_workers: int = 2,
    ) -> None:
        if isinstance(model_or_checkpoint, (str, os.PathLike)):
            from .versions import load_checkpoint  # lazy: versions imports models

            model, self.checkpoint_meta = load_checkpoint(model_or_checkpoint)
        else:  # a snapshot: later training of the caller's model does not change predictions
            model, self.checkpoint_meta = copy.deepcopy(model_or_checkpoint), {}
        self.model: SegModel = model.eval()
        if output_stride is not None and hasattr(self.model, "set_output_stride"):
            self.model.set_output_stride(output_stride)
        preset = preset_of(self.model, DEFAULT_INPUT_SIZE)
        if input_size is not None:
            preset = replace(preset, input_size=int(input_size))
        size = max(MIN_TILE, preset.input_size // PAD_MULTIPLE * PAD_MULTIPLE)
        self.preset: Preset = replace(preset, input_size=size)
        self.input_size = size
        self.tile_above_mp = float(tile_above_mp)
        self.tiled_long_side = int(tiled_long_side or 4 * self.input_size)
        self.overlap = float(overlap)
        self.optimize = optimize
        self.crf_params = crf_params
        self.decode_workers = max(1, int(decode_workers))
        self.tile_size: int | None = None  # set after an OOM: always tile with this size
        self._set_device(resolve_device(device))

    # ------------------------------------------------------------------ device / runner
    def _set_device(self, device: torch.device) -> None:
        self.device = device
        self.model.to(device)
        self.amp = device.type == "cuda"
        self.device_name = device_label(device)
        if isinstance(self.optimize, str):
            variant = self.optimize
        else:
            variant = DEFAULT_VARIANT if self.optimize else "eager"
        try:
            self._runner: Runner = make_runner(self.model, variant)
            self.variant = variant
        except Exception as exc:  # noqa: BLE001 - an exotic model that does not trace: stay eager
            log.warning("optimised inference path %s unavailable (%s); using eager", variant, exc)
            self._runner, self.variant = make_runner(self.model, "eager"), "eager"

    @property
    def num_classes(self) -> int:
        return self.model.num_classes

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Normalised (N,3,h,w) on device → logits float32 (N,out_channels,h,w)."""
        amp = torch.autocast("cuda", dtype=torch.float16) if self.amp else contextlib.nullcontext()
        with torch.inference_mode(), amp:
            return self._runner(batch).float()

    def _working_logits(self, image: np.ndarray) -> torch.Tensor:
        """(C, h, w) logits at the working resolution per the preset (tiled if needed, OOM-safe)."""
        h, w = image.shape[:2]
        legacy_tiled = self.preset.policy == "stretch" and h * w > self.tile_above_mp * 1e6
        tile = self.tile_size
        while True:
            try:
                if legacy_tiled:
                    scale = self.tiled_long_side / max(h, w)
                    size = (max(1, round(w * scale)), max(1, round(h * scale)))
                    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
                    work = cv2.resize(image, size, interpolation=interp) if size != (w, h) else image
                    x = to_tensor(work, self.preset.mean, self.preset.std, self.device)
                    return tiled_logits(mirrored(self._forward, self.preset.flip), x, tile or self.input_size,
                                        self.model.out_channels, self.overlap)
                return working_logits(self._forward, image, self.preset, self.model.out_channels,
                                      self.device, tile)
            except Exception as exc:
                if not is_oom(exc):
                    raise
                tile = self._after_oom(tile, self.preset.working_shape(h, w), exc)

    def _after_oom(self, tile: int | None, shape: tuple[int, int], exc: BaseException) -> int:
        """Next tile size after an OOM (halve; at the minimum, fall back to CPU)."""
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        current = tile or max(shape)
        smaller = max(MIN_TILE, (current // 2) // PAD_MULTIPLE * PAD_MULTIPLE)
        if smaller < current:
            log.warning("out of memory with %s-px tiles on %s; retrying with %s-px tiles",
                        current, self.device_name, smaller)
            self.tile_size = smaller
            return smaller
        if self.device.type != "cpu":
            log.warning("out of memory on %s even with %s-px tiles; falling back to CPU",
                        self.device_name, current)
            self._set_device(torch.device("cpu"))
            self.tile_size = None
            return self.input_size
        raise SegLoopError(f"out of memory on CPU even with {current}-px tiles ({exc})") from exc

    # ------------------------------------------------------------------ public API
    def _check(self, image_rgb: np.ndarray) -> np.ndarray:
        image = np.asarray(image_rgb)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got shape {image.shape} {image.dtype}")
        if min(image.shape[:2]) < MIN_SIDE:
            raise ValueError(f"image of {image.shape[1]}×{image.shape[0]} px is too small to segment "
                             f"(each side must be at least {MIN_SIDE} px)")
        return image

    def _probs_and_uncertainty(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        logits = self._working_logits(image)
        uncertainty = mean_normalised_entropy(logits_to_probs(logits[None])[0])
        h, w = image.shape[:2]
        full = _resize_channels(logits.cpu().numpy(), w, h)
        probs = logits_to_probs(torch.from_numpy(full)[None])[0].numpy()
        if self.crf_params is not None:
            from .crf import refine  # lazy: optional dependency

            probs = refine(image, probs, self.crf_params)
        return probs.astype(np.float32, copy=False), uncertainty

    def predict_probs(self, image_rgb: np.ndarray) -> np.ndarray:
        """(num_classes, H, W) float32 probabilities at the image's full resolution."""
        return self._probs_and_uncertainty(self._check(image_rgb))[0]

    def predict(self, image_rgb: np.ndarray) -> Prediction:
        """Mask (argmax), probabilities and uncertainty for one RGB uint8 image."""
        probs, uncertainty = self._probs_and_uncertainty(self._check(image_rgb))
        return Prediction(mask=probs.argmax(0).astype(np.uint8), probs=probs, uncertainty=uncertainty)

    def predict_paths(
        self,
        paths: Iterable[str | os.PathLike[str]],
        on_result: Callable[[Path, Prediction | Exception], None] | None = None,
        prefetch: int = 4,
    ) -> Iterator[tuple[Path, Prediction | Exception]]:
        """Yield ``(path, Prediction or the Exception)`` in input order; never raises per path.

        Images are decoded (``segcore.io.read_image``) in a thread pool, up to ``prefetch``
        ahead, while the model computes. ``on_result`` is called for each result as well.
        """
        from .io import read_image

        pending: deque[tuple[Path, Future[np.ndarray]]] = deque()
        items = iter(Path(p) for p in paths)
        with ThreadPoolExecutor(max_workers=self.decode_workers, thread_name_prefix="segloop-decode") as pool:
            def fill() -> None:
                while len(pending) < max(1, prefetch):
                    path = next(items, None)
                    if path is None:
                        return
                    pending.append((path, pool.submit(read_image, path)))

            fill()
            while pending:
                path, future = pending.popleft()
                fill()
                result: Prediction | Exception
                try:
                    result = self.predict(future.result())
                except Exception as exc:  # noqa: BLE001 - per-path errors are returned
                    result = exc
                if on_result is not None:
                    on_result(path, result)
                yield path, result
