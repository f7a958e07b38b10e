"""Dilated MobileNetV2 encoder (torchvision's ``mobilenet_v2().features``) for DeepLabV3.

Conventions
-----------
* Uses ``features[0:18]`` (last inverted-residual block, 320 channels at the output stride);
  torchvision's final 1×1 conv to 1280 channels is dropped — it only serves the classifier and
  would make the ASPP 4× more expensive on CPU.
* Output stride (OS) 16 by default (training); 8 is available at inference with
  ``set_output_stride(8)``. Strides beyond the OS become dilations, DeepLab style: the block that
  would have downsampled keeps the previous rate and the rate doubles for the blocks after it
  (the same "contract dilation" rule as the ResNet). Only depthwise 3×3 convs change
  (stride/dilation/padding), so the same weights serve every OS.
* Forward returns ``{"low": features[3] output (24 ch, stride 4), "aux": features[13] output
  (96 ch, OS16 or 8), "out": 320 ch}`` by default; ``taps`` (block index → key) names other
  block outputs for decoders with more skips (U-Net, FCN: ``UNET_TAPS``).
* Parameter names are torchvision's (``features.N...``) so ImageNet weights load by name.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint
from torchvision.models import mobilenet_v2

LOW_INDEX = 3
LOW_CHANNELS = 24
AUX_INDEX = 13
LAST_INDEX = 17
AUX_CHANNELS = 96
OUT_CHANNELS = 320
#: the default taps (DeepLab): stride-4 skip and the aux head's input
DEEPLAB_TAPS: dict[int, str] = {LOW_INDEX: "low", AUX_INDEX: "aux"}
#: one skip per stride of a non-dilated (OS32) encoder: (index, channels) per key
UNET_TAPS: dict[int, str] = {1: "s2", LOW_INDEX: "s4", 6: "s8", AUX_INDEX: "s16"}
TAP_CHANNELS: dict[int, int] = {1: 16, LOW_INDEX: 24, 6: 32, AUX_INDEX: 96, LAST_INDEX: 320}
#: original stride of every block in features[0..17]
_ORIGINAL_STRIDES: tuple[int, ...] = (2, 1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1)


def _depthwise_conv(block: nn.Module) -> nn.Conv2d:
    """The 3×3 depthwise conv of an InvertedResidual block."""
    for module in block.modules():
        if isinstance(module, nn.Conv2d) and module.groups > 1 and module.kernel_size == (3, 3):
            return module
    raise AssertionError(f"no depthwise 3×3 conv in {type(block).__name__}")


def dilation_plan(output_stride: int) -> list[tuple[int, int]]:
    """(stride, dilation) for blocks 1..17 at the given output stride (8, 16 or 32)."""
    if output_stride not in (8, 16, 32):
        raise ValueError(f"MobileNetV2 output_stride must be 8, 16 or 32, got {output_stride}")
    current, rate = _ORIGINAL_STRIDES[0], 1
    plan: list[tuple[int, int]] = []
    for stride in _ORIGINAL_STRIDES[1:]:
        if current == output_stride:
            plan.append((1, rate))
            rate *= stride
        else:
            plan.append((stride, 1))
            current *= stride
    return plan


class MobileNetV2Encoder(nn.Module):
    """MobileNetV2 features with stride converted to dilation above ``output_stride``."""

    def __init__(self, output_stride: int = 16, taps: dict[int, str] | None = None) -> None:
        super().__init__()
        self.features = nn.Sequential(*list(mobilenet_v2(weights=None).features)[: LAST_INDEX + 1])
        self.taps: dict[int, str] = dict(DEEPLAB_TAPS if taps is None else taps)
        self.output_stride = 32
        self.set_output_stride(output_stride)

    def set_output_stride(self, output_stride: int) -> None:
        """Change the output stride in place (8, 16 or 32); weights are untouched."""
        for block, (stride, dilation) in zip(list(self.features)[1:], dilation_plan(output_stride), strict=True):
            conv = _depthwise_conv(block)
            conv.stride = (stride, stride)
            conv.dilation = (dilation, dilation)
            conv.padding = (dilation, dilation)
            if hasattr(block, "stride"):
                block.stride = stride
        self.output_stride = output_stride

    @property
    def num_blocks(self) -> int:
        return len(self.features)

    def max_tail_blocks(self) -> int:
        """Most trailing blocks ``forward_from`` can run (the first tapped skip comes before)."""
        return len(self.features) - (min(self.taps, default=LOW_INDEX) + 1)

    def tail_modules(self, tail_blocks: int) -> list[nn.Module]:
        """The last ``tail_blocks`` blocks (what fast mode trains on top of cached features)."""
        return list(self.features)[len(self.features) - tail_blocks:] if tail_blocks > 0 else []

    def forward_until(self, x: Tensor, tail_blocks: int) -> dict[str, Tensor]:
        """Run all but the last ``tail_blocks`` blocks → ``{"low", "aux"?, "mid"}`` (mid feeds the tail)."""
        return self._run(x, 0, len(self.features) - tail_blocks, "mid")

    def forward_from(self, features: dict[str, Tensor], tail_blocks: int,
                     recompute: bool = False) -> dict[str, Tensor]:
        """Run the last ``tail_blocks`` blocks on ``features["mid"]`` → the same dict as ``forward``.
        ``recompute`` (with autograd on): keep only each block's input for backward and run the
        block again there (torch.utils.checkpoint): the same gradients, less activation memory."""
        result = {k: v for k, v in features.items() if k != "mid"}
        result.update(self._run(features["mid"], len(self.features) - tail_blocks, len(self.features), "out",
                                recompute and torch.is_grad_enabled()))
        return result

    def _run(self, x: Tensor, start: int, stop: int, last_key: str, recompute: bool = False) -> dict[str, Tensor]:
        result: dict[str, Tensor] = {}
        for index in range(start, stop):
            block = self.features[index]
            x = checkpoint(block, x, use_reentrant=False) if recompute else block(x)
            key = self.taps.get(index)
            if key is not None:
                result[key] = x
        result[last_key] = x
        return result

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self._run(x, 0, len(self.features), "out")
