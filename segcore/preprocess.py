"""The preprocessing preset: what the model sees of an image, one object for every consumer.

A :class:`Preset` is chosen per project (:func:`choose_preset`, from the corrected masks),
stored in the model (``model.meta["preset"]``) and the checkpoint, and used identically by the
trainer (training views, held-out evaluation), the Predictor, the CLI and the simulator.

Policies
--------
* ``"stretch"``: the whole image resized to ``input_size`` x ``input_size`` (aspect NOT kept).
  Training views are random windows stretched to that square. Right for one object that fills
  the frame; kept for models trained before presets existed (their checkpoints carry no
  preset and get ``Preset.legacy(input_size)``). For small images whose objects are large
  (tiles of a lesion), :func:`choose_preset` makes the square smaller: at most
  ``MAX_STRETCH_UPSCALE`` x their median long side, objects still >= ``STRETCH_OBJECT_PX``.
* ``"scale"`` (the working scale): each image is resized by one factor, aspect kept,
  ``factor(h, w) = max(scale, input_size / max(h, w))`` capped at ``MAX_UPSCALE`` and at
  ``max_work_mp`` megapixels. ``scale`` comes from the typical object size in the corrected
  masks (objects get at least ``OBJECT_TARGET_PX`` working pixels); the second term fits
  an image with large objects into one view. Training views are ``input_size`` crops of the
  working image (scale jitter around the factor, half of them centred on a labelled
  foreground pixel); where the working image is smaller than a crop, the rest is the mean
  colour with void labels. Prediction runs the same ``input_size`` tiles over the working
  image with overlapping, tent-blended logits (one tile, padded the same way, when it fits).

Mirror averaging (``flip``): a model trained with random horizontal flips predicts the mean of
the logits of the image and of its mirror image (flipped back), in training's held-out scoring,
the Predictor, the CLI and the simulator alike (:func:`mirrored`).

Normalisation: ``(x / 255 - mean) / std`` with the model's ImageNet mean/std (``normalize``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Iterable, Sequence

import cv2
import numpy as np
import torch

from .models.base import IMAGENET_MEAN, IMAGENET_STD

POLICIES = ("stretch", "scale")
#: the working scale is used when a typical object would span fewer pixels than this in the
#: stretched view (one output-stride-16 cell): measured on the suite at the one-click budget,
#: stretch beat a working scale wherever objects were larger (dsb2018_nuclei, 19 px in view:
#: 0.63 vs 0.54 IoU at k=20)
MIN_VIEW_OBJECT_PX = 16.0
#: working pixels a typical object then spans (two stride-16 cells; the DeepLabV3+ decoder
#: draws it from 8 stride-4 cells)
OBJECT_TARGET_PX = 32.0
#: never enlarge an image more than this (a 101 px tile becomes at most ~400 px)
MAX_UPSCALE = 4.0
#: "stretch" (choose_preset's _stretch_side): small images with large objects are enlarged at
#: most this much, not to input_size. ph2_tiles (96-128 px, lesion ~0.7 of a tile), k = 20,
#: seeds 0/1/2: 224-px views 0.819/0.820/0.811 vs 320-px 0.656/0.711/0.687 (results.md,
#: session 21); k = 5 0.712 vs 0.737
MAX_STRETCH_UPSCALE = 2.0
#: ... but the typical object keeps at least this many pixels in the smaller view: with nuclei
#: of ~0.14 of a tile (dsb2018_tiles, 46 px in the 320 view, 32 px in 224) the 224-px view
#: lost (k = 5 / 20 means 0.723 / 0.753 vs 0.750 / 0.769), so there the view stays 320
STRETCH_OBJECT_PX = 64.0
#: the smallest stretched view (8 stride-16 cells; a floor for very small images, not measured)
MIN_STRETCH_SIDE = 128
#: working image ceiling (tiles cost time in training views and in prediction)
MAX_WORK_MP = 4.0
OVERLAP = 0.25
PAD_MULTIPLE = 32


@dataclass(frozen=True)
class Preset:
    """How images become model input. JSON-able via to_dict / from_dict."""

    policy: str = "scale"
    input_size: int = 320           # view / tile side in working pixels
    scale: float = 0.0              # "scale": object factor (0 = fit each image to one view)
    max_work_mp: float = MAX_WORK_MP
    flip: bool = False              # predict as the mean of the image's and its mirror's logits
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    reason: str = field(default="", compare=False)  # how it was chosen, for the user

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"preset policy must be one of {POLICIES}, not {self.policy!r}")
        if self.input_size < 32:
            raise ValueError(f"input size must be >= 32 px, not {self.input_size}")
        if not (self.scale >= 0 and math.isfinite(self.scale)):
            raise ValueError(f"working scale must be >= 0, not {self.scale}")

    @classmethod
    def legacy(cls, input_size: int = 320) -> "Preset":
        """What a checkpoint without a preset was trained with (stretch to a square)."""
        return cls("stretch", int(input_size), reason="model trained before working scales")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None, input_size: int = 320) -> "Preset":
        if not d:
            return cls.legacy(input_size)
        known = {k: d[k] for k in ("policy", "input_size", "scale", "max_work_mp", "flip", "reason") if k in d}
        for k in ("mean", "std"):
            if k in d:
                known[k] = tuple(float(v) for v in d[k])
        return cls(**known)

    def with_model(self, model: Any) -> "Preset":
        """This preset with the model's normalisation (mean/std belong to the weights)."""
        return replace(self, mean=tuple(model.mean), std=tuple(model.std))

    def describe(self) -> str:
        mirror = ", mirror-averaged" if self.flip else ""
        if self.policy == "stretch":
            return f"stretch to {self.input_size}x{self.input_size}{mirror}"
        s = f"x{self.scale:.2f}" if self.scale > 0 else "fit"
        return f"working scale {s} (tiles {self.input_size} px{mirror})"

    # ------------------------------------------------------------------ geometry
    def factor(self, h: int, w: int) -> float:
        """"scale" policy: the resize factor of an h x w image (aspect kept)."""
        f = max(self.scale, self.input_size / max(h, w))
        f = min(f, MAX_UPSCALE)
        cap = math.sqrt(self.max_work_mp * 1e6 / max(h * w, 1))
        return float(min(f, max(cap, self.input_size / max(h, w))))

    def working_shape(self, h: int, w: int) -> tuple[int, int]:
        if self.policy == "stretch":
            return self.input_size, self.input_size
        f = self.factor(h, w)
        return max(1, round(h * f)), max(1, round(w * f))

    def working_image(self, image: np.ndarray) -> np.ndarray:
        """The image as the model sees it (before normalisation)."""
        h, w = image.shape[:2]
        wh, ww = self.working_shape(h, w)
        if (wh, ww) == (h, w):
            return image
        interp = cv2.INTER_AREA if (wh <= h and ww <= w) else cv2.INTER_LINEAR
        return cv2.resize(image, (ww, wh), interpolation=interp)


