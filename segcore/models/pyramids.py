"""The SPP head, and SPEED's DSPP / MDSPP inside the SPEED encoder-decoder.

``spp`` — spatial pyramid pooling (He et al., ECCV 2014) as a segmentation head: adaptive
**max**-pooling of the last feature map to 1×1, 2×2 and 4×4 bins, each level a 1×1 conv
(BN+ReLU) upsampled back and concatenated with the features, then 3×3 conv 256 → dropout →
1×1 to classes (SPP-net's fixed-length pooled vector keeps no layout, so for dense output the
levels are spread back over the map, PSPNet style). On the ImageNet MobileNetV2 dilated to
OS16. Fast mode: yes.

``speed_dspp`` / ``speed_mdspp`` — SPEED (Papa et al., "SPEED: Separable Pyramidal Pooling
EncodEr-Decoder", 2021), built from the description in issue 12 (no reference code on this
machine; what follows is that reading):
* encoder: MobileNet-v1-style depthwise-separable convs (3×3 depthwise + 1×1 pointwise, each
  BN+ReLU): 32 s2 → 64 → 128 s2, 128 → 256 s2, 256 → 512 s2, 5 × 512 (stride 16) →
  pyramid → 256 s2 (stride 32). Input 192×256 → encoder output (6, 8, 256) (H, W, C);
* **DSPP** on the stride-16 map: four branches, each average pooling to 2, 4, 6, 8 bins →
  depthwise-separable conv to C/4 → bilinear resize to the input map; concatenated with the
  input: channels doubled ((12, 16, 512) → (12, 16, 1024));
* **MDSPP** ("mixed"): the same four pooled branches with a depthwise conv each; the even
  (bins 2, 6) and the odd (bins 4, 8) branches are concatenated in pairs, each pair with its
  own ReLU → 1×1 conv to C/2 (BN+ReLU); both pairs concatenated with the input (again 2C);
* decoder: three upsample stages (bilinear ×2, concat the encoder's skip at stride 16, 8, 4,
  depthwise-separable conv to 256, 128, 64), 1×1 to classes at stride 4, bilinear to the input.
Fresh weights (SPEED trains from scratch here): full mode only, encoder BatchNorm learns.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.ops.misc import Conv2dNormActivation

from ..weights import ProgressCallback
from . import backbones as _backbones
from ._assemble import assemble
from .backbones import Backbone
from .base import SegModel
from .heads import fuse_skips, pyramid_levels
from .deeplabv3 import Pretrained
from .pspnet import PSPHead

SPP_BINS: tuple[int, ...] = (1, 2, 4)
SPEED_BINS: tuple[int, ...] = (2, 4, 6, 8)


def ds_conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """Depthwise-separable conv: 3×3 depthwise (stride) + 1×1 pointwise, each BN+ReLU."""
    return nn.Sequential(
        Conv2dNormActivation(in_channels, in_channels, kernel_size=3, stride=stride, groups=in_channels,
                             bias=False),
        Conv2dNormActivation(in_channels, out_channels, kernel_size=1, bias=False))


class DSPP(nn.Module):
    """Depthwise-separable pyramid pooling: C → 2C channels at the same size."""

    def __init__(self, channels: int, bins: Sequence[int] = SPEED_BINS) -> None:
        super().__init__()
        width = channels // len(bins)
        self.branches = nn.ModuleList([nn.Sequential(nn.AdaptiveAvgPool2d(int(b)), ds_conv(channels, width))
                                       for b in bins])
        self.out_channels = channels + width * len(bins)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, *pyramid_levels(x, self.branches)], dim=1)


class MDSPP(nn.Module):
    """Mixed DSPP: pooled depthwise branches merged in even/odd pairs, each pair its own
    ReLU → 1×1 conv path; concatenated with the input (C → 2C)."""

    def __init__(self, channels: int, bins: Sequence[int] = SPEED_BINS) -> None:
        super().__init__()
        if len(bins) % 2:
            raise ValueError(f"MDSPP pairs its branches: an even number of bins is needed, got {tuple(bins)}")
        self.branches = nn.ModuleList([
            nn.Sequential(nn.AdaptiveAvgPool2d(int(b)),
                          nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
                          nn.BatchNorm2d(channels)) for b in bins])
        half = len(bins) // 2
        width = channels // 2
        self.pairs = nn.ModuleList([
            nn.Sequential(nn.ReLU(), Conv2dNormActivation(half * channels, width, kernel_size=1, bias=False))
            for _ in range(2)])
        self.out_channels = channels + 2 * width

    def forward(self, x: Tensor) -> Tensor:
        ups = pyramid_levels(x, self.branches)
        even, odd = torch.cat(ups[0::2], dim=1), torch.cat(ups[1::2], dim=1)
        return torch.cat([x, self.pairs[0](even), self.pairs[1](odd)], dim=1)


class SpeedEncoder(nn.Module):
    """Depthwise-separable encoder with the pyramid at stride 16 → ``{"s4", "s8", "s16", "out"}``."""

    def __init__(self, pyramid: str = "dspp") -> None:
        super().__init__()
        self.stem = nn.Sequential(Conv2dNormActivation(3, 32, kernel_size=3, stride=2, bias=False),
                                  ds_conv(32, 64))
        self.stage4 = nn.Sequential(ds_conv(64, 128, 2), ds_conv(128, 128))
        self.stage8 = nn.Sequential(ds_conv(128, 256, 2), ds_conv(256, 256))
        self.stage16 = nn.Sequential(ds_conv(256, 512, 2), *[ds_conv(512, 512) for _ in range(5)])
        self.pyramid = DSPP(512) if pyramid == "dspp" else MDSPP(512)
        self.reduce = ds_conv(self.pyramid.out_channels, 256, 2)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        s4 = self.stage4(self.stem(x))
        s8 = self.stage8(s4)
        s16 = self.stage16(s8)
        return {"s4": s4, "s8": s8, "s16": s16, "out": self.reduce(self.pyramid(s16))}


class SpeedDecoder(nn.Module):
    inputs = ("out", "s16", "s8", "s4")

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        self.stages = nn.ModuleList([ds_conv(256 + 512, 256), ds_conv(256 + 256, 128), ds_conv(128 + 128, 64)])
        self.classifier = nn.Conv2d(64, out_channels, kernel_size=1)

    def forward(self, out: Tensor, *skips: Tensor) -> Tensor:
        return self.classifier(fuse_skips(out, self.stages, skips))


def spp(num_classes: int = 2, pretrained: Pretrained = True, aux: bool | None = None, binary_bce: bool = True,
        progress: ProgressCallback | None = None, output_stride: int = 16) -> SegModel:
    """SPP head (adaptive max-pool bins 1/2/4) on the dilated ImageNet MobileNetV2."""
    if aux:
        raise ValueError("spp has no auxiliary head")
    bb = _backbones.backbone("mobilenet_v2", output_stride)
    return assemble("spp", num_classes, bb,
                    lambda out: PSPHead(bb.channels["out"], out, 256, bins=SPP_BINS, pool="max"),
                    pretrained=pretrained, aux=False, binary_bce=binary_bce, progress=progress,
                    options={"output_stride": output_stride},
                    note="SPP head starts fresh; encoder.features from ImageNet")


def _speed(pyramid: str, num_classes: int, binary_bce: bool, aux: bool | None,
           progress: ProgressCallback | None) -> SegModel:
    if aux:
        raise ValueError(f"speed_{pyramid} has no auxiliary head")
    model = assemble(f"speed_{pyramid}", num_classes, Backbone(SpeedEncoder(pyramid), {}, None), SpeedDecoder,
                     pretrained=False, aux=False, binary_bce=binary_bce, progress=progress, options={},
                     note="SPEED has no pretrained weights here; every layer starts fresh")
    model.full_mode_only("fresh weights: a frozen random encoder would give useless cached features")
    model.encoder_bn_frozen = False
    return model


def speed_dspp(num_classes: int = 2, pretrained: Pretrained = True, aux: bool | None = None, binary_bce: bool = True,
               progress: ProgressCallback | None = None) -> SegModel:
    """SPEED encoder-decoder with DSPP (fresh weights)."""
    return _speed("dspp", num_classes, binary_bce, aux, progress)


def speed_mdspp(num_classes: int = 2, pretrained: Pretrained = True, aux: bool | None = None,
                binary_bce: bool = True, progress: ProgressCallback | None = None) -> SegModel:
    """SPEED encoder-decoder with MDSPP (fresh weights)."""
    return _speed("mdspp", num_classes, binary_bce, aux, progress)
