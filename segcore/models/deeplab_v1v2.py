"""DeepLab v1 LargeFOV (Chen et al., ICLR 2015) and DeepLab v2 ASPP (Chen et al., TPAMI 2017).

``deeplabv1_largefov`` — dilated backbone (output stride 8) + the LargeFOV head: fc6 = 3×3 conv
with dilation 12 (1024 ch), ReLU, dropout 0.5; fc7 = 1×1 (1024), ReLU, dropout 0.5; fc8 = 1×1
to classes. No BatchNorm in the head (as the paper). Meant to be refined with DenseCRF (the
app's CRF toggle; the fine-tune decides it on the held-out images like for every model).

``deeplabv2`` — ASPP with **summed** branches: four 3×3 convs at dilation 6, 12, 18, 24 (OS8)
straight to class scores (the paper's ResNet-101 variant), added together.
``branch_channels > 0`` gives the paper's VGG "ASPP-L" branches instead (3×3 dilated → fc7 1×1
→ fc8 1×1, each ``branch_channels`` wide, ReLU + dropout 0.5). ``multiscale=(1.0, 0.75, 0.5)``
is the paper's multi-scale input fusion (MSC): the model runs on each rescaled input and takes
the per-pixel max of the logits (upsampled to the input); only the fused output is supervised
(the paper also adds each scale's loss). MSC trains in full mode only (the cache is one scale).

Backbone: the ImageNet MobileNetV2 dilated to OS8; the paper's through ``backbone="vgg16"``
(v1: VGG-16 with pool4/pool5 at stride 1 and dilated conv5) or ``"resnet101"`` / ``"resnet50"``
(v2). Fast mode: yes (except with ``multiscale``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..weights import ProgressCallback
from . import backbones as _backbones
from ._assemble import assemble
from .base import SegModel
from .deeplabv3 import Pretrained

V2_RATES: tuple[int, ...] = (6, 12, 18, 24)


class LargeFOVHead(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, channels: int = 1024, rate: int = 12) -> None:
        super().__init__()
        self.fc6 = nn.Conv2d(in_channels, channels, kernel_size=3, padding=rate, dilation=rate)
        self.fc7 = nn.Conv2d(channels, channels, kernel_size=1)
        self.fc8 = nn.Conv2d(channels, out_channels, kernel_size=1)
        self.dropout = nn.Dropout2d(0.5)

    def forward(self, x: Tensor) -> Tensor:
        x = self.dropout(F.relu(self.fc6(x)))
        x = self.dropout(F.relu(self.fc7(x)))
        return self.fc8(x)


class SummedASPP(nn.Module):
    """DeepLab v2's ASPP: parallel dilated branches whose class scores are summed."""

    def __init__(self, in_channels: int, out_channels: int, rates: Sequence[int] = V2_RATES,
                 branch_channels: int = 0) -> None:
        super().__init__()
        branches: list[nn.Module] = []
        for r in rates:
            if branch_channels <= 0:
                conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=int(r), dilation=int(r))
                nn.init.normal_(conv.weight, std=0.01)
                nn.init.zeros_(conv.bias)
                branches.append(conv)
            else:
                branches.append(nn.Sequential(
                    nn.Conv2d(in_channels, branch_channels, 3, padding=int(r), dilation=int(r)), nn.ReLU(),
                    nn.Dropout2d(0.5), nn.Conv2d(branch_channels, branch_channels, 1), nn.ReLU(),
                    nn.Dropout2d(0.5), nn.Conv2d(branch_channels, out_channels, 1)))
        self.branches = nn.ModuleList(branches)

    def forward(self, x: Tensor) -> Tensor:
        out = self.branches[0](x)
        for branch in self.branches[1:]:
            out = out + branch(x)
        return out


class MultiScaleSegModel(SegModel):
    """SegModel with DeepLab v2's multi-scale input fusion (``options["multiscale"]``)."""

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        scales = tuple(self.options.get("multiscale") or ())
        if not scales:
            return super().forward(x)
        size = x.shape[-2:]
        fused = None
        for s in scales:
            xs = x if s == 1.0 else F.interpolate(x, scale_factor=float(s), mode="bilinear",
                                                  align_corners=False, recompute_scale_factor=False)
            logits = self.forward_head(self.forward_features(xs), xs.shape[-2:])
            if logits.shape[-2:] != size:
                logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
            fused = logits if fused is None else torch.maximum(fused, logits)
        assert fused is not None  # scales is not empty
        return {"out": fused}


def _backbone_options(name: str, default: str) -> dict:
    return {} if name == default else {"backbone": name}


def deeplabv1_largefov(num_classes: int = 2, pretrained: Pretrained = True, aux: bool | None = None,
                       binary_bce: bool = True, progress: ProgressCallback | None = None,
                       backbone: str = "mobilenet_v2", channels: int = 1024) -> SegModel:
    """DeepLab v1 LargeFOV: OS8 dilated backbone + fc6 (3×3, dilation 12) / fc7 / fc8."""
    if aux:
        raise ValueError("deeplabv1_largefov has no auxiliary head")
    if backbone not in ("mobilenet_v2", "vgg16"):
        raise ValueError(f"deeplabv1_largefov backbone must be mobilenet_v2 or vgg16, got {backbone!r}")
    bb = _backbones.backbone(backbone, 8)
    options = _backbone_options(backbone, "mobilenet_v2")
    if channels != 1024:
        options["channels"] = channels
    return assemble("deeplabv1_largefov", num_classes, bb,
                    lambda out: LargeFOVHead(bb.channels["out"], out, channels),
                    pretrained=pretrained, aux=False, binary_bce=binary_bce, progress=progress, options=options,
                    note=f"LargeFOV head starts fresh; encoder from ImageNet ({backbone})")


def deeplabv2(num_classes: int = 2, pretrained: Pretrained = True, aux: bool | None = None, binary_bce: bool = True,
              progress: ProgressCallback | None = None, backbone: str = "mobilenet_v2",
              branch_channels: int = 0, multiscale: Sequence[float] | None = None) -> SegModel:
    """DeepLab v2: OS8 dilated backbone + summed ASPP at 6/12/18/24 (+ optional MSC)."""
    if aux:
        raise ValueError("deeplabv2 has no auxiliary head")
    if backbone not in ("mobilenet_v2", "resnet50", "resnet101"):
        raise ValueError(f"deeplabv2 backbone must be mobilenet_v2, resnet50 or resnet101, got {backbone!r}")
    bb = _backbones.backbone(backbone, 8)
    options = _backbone_options(backbone, "mobilenet_v2")
    if branch_channels:
        options["branch_channels"] = int(branch_channels)
    if multiscale:
        scales = [float(s) for s in multiscale]
        if 1.0 not in scales or any(s <= 0 for s in scales):
            raise ValueError(f"deeplabv2 multiscale must include 1.0 and be positive, got {scales}")
        options["multiscale"] = scales
    model = assemble("deeplabv2", num_classes, bb,
                     lambda out: SummedASPP(bb.channels["out"], out, V2_RATES, branch_channels),
                     pretrained=pretrained, aux=False, binary_bce=binary_bce, progress=progress, options=options,
                     note=f"summed ASPP starts fresh; encoder from ImageNet ({backbone})", cls=MultiScaleSegModel)
    if multiscale:
        model.full_mode_only("multi-scale input fusion runs the encoder at several scales; "
                             "the feature cache holds one")
    return model
