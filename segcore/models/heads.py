"""Decoder heads: the seed's ASPP head and the auxiliary FCN head, and the two steps the other
decoders share: pyramid pooling levels (``pyramid_levels``: PSPNet, SPP, SPEED's DSPP / MDSPP)
and skip fusion (``fuse_skips``: SPEED's and the MobileNetV2 U-Net's decoders).

Built from torchvision's pieces (``ASPPConv``, ``ASPPPooling``, ``FCNHead``). The ASPP head
differs from torchvision's ``DeepLabHead`` on purpose, to match the seed exactly:
branches (1×1, three 3×3 atrous, image pooling), each ``channels`` wide with BN+ReLU →
concat (5·channels) → 3×3 conv to ``channels`` (BN+ReLU) → Dropout2d(0.1) → 1×1 to classes.
(torchvision projects the concat with a 1×1 conv and dropout 0.5 instead.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.segmentation.deeplabv3 import ASPP, ASPPConv, ASPPPooling
from torchvision.models.segmentation.fcn import FCNHead
from torchvision.ops.misc import Conv2dNormActivation

__all__ = ["ASPPHead", "FCNHead", "LightPlusHead", "aux_fcn_head", "fuse_skips", "pyramid_levels"]


def pyramid_levels(x: Tensor, levels: Iterable[nn.Module]) -> list[Tensor]:
    """Each level (a pooling to a few bins, then convs) applied to ``x`` and bilinearly resized
    back to x's size: what a pyramid pooling module concatenates."""
    size = x.shape[-2:]
    return [F.interpolate(level(x), size=size, mode="bilinear", align_corners=False) for level in levels]


def fuse_skips(x: Tensor, blocks: Iterable[nn.Module], skips: Iterable[Tensor]) -> Tensor:
    """Decoder stages: per (block, skip), ``x`` bilinearly resized to the skip, concatenated
    with it (x first), through the block."""
    for block, skip in zip(blocks, skips):
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        x = block(torch.cat([x, skip], dim=1))
    return x


class ASPPHead(nn.Module):
    """Atrous spatial pyramid pooling + 3×3 fuse + dropout + 1×1 classifier (logits at feature size)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        channels: int = 512,
        rates: Sequence[int] = (12, 24, 36),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if len(rates) != 3:
            raise ValueError(f"ASPPHead needs three atrous rates, got {tuple(rates)}")
        branches: list[nn.Module] = [
            Conv2dNormActivation(in_channels, channels, kernel_size=1, bias=False)
        ]
        branches += [ASPPConv(in_channels, channels, int(r)) for r in rates]
        branches.append(ASPPPooling(in_channels, channels))
        self.branches = nn.ModuleList(branches)
        self.bottleneck = Conv2dNormActivation(len(branches) * channels, channels, kernel_size=3, bias=False)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, out_channels, kernel_size=1)

    @property
    def rates(self) -> tuple[int, ...]:
        """Current atrous rates of the three 3×3 branches."""
        return tuple(int(branch[0].dilation[0]) for branch in self.branches[1:4])

    def set_rates(self, rates: Sequence[int]) -> None:
        """Change the atrous rates in place (weights unchanged; used when the output stride changes)."""
        for branch, rate in zip(self.branches[1:4], rates, strict=True):
            conv: nn.Conv2d = branch[0]
            conv.dilation = (int(rate), int(rate))
            conv.padding = (int(rate), int(rate))

    def forward(self, x: Tensor) -> Tensor:
        x = torch.cat([branch(x) for branch in self.branches], dim=1)
        return self.classifier(self.dropout(self.bottleneck(x)))


def aux_fcn_head(in_channels: int, out_channels: int) -> nn.Module:
    """torchvision's FCNHead: 3×3 conv to in/4 (BN+ReLU) → dropout 0.1 → 1×1 to classes."""
    return FCNHead(in_channels, out_channels)


class LightPlusHead(nn.Module):
    """DeepLabV3+ decoder (Chen et al. 2018), slimmed for CPU fine-tuning.

    torchvision's ASPP (1×1, three 3×3 atrous, image pooling → 1×1 projection) at ``channels``
    on the last stage → bilinear up to the stride-4 features → concat with a 1×1 projection of
    those (``low_proj`` ch) → two depthwise-separable 3×3 convs (``channels``) → 1×1 classifier.
    The stride-4 skip restores the boundaries that an OS16 map (20×20 at 320 px) cannot draw;
    depthwise-separable convs keep the stride-4 work small (the paper's decoder uses dense 3×3).
    ``forward(high, low)`` returns logits at the stride-4 size.
    """

    uses_low_level = True

    def __init__(self, in_channels: int, low_channels: int, out_channels: int, channels: int = 128,
                 low_proj: int = 48, rates: Sequence[int] = (6, 12, 18)) -> None:
        super().__init__()
        self.aspp = ASPP(in_channels, list(rates), channels)
        self.low = Conv2dNormActivation(low_channels, low_proj, kernel_size=1, bias=False)
        width = channels + low_proj
        self.fuse = nn.Sequential(
            Conv2dNormActivation(width, width, kernel_size=3, groups=width, bias=False),
            Conv2dNormActivation(width, channels, kernel_size=1, bias=False),
            Conv2dNormActivation(channels, channels, kernel_size=3, groups=channels, bias=False),
            Conv2dNormActivation(channels, channels, kernel_size=1, bias=False),
        )
        self.classifier = nn.Conv2d(channels, out_channels, kernel_size=1)

    @property
    def rates(self) -> tuple[int, ...]:
        return tuple(int(self.aspp.convs[i][0].dilation[0]) for i in range(1, 4))

    def set_rates(self, rates: Sequence[int]) -> None:
        for i, rate in zip(range(1, 4), rates, strict=True):
            conv: nn.Conv2d = self.aspp.convs[i][0]
            conv.dilation = (int(rate), int(rate))
            conv.padding = (int(rate), int(rate))

    def forward(self, high: Tensor, low: Tensor) -> Tensor:
        x = self.aspp(high)
        x = nn.functional.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.classifier(self.fuse(torch.cat([x, self.low(low)], dim=1)))
