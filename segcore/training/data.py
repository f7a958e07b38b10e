"""Training data: (image, mask) pairs, augmentation in numpy/OpenCV, and the fast-mode feature cache.

Conventions
- A pair is ``(image, mask)``: image HxWx3 uint8 RGB, mask HxW uint8 class indices (255 = ignore),
  or two paths read with segcore.io. Sizes must match.
- Resize policy (same as segcore.inference): the image is resized, aspect kept, so its long side
  is ``input_size``; augmentation then rescales that by s in ``scale_range``, pads (image: mean
  colour, mask: 255 = ignored) and crops ``input_size`` x ``input_size``, flips, jitters colour.
  Held-out images are resized (aspect kept) to long side ``input_size`` and their logits
  upsampled to the full mask resolution.
- Labels are int64 tensors; the loss ignores 255.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import TrainingError

IGNORE = 255


@dataclass
class PreparedPair:
    """A pair ready for training: image/mask pre-shrunk to what augmentation can use."""

    image: np.ndarray        # hxwx3 uint8
    mask: np.ndarray         # hxw uint8
    name: str


@dataclass
class ValPair:
    """A held-out pair: image with long side = input size, mask at full label resolution."""

    image: np.ndarray        # hxwx3 uint8, max(h, w) == input_size
    mask: np.ndarray         # HxW uint8 (original resolution)
    name: str


def _load_pair(pair: Any, index: int) -> tuple[np.ndarray, np.ndarray, str]:
    image, mask = pair[0], pair[1]
    name = str(pair[2]) if len(pair) > 2 else f"pair {index}"
    if isinstance(image, (str, Path)):
        from ..io import read_image
        name = Path(image).name
        image = read_image(image)
    if isinstance(mask, (str, Path)):
        from ..io import read_mask
        mask = read_mask(mask)
    image = np.asarray(image)
    mask = np.asarray(mask)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise TrainingError(f"{name}: image must be HxWx3 uint8, got {image.shape} {image.dtype}")
    if mask.ndim != 2 or mask.shape != image.shape[:2]:
        raise TrainingError(f"{name}: mask shape {mask.shape} does not match image {image.shape[:2]}")
    return image, mask.astype(np.uint8, copy=False), name


def fit_long_side(h: int, w: int, long_side: float) -> tuple[int, int]:
    """(h, w) scaled so max(h, w) == long_side, aspect kept, each side >= 1."""
    f = long_side / max(h, w)
    return max(1, int(round(h * f))), max(1, int(round(w * f)))


def prepare_train_pairs(pairs: Sequence[Any], input_size: int, max_scale: float) -> list[PreparedPair]:
    """Shrink each pair so its long side is at most input_size*max_scale (never enlarges)."""
    out = []
    limit = int(round(input_size * max_scale))
    for i, pair in enumerate(pairs):
        image, mask, name = _load_pair(pair, i)
        h, w = mask.shape
        nh, nw = fit_long_side(h, w, limit) if max(h, w) > limit else (h, w)
        if (nh, nw) != (h, w):
            image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask, (nw, nh), interpolation=cv2.INTER_NEAREST)
        out.append(PreparedPair(np.ascontiguousarray(image), np.ascontiguousarray(mask), name))
    return out


def prepare_val_pairs(pairs: Sequence[Any], input_size: int) -> list[ValPair]:
    out = []
    for i, pair in enumerate(pairs):
        image, mask, name = _load_pair(pair, i)
        h, w = fit_long_side(*image.shape[:2], input_size)
        small = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA
                           if max(image.shape[:2]) > input_size else cv2.INTER_LINEAR)
        out.append(ValPair(small, mask.copy(), name))
    return out


def normalize(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """HxWx3 uint8 → 3xHxW float32, (x/255 - mean) / std (mean/std in 0..1 units)."""
    x = image.astype(np.float32) * (1.0 / 255.0)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def _jitter(image: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    if amount <= 0:
        return image
    x = image.astype(np.float32)
    b, c, s = rng.uniform(1 - amount, 1 + amount, size=3)
    x *= b
    gray = x @ np.array([0.299, 0.587, 0.114], np.float32)
    x = (x - gray.mean()) * c + gray.mean()
    gray = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    x = gray + (x - gray) * s
    return np.clip(x, 0, 255).astype(np.uint8)


def augment(image: np.ndarray, mask: np.ndarray, size: int, rng: np.random.Generator,
            scale_range: tuple[float, float] = (0.5, 2.0), hflip: bool = True, vflip: bool = False,
            color_jitter: float = 0.2, mean: Sequence[float] = (0.485, 0.456, 0.406),
            identity: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One augmented view → (size x size x 3 uint8, size x size uint8 with 255 = padding).

    identity: long side resized to ``size`` and padded at the bottom/right, nothing else.
    """
    s = 1.0 if identity else float(rng.uniform(*scale_range))
    h, w = fit_long_side(*mask.shape, size * s)
    interp = cv2.INTER_AREA if h < mask.shape[0] else cv2.INTER_LINEAR
    img = cv2.resize(image, (w, h), interpolation=interp)
    lab = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
    if h < size or w < size:
        fill = tuple(int(round(m * 255)) for m in mean)
        ph, pw = max(0, size - h), max(0, size - w)
        img = cv2.copyMakeBorder(img, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=fill)
        lab = cv2.copyMakeBorder(lab, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=IGNORE)
        h, w = lab.shape
    if identity:
        return np.ascontiguousarray(img[:size, :size]), np.ascontiguousarray(lab[:size, :size])
    y = int(rng.integers(0, h - size + 1))
    x = int(rng.integers(0, w - size + 1))
    img, lab = img[y:y + size, x:x + size], lab[y:y + size, x:x + size]
    if hflip and rng.random() < 0.5:
        img, lab = img[:, ::-1], lab[:, ::-1]
    if vflip and rng.random() < 0.5:
        img, lab = img[::-1], lab[::-1]
    img = _jitter(np.ascontiguousarray(img), color_jitter, rng)
    return img, np.ascontiguousarray(lab)


