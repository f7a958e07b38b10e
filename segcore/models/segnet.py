"""SegNet (Badrinarayanan, Kendall & Cipolla, TPAMI 2017).

Encoder: VGG-16's 13 convolutions with BatchNorm (torchvision ``vgg16_bn().features``, names
``features.N`` so ``VGG16_BN_Weights.IMAGENET1K_V1`` loads by name), five 2×2 max-pools that
keep their **indices**. Decoder: the mirror image: each stage upsamples with
``F.max_unpool2d`` using the indices of the matching encoder pool (a sparse map holding each
maximum where it was), then dense 3×3 conv + BN + ReLU layers (3, 3, 3, 2, 1 per stage, the
last stage ending in a 3×3 conv to classes: the paper's 13 decoder convs).

The input is zero-padded (bottom/right) to a multiple of 32 so every unpooling restores the
exact pre-pool size; the logits are cropped back (``crop_output``).
Weights start fresh (the paper's default here); ``encoder_weights="imagenet"`` loads
torchvision's VGG-16-BN ImageNet weights through ``segcore.weights`` (hub cache or download;
random init with a warning when neither is possible). Full mode only either way: the decoder
needs the pooling indices of every stage, which a feature cache would have to store per view,
and a fresh encoder must train.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import VGG16_BN_Weights, vgg16_bn
from torchvision.ops.misc import Conv2dNormActivation

from ..weights import ProgressCallback, WeightSource
from ._assemble import assemble
from .backbones import Backbone
from .base import SegModel
from .deeplabv3 import Pretrained

#: convs per decoder stage, deepest first (mirror of VGG-16's 3, 3, 3, 2, 2 minus the last)
_DECODER_LAYOUT: tuple[tuple[int, ...], ...] = ((512, 512, 512), (512, 512, 256), (256, 256, 128), (128, 64), (64,))
POOL_KEYS = tuple(f"idx{i}" for i in range(1, 6))


class SegNetEncoder(nn.Module):
    """VGG-16-BN features with index-returning pools → ``{"out", "idx1".."idx5"}``."""

    def __init__(self) -> None:
        super().__init__()
        self.features = vgg16_bn(weights=None).features
        for i, layer in enumerate(self.features):
            if isinstance(layer, nn.MaxPool2d):
                self.features[i] = nn.MaxPool2d(2, stride=2, return_indices=True)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        ph, pw = -x.shape[-2] % 32, -x.shape[-1] % 32
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        result: dict[str, Tensor] = {}
        n = 0
        for layer in self.features:
            if isinstance(layer, nn.MaxPool2d):
                x, idx = layer(x)
                n += 1
                result[f"idx{n}"] = idx
            else:
                x = layer(x)
        result["out"] = x
        return result


class SegNetDecoder(nn.Module):
    """Unpool with the encoder's indices, then convs, five times (deepest first)."""

    inputs = ("out",) + POOL_KEYS[::-1]
    crop_output = True

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        stages = []
        prev = 512
        for layout in _DECODER_LAYOUT:
            layers: list[nn.Module] = []
            for width in layout:
                layers.append(Conv2dNormActivation(prev, width, kernel_size=3, bias=False))
                prev = width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.classifier = nn.Conv2d(prev, out_channels, kernel_size=3, padding=1)

    def forward(self, out: Tensor, *indices: Tensor) -> Tensor:
        x = out
        for stage, idx in zip(self.stages, indices):
            x = stage(F.max_unpool2d(x, idx, kernel_size=2, stride=2))
        return self.classifier(x)


def segnet(num_classes: int = 2, pretrained: Pretrained = True, aux: bool | None = None, binary_bce: bool = True,
           progress: ProgressCallback | None = None, encoder_weights: str = "none") -> SegModel:
    """SegNet, VGG-16-BN encoder; ``encoder_weights``: "none" (fresh, default) or "imagenet"."""
    if aux:
        raise ValueError("segnet has no auxiliary head")
    if encoder_weights not in ("none", "imagenet"):
        raise ValueError(f"segnet encoder_weights must be 'none' or 'imagenet', got {encoder_weights!r}")
    source = WeightSource.from_torchvision(VGG16_BN_Weights.IMAGENET1K_V1) if encoder_weights == "imagenet" else None
    bb = Backbone(SegNetEncoder(), {}, source)
    options = {} if encoder_weights == "none" else {"encoder_weights": encoder_weights}
    model = assemble("segnet", num_classes, bb, SegNetDecoder, pretrained=pretrained if source else False,
                     aux=False, binary_bce=binary_bce, progress=progress, options=options,
                     note="SegNet decoder starts fresh; the VGG-16-BN encoder "
                          + ("from ImageNet when torchvision's weights are available" if source else "too"))
    model.full_mode_only("the decoder unpools with every encoder stage's max-pool indices, and a "
                         "fresh encoder must train")
    model.encoder_bn_frozen = source is not None and model.meta["init"].get("loaded", 0) > 0
    return model
