"""PSPNet (Zhao et al., CVPR 2017): pyramid pooling on a dilated backbone, with the auxiliary loss.

Pyramid pooling module: adaptive average pooling to 1×1, 2×2, 3×3 and 6×6 bins; each level a
1×1 conv to in/4 channels (BN+ReLU), bilinearly upsampled back; concatenated with the input
features (2× the channels) → 3×3 conv (``channels``, BN+ReLU) → dropout 0.1 → 1×1 to classes.

Backbone: the ImageNet MobileNetV2 dilated to output stride 8 (the paper's OS); the paper's
ResNet through ``backbone="resnet50"`` / ``"resnet101"`` (torchvision's ImageNet weights when
available). Auxiliary loss (paper weight 0.4): an FCN head on the stride-8 block-13 features
(ResNet: layer3), built by default (``aux=True``). In training mode ``forward`` returns it as
``"aux"``; the Trainer's full mode adds ``TrainConfig.aux_weight`` (0.4) × its loss. Fast mode
trains the main head on cached features (the aux head sits on the encoder, which is frozen
there, so it does not train). Eval mode returns only ``"out"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.ops.misc import Conv2dNormActivation

from ..weights import ProgressCallback
from ._assemble import assemble, check_aux
from . import backbones as _backbones
from .base import SegModel
from .heads import pyramid_levels
from .deeplabv3 import Pretrained

PSP_BINS: tuple[int, ...] = (1, 2, 3, 6)


class PyramidPooling(nn.Module):
    """PSPNet's pyramid pooling module (output: in_channels + len(bins) × in/len(bins) channels)."""

    def __init__(self, in_channels: int, bins: Sequence[int] = PSP_BINS, pool: str = "avg") -> None:
        super().__init__()
        width = in_channels // len(bins)
        make = nn.AdaptiveAvgPool2d if pool == "avg" else nn.AdaptiveMaxPool2d
        self.levels = nn.ModuleList([
            nn.Sequential(make(int(b)), Conv2dNormActivation(in_channels, width, kernel_size=1, bias=False))
            for b in bins])
        self.out_channels = in_channels + width * len(bins)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, *pyramid_levels(x, self.levels)], dim=1)


class PSPHead(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, channels: int = 256,
                 bins: Sequence[int] = PSP_BINS, pool: str = "avg") -> None:
        super().__init__()
        self.ppm = PyramidPooling(in_channels, bins, pool)
        self.bottleneck = Conv2dNormActivation(self.ppm.out_channels, channels, kernel_size=3, bias=False)
        self.dropout = nn.Dropout2d(0.1)
        self.classifier = nn.Conv2d(channels, out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.bottleneck(self.ppm(x))))


def pspnet(num_classes: int = 2, pretrained: Pretrained = True, aux: bool | None = None, binary_bce: bool = True,
           progress: ProgressCallback | None = None, backbone: str = "mobilenet_v2",
           output_stride: int = 8) -> SegModel:
    """PSPNet on the dilated MobileNetV2 (OS8; head 256 ch) or the paper's ResNet (head 512 ch)."""
    bb = _backbones.backbone(backbone, output_stride)
    channels = 256 if backbone == "mobilenet_v2" else 512
    options: dict = {"output_stride": output_stride}
    if backbone != "mobilenet_v2":
        options["backbone"] = backbone
    return assemble("pspnet", num_classes, bb, lambda out: PSPHead(bb.channels["out"], out, channels),
                    pretrained=pretrained, aux=check_aux("pspnet", aux, default=True), binary_bce=binary_bce,
                    progress=progress, options=options,
                    note=f"pyramid pooling head and aux head start fresh; encoder from ImageNet ({backbone})")
