"""Training data: (image, mask) pairs, augmentation in numpy/OpenCV, and the fast-mode feature cache.

Conventions
- A pair is ``(image, mask)``: image HxWx3 uint8 RGB, mask HxW uint8 class indices (255 = ignore),
  or two paths read with segcore.io. Sizes must match.
- What the model sees is a segcore.preprocess.Preset. Its "scale" policy: views are
  ``input_size`` crops of the image resized by its working factor (aspect kept; scale jitter
  ``crop_jitter``; ``fg_crop_share`` of the crops centred on a random labelled non-background
  pixel, so small objects and rare classes are seen), padded with the mean colour and label
  255 where the working image is smaller than a crop (prediction pads its tiles the same way).
- Its "stretch" policy (same as segcore.inference for such presets): the
  whole image is resized, aspect NOT kept, to ``input_size`` x ``input_size``; logits are resized
  back to the full image / mask resolution. Training views are random windows of the image (each
  side = image side / s, s ~ U(scale_range) times a small aspect jitter; s > 1 zooms in) stretched
  to ``input_size`` x ``input_size``, then flipped and colour-jittered. With s >= 1 a view never
  contains padding; s < 1 (zoom out) pads with the mean colour / label 255 (ignored).
  Why not "keep aspect, pad to a square": the ASPP image-pooling branch (global average → 1x1 conv
  → BatchNorm) then sees padded squares in training and unpadded images at test time, a global
  shift that made held-out IoU fall while the training loss fell (measured; see tests).
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
from ..preprocess import Preset, normalize  # normalize: one definition, re-exported

IGNORE = 255


@dataclass
class PreparedPair:
    """A pair ready for training: image/mask pre-shrunk to what augmentation can use."""

    image: np.ndarray        # hxwx3 uint8
    mask: np.ndarray         # hxw uint8
    name: str
    factor: float = 1.0      # "scale" preset: working factor relative to this (pre-shrunk) image


@dataclass
class ValPair:
    """A held-out pair: image stretched to input_size x input_size, mask at full label resolution."""

    image: np.ndarray        # input_size x input_size x 3 uint8
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


def prepare_train_pairs(pairs: Sequence[Any], preset: Preset | int, max_scale: float) -> list[PreparedPair]:
    """Shrink each pair to the resolution augmentation can use (never enlarges).

    "stretch": each side to at most input_size*max_scale px, independently (views are stretched
    to a square anyway). "scale": the whole pair by min(1, working factor * max_scale), aspect
    kept; ``PreparedPair.factor`` is the working factor left to apply to the shrunk pair.
    """
    if not isinstance(preset, Preset):
        preset = Preset.legacy(int(preset))
    out = []
    limit = max(1, int(round(preset.input_size * max(max_scale, 1.0))))
    for i, pair in enumerate(pairs):
        image, mask, name = _load_pair(pair, i)
        h, w = mask.shape
        factor = 1.0
        if preset.policy == "stretch":
            nh, nw = min(h, limit), min(w, limit)
        else:
            full = preset.factor(h, w)
            t = min(1.0, full * max(max_scale, 1.0))
            nh, nw = max(1, round(h * t)), max(1, round(w * t))
            factor = full * (h / nh + w / nw) / 2  # = full / t, up to the rounding of the sides
        if (nh, nw) != (h, w):
            image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask, (nw, nh), interpolation=cv2.INTER_NEAREST)
        out.append(PreparedPair(np.ascontiguousarray(image), np.ascontiguousarray(mask), name, factor))
    return out


def stretch_image(image: np.ndarray, size: int) -> np.ndarray:
    """The inference view of an image: resized to size x size, aspect not kept (INTER_AREA down)."""
    h, w = image.shape[:2]
    interp = cv2.INTER_AREA if (h >= size and w >= size) else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


def prepare_val_pairs(pairs: Sequence[Any], preset: Preset | int) -> list[ValPair]:
    """Held-out pairs: the image as the model sees it (``preset.working_image``), the mask at
    full resolution."""
    if not isinstance(preset, Preset):
        preset = Preset.legacy(int(preset))
    out = []
    for i, pair in enumerate(pairs):
        image, mask, name = _load_pair(pair, i)
        out.append(ValPair(np.ascontiguousarray(preset.working_image(image)), mask.copy(), name))
    return out


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


def _flip_jitter(img: np.ndarray, lab: np.ndarray, rng: np.random.Generator, hflip: bool, vflip: bool,
                 color_jitter: float) -> tuple[np.ndarray, np.ndarray]:
    """The random flips and colour jitter every training view gets (in this order, so seeded
    views stay the same)."""
    if hflip and rng.random() < 0.5:
        img, lab = img[:, ::-1], lab[:, ::-1]
    if vflip and rng.random() < 0.5:
        img, lab = img[::-1], lab[::-1]
    img = _jitter(np.ascontiguousarray(img), color_jitter, rng)
    return img, np.ascontiguousarray(lab)


def augment(image: np.ndarray, mask: np.ndarray, size: int, rng: np.random.Generator,
            scale_range: tuple[float, float] = (1.0, 1.6), hflip: bool = True, vflip: bool = False,
            color_jitter: float = 0.2, mean: Sequence[float] = (0.485, 0.456, 0.406),
            identity: bool = False, aspect_jitter: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """One augmented view → (size x size x 3 uint8, size x size uint8; 255 = padding, only if s < 1).

    A window of the image (height h/sy, width w/sx with sy, sx = s * (1 +- aspect_jitter),
    s ~ U(scale_range)) at a random position is stretched to size x size.
    identity: the whole image stretched to size x size (the inference view), nothing else.
    """
    if identity:
        return (np.ascontiguousarray(stretch_image(image, size)),
                np.ascontiguousarray(cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)))
    h, w = mask.shape
    s = float(rng.uniform(*scale_range))
    sy, sx = s * rng.uniform(1 - aspect_jitter, 1 + aspect_jitter, size=2)
    ch, cw = h / sy, w / sx                      # window size in image pixels (may exceed the image)
    y0 = float(rng.uniform(min(0.0, h - ch), max(0.0, h - ch)))
    x0 = float(rng.uniform(min(0.0, w - cw), max(0.0, w - cw)))
    fy, fx = size / ch, size / cw
    m = np.array([[fx, 0.0, -x0 * fx], [0.0, fy, -y0 * fy]], np.float32)
    fill = tuple(int(round(c * 255)) for c in mean)
    src = image
    if fx < 0.75 or fy < 0.75:  # strong shrink: area-resize first so warpAffine does not alias
        src = cv2.resize(image, (max(1, round(w * fx)), max(1, round(h * fy))), interpolation=cv2.INTER_AREA)
        m[0, 0] *= w / src.shape[1]
        m[1, 1] *= h / src.shape[0]
    img = cv2.warpAffine(src, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=fill)
    mm = np.array([[fx, 0.0, -x0 * fx], [0.0, fy, -y0 * fy]], np.float32)
    lab = cv2.warpAffine(mask, mm, (size, size), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=IGNORE)
    return _flip_jitter(img, lab, rng, hflip, vflip, color_jitter)


def view(pair: PreparedPair, preset: Preset, rng: np.random.Generator, identity: bool = False,
         **aug: Any) -> tuple[np.ndarray, np.ndarray]:
    """One training view of a prepared pair under ``preset``; ``aug`` holds augmentation settings
    (TrainConfig names; those the policy does not use are ignored)."""
    if preset.policy == "scale":
        keys = ("crop_jitter", "hflip", "vflip", "color_jitter", "fg_crop_share")
        return crop_view(pair.image, pair.mask, preset.input_size, pair.factor, rng, mean=preset.mean,
                         identity=identity, **{k: aug[k] for k in keys if k in aug})
    keys = ("scale_range", "hflip", "vflip", "color_jitter")
    return augment(pair.image, pair.mask, preset.input_size, rng, mean=preset.mean, identity=identity,
                   **{k: aug[k] for k in keys if k in aug})


def crop_view(image: np.ndarray, mask: np.ndarray, size: int, factor: float, rng: np.random.Generator,
              crop_jitter: tuple[float, float] = (0.8, 1.25), hflip: bool = True, vflip: bool = False,
              color_jitter: float = 0.2, mean: Sequence[float] = (0.485, 0.456, 0.406),
              identity: bool = False, fg_crop_share: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A ``size`` x ``size`` crop of the image resized by ``factor`` x jitter (aspect kept).

    Where the crop leaves the image: mean colour, label 255. ``identity``: no jitter, flip or
    colour change; the crop at the image's centre, top-left aligned on an axis where the image
    is smaller than the crop (the prediction's padding). Each axis uses the factor its rounded
    working size implies and cv2.resize's pixel-centre convention, so an identity crop of an
    image that fits one tile is the Predictor's tile of it.
    """
    h, w = mask.shape
    f = float(factor)
    if not identity:
        lo, hi = crop_jitter
        f *= float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    fy, fx = max(1, round(h * f)) / h, max(1, round(w * f)) / w
    wy, wx = size / fy, size / fx                    # crop size in image pixels
    ylo, yhi, xlo, xhi = min(0.0, h - wy), max(0.0, h - wy), min(0.0, w - wx), max(0.0, w - wx)
    if identity:
        y0, x0 = max(0.0, (h - wy) / 2), max(0.0, (w - wx) / 2)
    else:
        y0, x0 = float(rng.uniform(ylo, yhi)), float(rng.uniform(xlo, xhi))
        if fg_crop_share > 0 and rng.random() < fg_crop_share:
            fg = np.flatnonzero((mask > 0) & (mask != IGNORE))
            if fg.size:
                cy, cx = divmod(int(fg[rng.integers(fg.size)]), w)
                y0 = float(np.clip(cy - wy * rng.uniform(0.2, 0.8), ylo, yhi))
                x0 = float(np.clip(cx - wx * rng.uniform(0.2, 0.8), xlo, xhi))

    def matrix(sx: float, sy: float) -> np.ndarray:
        # x_out + .5 = s (x_src + .5) - x0 * f_axis: the convention of cv2.resize
        return np.array([[sx, 0.0, 0.5 * (sx - 1) - x0 * fx], [0.0, sy, 0.5 * (sy - 1) - y0 * fy]], np.float32)

    src, sx, sy = image, fx, fy
    if f < 0.75:  # strong shrink: area-resize first so warpAffine does not alias
        src = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        sx, sy = fx * w / src.shape[1], fy * h / src.shape[0]  # the factor left after the area resize
    img = cv2.warpAffine(src, matrix(sx, sy), (size, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)  # as cv2.resize at the border...
    fill = tuple(int(round(c * 255)) for c in mean)    # ...then the mean colour outside the image
    ys = (np.arange(size) + 0.5) / fy + y0
    xs = (np.arange(size) + 0.5) / fx + x0
    img[(ys < 0) | (ys > h)] = fill
    img[:, (xs < 0) | (xs > w)] = fill
    lab = cv2.warpAffine(mask, matrix(fx, fy), (size, size), flags=cv2.INTER_NEAREST,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=IGNORE)
    if identity:
        return np.ascontiguousarray(img), np.ascontiguousarray(lab)
    return _flip_jitter(img, lab, rng, hflip, vflip, color_jitter)


class AugmentedPairs(Dataset):
    """A torch Dataset of freshly augmented views (full mode). Thread-safe enough for num_workers=0."""

    def __init__(self, pairs: list[PreparedPair], preset: Preset, seed: int = 0, **aug: Any) -> None:
        self.pairs, self.preset, self.aug = pairs, preset, aug
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        img, lab = view(self.pairs[index], self.preset, self.rng, **self.aug)
        return normalize(img, self.preset.mean, self.preset.std), torch.from_numpy(lab.astype(np.int64))


class FeatureCache(Dataset):
    """Fast mode: encoder features of augmented views, float16 on the CPU, with their labels
    as uint8 (class indices and 255 = ignore fit; an int64 label of a 320-px view is 800 KB,
    more than its features, 350 KB for the default model).

    Item → (dict of feature tensors (float32), label int64 size x size): what the loss takes,
    made per item, so only a batch is ever held at full width.
    """

    def __init__(self) -> None:
        self.features: list[dict[str, torch.Tensor]] = []
        self.labels: list[torch.Tensor] = []

    def add(self, feats: dict[str, torch.Tensor], labels: torch.Tensor) -> None:
        """Add a batch (first dimension = views); labels must be class indices 0..255."""
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) > 255):
            raise ValueError("FeatureCache labels must be class indices in 0..255")
        for i in range(labels.shape[0]):
            self.features.append({k: v[i].to("cpu", torch.float16) for k, v in feats.items()})
            self.labels.append(labels[i].to("cpu", torch.uint8))

    def nbytes(self) -> int:
        """Bytes of the cached features (the part that scales with the model; see cache_limit_mb)."""
        return sum(t.numel() * t.element_size() for f in self.features for t in f.values())

    def label_nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return {k: v.float() for k, v in self.features[index].items()}, self.labels[index].long()


