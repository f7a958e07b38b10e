"""Inference-only variants of a SegModel for CPU speed. Each returns ``f(x) -> logits``.

All variants take a normalised (N, 3, H, W) float32 tensor of any H, W and return the main
logits (N, out_channels, H, W); they never modify the model they are given (they work on a
deep copy in eval mode).

* ``eager``           — the model as is (the baseline).
* ``channels_last``   — NHWC memory format (oneDNN's preferred layout for convolutions).
* ``fused``           — Conv+BN folded (``torch.nn.utils.fusion.fuse_conv_bn_eval``) + channels_last.
* ``torchscript``     — ``torch.jit.trace`` + ``torch.jit.freeze`` + ``optimize_for_inference``
                        (folds BN, pre-packs conv weights for oneDNN).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .base import LogitsOnly, SegModel

Runner = Callable[[Tensor], Tensor]
VARIANTS: tuple[str, ...] = ("eager", "channels_last", "fused", "torchscript")


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm2d that directly follows a Conv2d (in a Sequential, or as a
    ``convN``/``bnN`` pair like torchvision's Bottleneck) into the conv; BN becomes Identity.

    The model must be in eval mode; it is modified in place and returned.
    """
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            for a, b in zip(names, names[1:]):
                conv, bn = module._modules[a], module._modules[b]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    module._modules[a] = fuse_conv_bn_eval(conv, bn)
                    module._modules[b] = nn.Identity()
        for index in range(1, 4):
            conv, bn = getattr(module, f"conv{index}", None), getattr(module, f"bn{index}", None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, f"conv{index}", fuse_conv_bn_eval(conv, bn))
                setattr(module, f"bn{index}", nn.Identity())
    return model


def _eval_copy(model: SegModel) -> SegModel:
    clone = copy.deepcopy(model).eval()
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone


def make_runner(model: SegModel, variant: str = "torchscript", example_size: tuple[int, int] = (256, 256)) -> Runner:
    """A logits function for ``variant`` (one of ``VARIANTS``) on the model's current device."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown inference variant {variant!r}; choose from {VARIANTS}")
    net = _eval_copy(model)
    if variant == "eager":
        return lambda x: net(x)["out"]
    if variant in ("fused", "torchscript"):
        fuse_conv_bn(net)
    net = net.to(memory_format=torch.channels_last)
    wrapped = LogitsOnly(net).eval()
    if variant in ("channels_last", "fused"):
        return lambda x: wrapped(x.contiguous(memory_format=torch.channels_last))
    device = next(net.parameters()).device
    example = torch.zeros(1, 3, *example_size, device=device).contiguous(memory_format=torch.channels_last)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript deprecation / tracer notices
        with torch.inference_mode(False), torch.no_grad():
            traced = torch.jit.trace(wrapped, example, check_trace=False)
            frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))

    def run(x: Tensor) -> Tensor:
        return frozen(x.contiguous(memory_format=torch.channels_last))

    return run
