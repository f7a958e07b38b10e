"""U-Net (Ronneberger, Fischer & Brox, MICCAI 2015): the original fresh-weight network and a
U-Net decoder on the ImageNet MobileNetV2 encoder.

``unet`` — contracting path of double 3×3 convs (64, 128, 256, 512, 1024 channels) with 2×2
max-pools; expanding path of 2×2 up-convolutions (halving the channels), concatenation with
the skip of the same scale, double 3×3 conv; 1×1 to classes, at the input resolution.
Two deliberate differences from the paper, both what its common re-implementations do: convs
are padded (the output has the input's size instead of a cropped one, so no overlap-tile
bookkeeping), and each conv has BatchNorm (the 2015 paper predates it; without it a
fresh-weight net trains far more slowly). An up-convolved map that is one pixel short of its
skip (odd sizes) is zero-padded to it. ``base_channels`` scales the widths (paper: 64).
Weights start fresh, so it trains in full mode only (a frozen random encoder is useless) and
its encoder BatchNorm learns (``encoder_bn_frozen = False``).

``unet_mobilenet_v2`` — the MobileNetV2 encoder at output stride 32 with a skip at every
stride (blocks 1, 3, 6, 13: 16, 24, 32, 96 ch); four decoder stages (bilinear ×2, concat,
double 3×3 conv BN+ReLU; 256, 128, 64, 32 ch) back to stride 2, 1×1 to classes, bilinear to
the input (segmentation_models_pytorch's Unet, one stage shorter). Fast mode: yes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops.misc import Conv2dNormActivation

from ..weights import ProgressCallback
from ._assemble import assemble
from .backbones import Backbone, backbone
from .base import SegModel
from .heads import fuse_skips
from .deeplabv3 import Pretrained
from .mobilenet import UNET_TAPS


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(Conv2dNormActivation(in_channels, out_channels, kernel_size=3, bias=False),
                         Conv2dNormActivation(out_channels, out_channels, kernel_size=3, bias=False))


def _pad_to(x: Tensor, like: Tensor) -> Tensor:
    dh, dw = like.shape[-2] - x.shape[-2], like.shape[-1] - x.shape[-1]
    if dh or dw:
        x = F.pad(x, (0, max(dw, 0), 0, max(dh, 0)))[..., : like.shape[-2], : like.shape[-1]]
    return x


class UNetEncoder(nn.Module):
    """Contracting path → ``{"s1", "s2", "s4", "s8", "out" (stride 16)}``."""

    def __init__(self, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.stages = nn.ModuleList([double_conv(3, widths[0])] + [
            double_conv(a, b) for a, b in zip(widths[:-1], widths[1:])])
        self.pool = nn.MaxPool2d(2)
        self.keys = ("s1", "s2", "s4", "s8", "out")[: len(widths) - 1] + ("out",)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        result: dict[str, Tensor] = {}
        for i, stage in enumerate(self.stages):
            if i:
                x = self.pool(x)
            x = stage(x)
            result[self.keys[i]] = x
        return result


class UNetDecoder(nn.Module):
    """Expanding path: 2×2 up-conv, concat skip, double conv; 1×1 classifier (input resolution)."""

    inputs = ("out", "s8", "s4", "s2", "s1")

    def __init__(self, widths: tuple[int, ...], out_channels: int) -> None:
        super().__init__()
        rev = widths[::-1]
        self.ups = nn.ModuleList([nn.ConvTranspose2d(a, b, kernel_size=2, stride=2) for a, b in zip(rev, rev[1:])])
        self.convs = nn.ModuleList([double_conv(2 * b, b) for b in rev[1:]])
        self.classifier = nn.Conv2d(widths[0], out_channels, kernel_size=1)

    def forward(self, out: Tensor, *skips: Tensor) -> Tensor:
        x = out
        for up, conv, skip in zip(self.ups, self.convs, skips):
            x = conv(torch.cat([skip, _pad_to(up(x), skip)], dim=1))
        return self.classifier(x)


class SkipDecoder(nn.Module):
    """U-Net decoder on a pretrained encoder: bilinear ×2, concat skip, double conv, per stage."""

    inputs = ("out", "s16", "s8", "s4", "s2")

    def __init__(self, channels: dict[str, int], out_channels: int,
                 widths: tuple[int, ...] = (256, 128, 64, 32)) -> None:
        super().__init__()
        ins = [channels["out"]] + list(widths[:-1])
        skips = [channels[k] for k in self.inputs[1:]]
        self.blocks = nn.ModuleList([double_conv(i + s, w) for i, s, w in zip(ins, skips, widths)])
        self.classifier = nn.Conv2d(widths[-1], out_channels, kernel_size=1)

    def forward(self, out: Tensor, *skips: Tensor) -> Tensor:
        return self.classifier(fuse_skips(out, self.blocks, skips))


def unet(num_classes: int = 2, pretrained: Pretrained = True, aux: bool | None = None, binary_bce: bool = True,
         progress: ProgressCallback | None = None, base_channels: int = 64) -> SegModel:
    """The original U-Net (fresh weights; ``pretrained`` has no meaning here and is recorded as such)."""
    if aux:
        raise ValueError("unet has no auxiliary head")
    widths = tuple(base_channels * 2 ** i for i in range(5))
    bb = Backbone(UNetEncoder(widths), {}, None)
    options = {} if base_channels == 64 else {"base_channels": base_channels}
    model = assemble("unet", num_classes, bb, lambda out: UNetDecoder(widths, out), pretrained=False, aux=False,
                     binary_bce=binary_bce, progress=progress, options=options,
                     note="the original U-Net has no pretrained weights; every layer starts fresh")
    model.full_mode_only("fresh weights: a frozen random encoder would give useless cached features")
    model.encoder_bn_frozen = False
    return model


def unet_mobilenet_v2(num_classes: int = 2, pretrained: Pretrained = True, aux: bool | None = None,
                      binary_bce: bool = True, progress: ProgressCallback | None = None) -> SegModel:
    """U-Net decoder on the ImageNet MobileNetV2 encoder (OS32, a skip at every stride)."""
    if aux:
        raise ValueError("unet_mobilenet_v2 has no auxiliary head")
    bb = backbone("mobilenet_v2", 32, UNET_TAPS)
    return assemble("unet_mobilenet_v2", num_classes, bb, lambda out: SkipDecoder(bb.channels, out),
                    pretrained=pretrained, aux=False, binary_bce=binary_bce, progress=progress, options={},
                    note="U-Net decoder starts fresh; encoder.features from ImageNet")
