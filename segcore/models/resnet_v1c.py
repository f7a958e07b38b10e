"""ResNet-50 V1c encoder (the seed's backbone), from torchvision's ResNet/Bottleneck.

V1c = torchvision's ResNet-50 (stride on the 3×3 conv, "V1b") with the 7×7 stem replaced by a
deep stem: 3×3 conv 3→32 stride 2, 32→32, 32→64 (each BN+ReLU), then 3×3 max-pool stride 2.
Stages use strides (1, 2, 1, 1) and dilations (1, 1, 2, 4) with contract_dilation: the first
block of a dilated stage uses half the dilation (1 in stage 3, 2 in stage 4); padding = dilation.
Output stride 8.

torchvision's ``replace_stride_with_dilation=[False, True, True]`` already gives exactly this:
``ResNet._make_layer`` builds the first block of a dilated stage with the *previous* dilation
(1 for stage 3, 2 for stage 4) — that is contract_dilation. ``check_v1c_dilations`` asserts it,
so a torchvision change would fail loudly instead of silently changing the architecture.

Parameter names match torchvision's (``layer1.0.conv1.weight`` …) so its ImageNet weights load
by name; the stem is called ``stem`` and has no ImageNet counterpart (it starts fresh).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.resnet import Bottleneck, ResNet
from torchvision.ops.misc import Conv2dNormActivation

STAGE_CHANNELS: tuple[int, int, int, int] = (256, 512, 1024, 2048)
#: (stride of stage, dilation of its first block, dilation of its other blocks)
V1C_STAGE_LAYOUT: tuple[tuple[int, int, int], ...] = ((1, 1, 1), (2, 1, 1), (1, 1, 2), (1, 2, 4))


def deep_stem(stem_channels: int = 64) -> nn.Sequential:
    """3×3 conv 3→C/2 s2, C/2→C/2, C/2→C, each with BN+ReLU (no pooling)."""
    half = stem_channels // 2
    return nn.Sequential(
        Conv2dNormActivation(3, half, kernel_size=3, stride=2, bias=False),
        Conv2dNormActivation(half, half, kernel_size=3, bias=False),
        Conv2dNormActivation(half, stem_channels, kernel_size=3, bias=False),
    )


def check_v1c_dilations(layers: list[nn.Sequential]) -> None:
    """Raise AssertionError unless each stage's 3×3 convs follow ``V1C_STAGE_LAYOUT``."""
    for index, (stage, (stride, first, rest)) in enumerate(zip(layers, V1C_STAGE_LAYOUT), start=1):
        for b, block in enumerate(stage):
            conv: nn.Conv2d = block.conv2
            want_d = first if b == 0 else rest
            want_s = stride if b == 0 else 1
            got = (conv.stride[0], conv.dilation[0], conv.padding[0])
            if got != (want_s, want_d, want_d):
                raise AssertionError(
                    f"ResNet-V1c stage {index} block {b}: (stride, dilation, padding) = {got}, "
                    f"expected {(want_s, want_d, want_d)}"
                )


def resnet50_v1c_encoder() -> IntermediateLayerGetter:
    """The encoder; its forward returns ``{"stage1", "stage2", "aux" (stage 3), "out" (stage 4)}``."""
    net = ResNet(Bottleneck, [3, 4, 6, 3], replace_stride_with_dilation=[False, True, True])
    layers = [net.layer1, net.layer2, net.layer3, net.layer4]
    check_v1c_dilations(layers)
    body = nn.Sequential(
        OrderedDict(
            stem=deep_stem(64),
            maxpool=net.maxpool,
            layer1=net.layer1,
            layer2=net.layer2,
            layer3=net.layer3,
            layer4=net.layer4,
        )
    )
    return_layers = {"layer1": "stage1", "layer2": "stage2", "layer3": "aux", "layer4": "out"}
    return IntermediateLayerGetter(body, return_layers=return_layers)
