"""FCN-32s / 16s / 8s (Long, Shelhamer & Darrell, CVPR 2015), one builder each.

The classifier is fully convolutional on the stride-32 features (``fc``: 3×3 conv + dropout
0.5, then a 1×1 ``score`` to classes). Upsampling is learned: transposed convolutions
initialised to bilinear interpolation (kernel 2f, stride f), and the skips are FCN's:
* 32s: score ×32 back to the input;
* 16s: score ×2 + ``score_s16`` (1×1 on the stride-16 features, zero-initialised), then ×16;
* 8s: that ×2 + ``score_s8`` (1×1 on the stride-8 features, zero-initialised), then ×8.
Each upsampled map is cropped at the top-left to the next skip's size (the paper's crop layer;
our convs pad, so no offset is needed), and the final map to the input (``crop_output``).
Differences from the paper: every upsampling layer learns (the paper fixes the last to
bilinear), the skip scores are not pre-scaled, and the stride-32 classifier is one 3×3 conv
(the paper's 7×7 fc6 + 1×1 fc7 at 4096 channels belong to VGG's classifier).

Backbone: the ImageNet MobileNetV2 at output stride 32 (not dilated: FCN upsamples instead),
skips from block 6 (stride 8, 32 ch) and block 13 (stride 16, 96 ch); ``backbone="vgg16"`` is
the paper's VGG-16 (pool3 / pool4 skips, torchvision's ImageNet weights when available).
Fast mode: yes (cached encoder features, the decoder and MobileNetV2's last blocks train).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.ops.misc import Conv2dNormActivation

from ..weights import ProgressCallback
from ._assemble import assemble
from .backbones import VGG_FCN_TAPS, backbone
from .base import SegModel
from .deeplabv3 import Pretrained
from .mobilenet import AUX_INDEX

MOBILENET_FCN_TAPS: dict[int, str] = {6: "s8", AUX_INDEX: "s16"}


def bilinear_kernel(channels: int, factor: int) -> Tensor:
    """(channels, 1, 2f, 2f) bilinear upsampling weights for a grouped ConvTranspose2d (FCN's init)."""
    size = 2 * factor
    center = factor - 0.5
    og = torch.arange(size, dtype=torch.float32)
    filt = 1 - torch.abs(og - center) / factor
    return (filt[:, None] * filt[None, :]).expand(channels, 1, size, size).clone()


class LearnedUpsample(nn.ConvTranspose2d):
    """×factor per-class upsampling (grouped transposed conv), initialised to bilinear."""

    def __init__(self, channels: int, factor: int) -> None:
        super().__init__(channels, channels, kernel_size=2 * factor, stride=factor, padding=factor // 2,
                         groups=channels, bias=False)
        with torch.no_grad():
            self.weight.copy_(bilinear_kernel(channels, factor))


def _crop(x: Tensor, like: Tensor) -> Tensor:
    return x[..., : like.shape[-2], : like.shape[-1]]


class FCNDecoder(nn.Module):
    """Stride-32 classifier + learned upsampling with 0, 1 or 2 skips (32s / 16s / 8s)."""

    crop_output = True

    def __init__(self, variant: str, channels: dict[str, int], out_channels: int, width: int = 512) -> None:
        super().__init__()
        if variant not in ("32s", "16s", "8s"):
            raise ValueError(f"FCN variant must be 32s, 16s or 8s, got {variant!r}")
        self.variant = variant
        self.inputs = {"32s": ("out",), "16s": ("out", "s16"), "8s": ("out", "s16", "s8")}[variant]
        self.fc = nn.Sequential(Conv2dNormActivation(channels["out"], width, kernel_size=3, bias=False),
                                nn.Dropout2d(0.5))
        self.score = nn.Conv2d(width, out_channels, kernel_size=1)
        final = {"32s": 32, "16s": 16, "8s": 8}[variant]
        if variant in ("16s", "8s"):
            self.score_s16 = self._zero_score(channels["s16"], out_channels)
            self.up2_s32 = LearnedUpsample(out_channels, 2)
        if variant == "8s":
            self.score_s8 = self._zero_score(channels["s8"], out_channels)
            self.up2_s16 = LearnedUpsample(out_channels, 2)
        self.up_final = LearnedUpsample(out_channels, final)

    @staticmethod
    def _zero_score(in_channels: int, out_channels: int) -> nn.Conv2d:
        conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)
        return conv

    def forward(self, out: Tensor, s16: Tensor | None = None, s8: Tensor | None = None) -> Tensor:
        x = self.score(self.fc(out))
        if s16 is not None:
            skip = self.score_s16(s16)
            x = _crop(self.up2_s32(x), skip) + skip
        if s8 is not None:
            skip = self.score_s8(s8)
            x = _crop(self.up2_s16(x), skip) + skip
        return self.up_final(x)


def _fcn(variant: str, num_classes: int, pretrained: Pretrained, aux: bool | None, binary_bce: bool,
         progress: ProgressCallback | None, backbone_name: str) -> SegModel:
    taps = VGG_FCN_TAPS if backbone_name == "vgg16" else MOBILENET_FCN_TAPS
    bb = backbone(backbone_name, 32, taps)
    options = {} if backbone_name == "mobilenet_v2" else {"backbone": backbone_name}
    return assemble(f"fcn{variant}", num_classes, bb, lambda out: FCNDecoder(variant, bb.channels, out),
                    pretrained=pretrained, aux=False, binary_bce=binary_bce, progress=progress,
                    options=options, note=f"FCN-{variant} classifier and upsampling start fresh; "
                                          f"encoder from ImageNet ({backbone_name})")


def fcn32s(num_classes: int = 2, pretrained: Pretrained = True, aux: bool | None = None, binary_bce: bool = True,
           progress: ProgressCallback | None = None, backbone: str = "mobilenet_v2") -> SegModel:
    """FCN-32s: stride-32 scores, one learned ×32 upsampling."""
    return _fcn("32s", num_classes, pretrained, aux, binary_bce, progress, backbone)


def fcn16s(num_classes: int = 2, pretrained: Pretrained = True, aux: bool | None = None, binary_bce: bool = True,
           progress: ProgressCallback | None = None, backbone: str = "mobilenet_v2") -> SegModel:
    """FCN-16s: + the stride-16 skip."""
    return _fcn("16s", num_classes, pretrained, aux, binary_bce, progress, backbone)


def fcn8s(num_classes: int = 2, pretrained: Pretrained = True, aux: bool | None = None, binary_bce: bool = True,
          progress: ProgressCallback | None = None, backbone: str = "mobilenet_v2") -> SegModel:
    """FCN-8s: + the stride-16 and stride-8 skips."""
    return _fcn("8s", num_classes, pretrained, aux, binary_bce, progress, backbone)