MIN_CROP_CELLS = 8  # feature-space crops: at least 8 cells of the coarsest map (128 px at OS16)


class FeatureCrops(Dataset):
    """Fast mode: random crops of a :class:`FeatureCache`'s views, cut in feature space.

    Each item is a window of ``share`` of the view's side (rounded to whole cells of the coarsest
    feature map), at a random cell offset, out of every feature map and the label alike: what
    an image crop would have given, up to the zero padding at the window's edges. The step
    costs about ``share``² of a full view's and sees a shifted context every epoch. A crop is
    never narrower than ``min_cells`` cells (whole views below that); views whose feature maps do
    not tile the label exactly are returned whole."""

    def __init__(self, cache: FeatureCache, share: float, seed: int = 0, min_cells: int = MIN_CROP_CELLS) -> None:
        self.cache = cache
        self.share = float(share)
        self.min_cells = int(min_cells)
        self.gen = torch.Generator()
        self.gen.manual_seed(seed)

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, index: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        feats, label = self.cache[index]
        h, w = label.shape[-2:]
        shapes = [tuple(v.shape[-2:]) for v in feats.values()]
        cells = (min(s[0] for s in shapes), min(s[1] for s in shapes))  # the coarsest map
        if any(h % s[0] or w % s[1] or s[0] % cells[0] or s[1] % cells[1] for s in shapes) \
                or h % cells[0] or w % cells[1]:
            return feats, label
        ch, cw = (min(c, max(self.min_cells, round(self.share * c))) for c in cells)
        if (ch, cw) == cells:
            return feats, label
        oy = int(torch.randint(0, cells[0] - ch + 1, (1,), generator=self.gen))
        ox = int(torch.randint(0, cells[1] - cw + 1, (1,), generator=self.gen))

        def cut(t: torch.Tensor) -> torch.Tensor:
            fy, fx = t.shape[-2] // cells[0], t.shape[-1] // cells[1]
            return t[..., oy * fy:(oy + ch) * fy, ox * fx:(ox + cw) * fx]
        return {k: cut(v) for k, v in feats.items()}, cut(label)


def collate_features(batch: list[tuple[dict[str, torch.Tensor], torch.Tensor]]):
    keys = batch[0][0].keys()
    feats = {k: torch.stack([b[0][k] for b in batch]) for k in keys}
    return feats, torch.stack([b[1] for b in batch])
