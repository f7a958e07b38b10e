"""Decoder heads: the seed's ASPP head and the auxiliary FCN head.

Built from torchvision's pieces (``ASPPConv``, ``ASPPPooling``, ``FCNHead``). The ASPP head
differs from torchvision's ``DeepLabHead`` on purpose, to match the seed exactly:
branches (1×1, three 3×3 atrous, image pooling), each ``channels`` wide with BN+ReLU →
concat (5·channels) → 3×3 conv to ``channels`` (BN+ReLU) → Dropout2d(0.1) → 1×1 to classes.
(torchvision projects the concat with a 1×1 conv and dropout 0.5 instead.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.models.segmentation.deeplabv3 import ASPPConv, ASPPPooling
from torchvision.models.segmentation.fcn import FCNHead
from torchvision.ops.misc import Conv2dNormActivation

__all__ = ["ASPPHead", "FCNHead", "aux_fcn_head"]


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