# ---------------------------------------------------------------------- normalisation
def normalize(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """HxWx3 uint8 → 3xHxW float32, (x/255 - mean) / std (mean/std in 0..1 units)."""
    x = image.astype(np.float32) * (1.0 / 255.0)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def to_tensor(image: np.ndarray, mean: Sequence[float], std: Sequence[float],
              device: torch.device | str = "cpu") -> torch.Tensor:
    """(1, 3, H, W) normalised tensor on ``device`` (normalised there: cheaper on a GPU)."""
    x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1).float().div_(255.0)
    m = torch.tensor(mean, device=x.device).view(3, 1, 1)
    s = torch.tensor(std, device=x.device).view(3, 1, 1)
    return ((x - m) / s).unsqueeze(0)


# ---------------------------------------------------------------------- tiled logits
def mirrored(forward: Callable[[torch.Tensor], torch.Tensor], flip: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """``forward`` itself, or with ``flip`` the mean of its logits on a batch and on the batch
    mirrored left-right (flipped back): test-time augmentation for a model trained with random
    horizontal flips. Both halves go through the model as one batch."""
    if not flip:
        return forward
    return lambda x: mirror_mean(forward(with_mirror(x)))


def with_mirror(x: torch.Tensor) -> torch.Tensor:
    """The batch followed by its left-right mirror image (twice the batch)."""
    return torch.cat([x, x.flip(-1)])


def mirror_mean(out: torch.Tensor) -> torch.Tensor:
    """The mean of the first half of a ``with_mirror`` batch's outputs and of the second half
    flipped back."""
    n = out.shape[0] // 2
    return 0.5 * (out[:n] + out[n:].flip(-1))


def _tent(size: int) -> np.ndarray:
    ramp = np.minimum(np.arange(size) + 1, np.arange(size)[::-1] + 1).astype(np.float32)
    return ramp / ramp.max()


def tile_starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def padded_forward(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                   size: int | None = None) -> torch.Tensor:
    """Logits (C, h, w) of (1, 3, h, w): padded with 0 (= the mean colour) on the bottom/right to
    ``size`` x ``size`` (or to a multiple of 32 when ``size`` is None), cropped back."""
    h, w = x.shape[-2:]
    if size is None:
        ph, pw = -h % PAD_MULTIPLE, -w % PAD_MULTIPLE
    else:
        ph, pw = max(0, size - h), max(0, size - w)
    if ph or pw:
        x = torch.nn.functional.pad(x, (0, pw, 0, ph))
    return forward(x)[0, :, :h, :w]


def tiled_logits(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int,
                 out_channels: int, overlap: float = OVERLAP) -> torch.Tensor:
    """(C, H, W) logits of a (1, 3, H, W) working image from ``tile`` x ``tile`` views (each
    padded to the full tile as in training), blended with a tent weight where they overlap."""
    h, w = x.shape[-2:]
    if h <= tile and w <= tile:
        return padded_forward(forward, x, tile)
    step = max(PAD_MULTIPLE, int(tile * (1.0 - overlap)))
    th, tw = min(tile, h), min(tile, w)
    weight = torch.from_numpy(np.outer(_tent(th), _tent(tw))).to(x.device)
    acc = torch.zeros(out_channels, h, w, device=x.device)
    norm = torch.zeros(1, h, w, device=x.device)
    for top in tile_starts(h, tile, step):
        for left in tile_starts(w, tile, step):
            logits = padded_forward(forward, x[..., top:top + th, left:left + tw], tile)
            acc[:, top:top + th, left:left + tw] += logits * weight
            norm[:, top:top + th, left:left + tw] += weight
    return acc / norm


def working_logits(forward: Callable[[torch.Tensor], torch.Tensor], image: np.ndarray, preset: Preset,
                   out_channels: int, device: torch.device | str = "cpu",
                   tile: int | None = None) -> torch.Tensor:
    """(C, h, w) logits at the working resolution of an RGB uint8 image under ``preset``.

    ``tile`` overrides the tile size (the Predictor's out-of-memory fallback)."""
    work = preset.working_image(image)
    x = to_tensor(work, preset.mean, preset.std, device)
    forward = mirrored(forward, preset.flip)
    if preset.policy == "stretch" and tile is None:
        return padded_forward(forward, x)
    return tiled_logits(forward, x, tile or preset.input_size, out_channels)


# ---------------------------------------------------------------------- the choice
def object_sizes(mask: np.ndarray, ignore_index: int = 255, min_area: int = 4) -> list[float]:
    """sqrt(area) of each connected region of every non-background class (void excluded)."""
    sizes: list[float] = []
    for c in np.unique(mask):
        if c == 0 or c == ignore_index:
            continue
        n, _, stats, _ = cv2.connectedComponentsWithStats((mask == c).astype(np.uint8), connectivity=8)
        areas = stats[1:, cv2.CC_STAT_AREA]
        sizes += [math.sqrt(a) for a in areas if a >= min_area]
    return sizes


def stretch_side(masks: Iterable[np.ndarray], input_size: int = 320) -> int:
    """The side of the "stretch" view of a project with these masks (see :func:`_stretch_side`)."""
    longs, rel = _extents(masks)
    return _stretch_side(longs, rel, input_size)


def _extents(masks: Iterable[np.ndarray]) -> tuple[list[int], list[tuple[float, float]]]:
    """Each mask's long side, and (d, long side) for each mask with labelled regions, d = the
    median size (sqrt area) of those regions."""
    longs: list[int] = []
    rel: list[tuple[float, float]] = []
    for m in masks:
        m = np.asarray(m)
        long_side = max(m.shape[:2])
        longs.append(long_side)
        regions = object_sizes(m)
        if regions:
            rel.append((float(np.median(regions)), float(long_side)))
    return longs, rel


def _stretch_side(longs: Sequence[int], rel: Sequence[tuple[float, float]], input_size: int) -> int:
    """``input_size``, or less for small images with large objects: at most
    ``MAX_STRETCH_UPSCALE`` x the median long side, but never so small that the typical object
    (median of d / long side) spans fewer than ``STRETCH_OBJECT_PX``; rounded up to a multiple
    of ``PAD_MULTIPLE``, at least ``MIN_STRETCH_SIDE``. Without objects: ``input_size``."""
    if not rel:  # no objects (or no masks): no evidence for a smaller view
        return input_size
    need = STRETCH_OBJECT_PX / float(np.median([d / long_side for d, long_side in rel]))
    want = max(MAX_STRETCH_UPSCALE * float(np.median(longs)), need)
    side = PAD_MULTIPLE * math.ceil(want / PAD_MULTIPLE)
    return int(min(input_size, max(side, min(MIN_STRETCH_SIDE, input_size))))


def choose_preset(masks: Iterable[np.ndarray], input_size: int = 320,
                  target_px: float = OBJECT_TARGET_PX, min_view_px: float = MIN_VIEW_OBJECT_PX) -> Preset:
    """The preprocessing preset of a project, from its corrected masks (one rule, no dataset names).

    For each mask: d = the median size (sqrt area) of its labelled regions, and the size those
    regions have in the stretched view, ``d * side / long side``, where ``side`` is
    :func:`_stretch_side` (``input_size`` unless the images are small and their objects large).
    When the median of the latter is at least ``min_view_px``, the whole image fits one view
    well: "stretch". Otherwise objects would vanish in that view (huge images, tiny objects):
    "scale" with the factor that makes a typical object ``target_px`` working pixels
    (``target_px / median d``). No foreground at all → stretch.
    """
    longs, rel = _extents(masks)
    side = _stretch_side(longs, rel, input_size)
    if not rel:
        return Preset("stretch", side, reason="no objects in the masks yet: whole image in view")
    seen = float(np.median([d * side / long_side for d, long_side in rel]))
    if seen >= min_view_px:
        return Preset("stretch", side,
                      reason=f"objects ~{seen:.0f} px in a {side}-px view of the whole image")
    d = float(np.median([size for size, _ in rel]))
    factor = target_px / d
    return Preset("scale", input_size, scale=round(factor, 3),
                  reason=f"objects ~{d:.0f} px (only ~{seen:.0f} px in a whole-image view): "
                         f"images scaled x{factor:.2f}")


def preset_of(model: Any, default_input_size: int = 320) -> Preset:
    """The preset a model was trained with (its meta), with the model's mean/std."""
    meta = getattr(model, "meta", None) or {}
    size = int(meta.get("input_size") or default_input_size)
    return Preset.from_dict(meta.get("preset"), size).with_model(model)