class AugmentedPairs(Dataset):
    """A torch Dataset of freshly augmented crops (full mode). Thread-safe enough for num_workers=0."""

    def __init__(self, pairs: list[PreparedPair], size: int, mean: Sequence[float],
                 std: Sequence[float], seed: int = 0, **aug: Any) -> None:
        self.pairs, self.size, self.mean, self.std, self.aug = pairs, size, mean, std, aug
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.pairs[index]
        img, lab = augment(p.image, p.mask, self.size, self.rng, mean=self.mean, **self.aug)
        return normalize(img, self.mean, self.std), torch.from_numpy(lab.astype(np.int64))


class FeatureCache(Dataset):
    """Fast mode: encoder features of augmented views, float16 on the CPU, with their labels.

    Item → (dict of feature tensors (float32), label int64 size x size).
    """

    def __init__(self) -> None:
        self.features: list[dict[str, torch.Tensor]] = []
        self.labels: list[torch.Tensor] = []

    def add(self, feats: dict[str, torch.Tensor], labels: torch.Tensor) -> None:
        """Add a batch (first dimension = views)."""
        for i in range(labels.shape[0]):
            self.features.append({k: v[i].to("cpu", torch.float16) for k, v in feats.items()})
            self.labels.append(labels[i].cpu())

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for f in self.features for t in f.values())

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return {k: v.float() for k, v in self.features[index].items()}, self.labels[index]


def collate_features(batch: list[tuple[dict[str, torch.Tensor], torch.Tensor]]):
    keys = batch[0][0].keys()
    feats = {k: torch.stack([b[0][k] for b in batch]) for k in keys}
    return feats, torch.stack([b[1] for b in batch])
