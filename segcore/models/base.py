"""SegModel: the one model interface every architecture in the registry implements.

Conventions
-----------
* Input: float tensor (N, 3, H, W), RGB, normalised with ``mean``/``std`` (ImageNet, 0..1 scale).
* ``forward(x)`` returns ``{"out": logits}`` at the input's H×W (bilinear, align_corners=False);
  in training mode with an auxiliary head it also returns ``"aux"`` (same size).
* Logits have ``out_channels`` channels: 1 for binary tasks trained with BCE (the seed's choice,
  ``num_classes == 2 and binary_bce``), else ``num_classes`` (softmax / CE).
  ``logits_to_probs`` turns either form into (N, num_classes, H, W) probabilities.
* ``forward_features`` runs the encoder only and returns ``{"out": last stage, "aux": stage 3}``;
  ``forward_head(features, size)`` runs the decoder on them. Training can cache features once
  (backbone frozen) and train only the head.
* ``meta`` holds how the model was initialised (weights source, which layers were loaded,
  which started fresh). It is JSON-able and meant to go into checkpoint metadata.
* The decoder names the encoder outputs it reads in ``decoder.inputs`` (default ``("out",)``,
  or ``("out", "low")`` for a decoder with ``uses_low_level``); it is called with those tensors
  in that order. A decoder whose logits come out larger than the input (FCN's learned
  upsampling, SegNet's padded unpooling) sets ``crop_output = True``: ``forward_head`` crops
  them at the top-left instead of resizing.
* Training modes: ``fast_mode_ok`` (False → ``fast_mode_reason``) says whether fast mode
  (frozen encoder, cached features) makes sense; the Trainer trains a model that says no in
  full mode only. ``freeze_encoder_bn()`` is what full mode freezes of the encoder: its
  BatchNorm layers when the encoder starts from pretrained statistics (``encoder_bn_frozen``),
  nothing for a fresh-weight encoder (its statistics must be learned). ``freeze_encoder(n)`` is
  fast mode's: everything but the decoder and the encoder's last ``n`` blocks.
  ``fast_crop_ok`` (default False) lets fast mode train on feature-space crops
  (``TrainConfig.fast_crop``): set only where measured, because a decoder with global pooling
  or wide dilations sees a different context in a crop (DeepLabV3's ASPP head collapsed to
  IoU 0.00 on 4-cell crops of 128-px views, where whole views reached 0.48).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def freeze_bn(module: nn.Module) -> None:
    """BatchNorm layers of ``module``: eval mode (running stats fixed) and affine params frozen."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
            for p in m.parameters(recurse=False):
                p.requires_grad_(False)


def global_pool_norms(module: nn.Module) -> list[nn.Module]:
    """The BatchNorm layers of ``module`` that normalise a globally pooled vector: those inside an
    ``nn.Sequential`` that starts with an adaptive pooling to 1×1 (torchvision's ``ASPPPooling``,
    a pyramid's 1-bin level). In training such a layer's statistics come from one value per
    channel per sample of a chunk (4 with ``micro_batch`` 4), so its output depends on which views
    share the chunk; :func:`freeze_bn` on them is ``TrainConfig.freeze_pool_bn``."""
    found: list[nn.Module] = []
    for m in module.modules():
        if not isinstance(m, nn.Sequential) or len(m) == 0:
            continue
        first = m[0]
        if isinstance(first, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and \
                first.output_size in (1, (1, 1)):
            found += [b for b in m.modules() if isinstance(b, nn.modules.batchnorm._BatchNorm)]
    return found


@contextlib.contextmanager
def frozen_bn_as_affine(module: nn.Module) -> Iterator[int]:
    """Within the block, every frozen ``BatchNorm2d`` of ``module`` (eval mode, no parameter
    that requires grad: what :func:`freeze_bn` leaves) is replaced by torchvision's
    ``FrozenBatchNorm2d`` with the same statistics and affine values; the originals are put
    back on exit. Yields how many were replaced.

    Outputs and gradients are those of the frozen BatchNorm (an eval-mode BatchNorm is the
    affine map x * scale + shift). The point is memory: autograd keeps a frozen
    ``BatchNorm2d``'s input for its backward, the affine map only its per-channel scale. In
    fast mode's trainable tail blocks and full mode's pretrained encoder, where the BatchNorm
    is frozen, that input is a third of the activations a training step holds (MobileNetV2:
    conv → BN → ReLU6 saves the conv's input, the BN's input and the ReLU6's input).

    Swap before wrapping the model (DDP registers modules at wrap time) and keep no
    ``state_dict`` taken inside the block: its BatchNorm keys differ
    (no ``num_batches_tracked``).
    """
    from torchvision.ops.misc import FrozenBatchNorm2d

    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if (type(child) is not nn.BatchNorm2d or child.training or not child.affine
                    or child.running_mean is None or child.running_var is None
                    or any(p.requires_grad for p in child.parameters(recurse=False))):
                continue
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps).to(
                device=child.weight.device, dtype=child.weight.dtype)
            with torch.no_grad():
                frozen.weight.copy_(child.weight)
                frozen.bias.copy_(child.bias)
                frozen.running_mean.copy_(child.running_mean)
                frozen.running_var.copy_(child.running_var)
            setattr(parent, name, frozen)
            swapped.append((parent, name, child))
    try:
        yield len(swapped)
    finally:
        for parent, name, child in reversed(swapped):
            setattr(parent, name, child)


def logits_to_probs(logits: Tensor) -> Tensor:
    """(N, out_channels, H, W) logits → (N, num_classes, H, W) probabilities.

    One channel means binary BCE: probabilities are ``[1 - σ(z), σ(z)]`` (background, foreground).
    More channels: softmax over the channel axis.
    """
    if logits.ndim != 4:
        raise ValueError(f"logits_to_probs expects (N, C, H, W), got shape {tuple(logits.shape)}")
    if logits.shape[1] == 1:
        fg = torch.sigmoid(logits)
        return torch.cat([1.0 - fg, fg], dim=1)
    return torch.softmax(logits, dim=1)


class SegModel(nn.Module):
    """Encoder → decoder (→ optional auxiliary head), with the metadata to rebuild it.

    Attributes: arch, num_classes, binary_bce, out_channels, mean, std, encoder, decoder,
    aux_head (None unless built with ``aux=True``), options (architecture options that
    ``config()`` records), meta (initialisation record, JSON-able).
    """

    def __init__(
        self,
        arch: str,
        num_classes: int,
        encoder: nn.Module,
        decoder: nn.Module,
        aux_head: nn.Module | None = None,
        binary_bce: bool = True,
        options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"{arch}: num_classes must be >= 2 (background counts), got {num_classes}")
        self.arch = arch
        self.num_classes = int(num_classes)
        self.binary_bce = bool(binary_bce)
        self.out_channels = 1 if (self.num_classes == 2 and self.binary_bce) else self.num_classes
        self.mean = IMAGENET_MEAN
        self.std = IMAGENET_STD
        self.encoder = encoder
        self.decoder = decoder
        self.aux_head = aux_head
        self.options: dict[str, Any] = dict(options or {})
        self.meta: dict[str, Any] = {}
        self.fast_mode_ok = True
        self.fast_mode_reason = ""
        self.fast_crop_ok = False  # fast mode may train on feature-space crops (measured per arch)
        self.encoder_bn_frozen = True

    def full_mode_only(self, reason: str) -> None:
        """Declare that this model trains in full mode only (the Trainer honours it), and why."""
        self.fast_mode_ok = False
        self.fast_mode_reason = reason

    def freeze_encoder_bn(self) -> None:
        """Full mode: BatchNorm of a pretrained encoder to eval mode with frozen affine
        parameters (statistics stay as pretrained); nothing when the encoder is fresh."""
        if self.encoder_bn_frozen:
            freeze_bn(self.encoder)

    def freeze_encoder(self, tail_blocks: int = 0) -> list[nn.Module]:
        """Fast mode: only the decoder and the encoder's last ``tail_blocks`` blocks train (the
        aux head, which reads the frozen encoder, does not); the BatchNorm of those tail blocks
        stays as pretrained. Returns the tail blocks (``tail_modules``)."""
        tail = self.tail_modules(tail_blocks)
        for p in self.parameters():
            p.requires_grad_(False)
        for p in self.decoder.parameters():
            p.requires_grad_(True)
        for m in tail:
            for p in m.parameters():
                p.requires_grad_(True)
            freeze_bn(m)
        return tail

    @property
    def decoder_inputs(self) -> tuple[str, ...]:
        """The encoder outputs the decoder reads, in call order."""
        keys = getattr(self.decoder, "inputs", None)
        if keys:
            return tuple(keys)
        return ("out", "low") if self.uses_low_level else ("out",)

    def forward_features(self, x: Tensor) -> dict[str, Tensor]:
        """Encoder only: the decoder's inputs (``decoder_inputs``: ``"out"`` = last stage, plus
        e.g. ``"low"`` = stride-4 features for DeepLabV3+) and ``"aux"`` (the aux head's input)
        when the encoder has it."""
        stages = self.encoder(x)
        keys = self.decoder_inputs
        if "aux" in stages and "aux" not in keys:
            keys = keys + ("aux",)
        return {k: stages[k] for k in keys}

    def max_tail_blocks(self) -> int:
        """How many trailing encoder blocks fast mode can train on cached features (0 = none)."""
        fn = getattr(self.encoder, "max_tail_blocks", None)
        return int(fn()) if callable(fn) else 0

    def cached_features(self, x: Tensor, tail_blocks: int = 0) -> dict[str, Tensor]:
        """What fast mode caches: ``forward_features`` (tail_blocks = 0) or the encoder stopped
        ``tail_blocks`` blocks before its end (``{"low", "mid", ...}``)."""
        if tail_blocks <= 0:
            return self.forward_features(x)
        return self.encoder.forward_until(x, tail_blocks)

    def head_from_cache(self, features: dict[str, Tensor], size: tuple[int, int] | torch.Size,
                        tail_blocks: int = 0, recompute_tail: bool = False) -> Tensor:
        """Logits from ``cached_features`` output: the encoder's tail (if any), then the decoder.
        ``recompute_tail``: the tail keeps only its blocks' inputs for backward (see the encoder's
        ``forward_from``)."""
        if tail_blocks > 0:
            features = self.encoder.forward_from(features, tail_blocks, recompute=recompute_tail)
        return self.forward_head(features, size)

    def tail_modules(self, tail_blocks: int) -> list[nn.Module]:
        return self.encoder.tail_modules(tail_blocks) if tail_blocks > 0 else []

    @property
    def uses_low_level(self) -> bool:
        return bool(getattr(self.decoder, "uses_low_level", False))

    def forward_head(self, features: dict[str, Tensor], size: tuple[int, int] | torch.Size) -> Tensor:
        """Decoder on ``features[k] for k in decoder_inputs``; logits bilinearly resized to
        ``size`` (cropped at the top-left instead when the decoder has ``crop_output``)."""
        logits = self.decoder(*[features[k] for k in self.decoder_inputs])
        size = (int(size[0]), int(size[1]))
        if getattr(self.decoder, "crop_output", False) and logits.shape[-2] >= size[0] \
                and logits.shape[-1] >= size[1]:
            return logits[..., : size[0], : size[1]]
        if tuple(logits.shape[-2:]) == size:
            return logits
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        size = x.shape[-2:]
        features = self.forward_features(x)
        result = {"out": self.forward_head(features, size)}
        if self.training and self.aux_head is not None:
            aux = self.aux_head(features["aux"])
            result["aux"] = F.interpolate(aux, size=size, mode="bilinear", align_corners=False)
        return result

    def config(self) -> dict[str, Any]:
        """Everything ``segcore.models.build(**config, pretrained=False)`` needs to rebuild this model.

        Keys: name (= arch), num_classes, aux, binary_bce, plus architecture options
        (e.g. output_stride). ``segcore.models.from_config(cfg)`` does the same.
        """
        return {
            "name": self.arch,
            "num_classes": self.num_classes,
            "aux": self.aux_head is not None,
            "binary_bce": self.binary_bce,
            **self.options,
        }


class LogitsOnly(nn.Module):
    """Wraps a SegModel so it returns the main logits tensor (for tracing / export)."""

    def __init__(self, model: SegModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)["out"]


def load_matching(module: nn.Module, state_dict: dict[str, Tensor], prefix: str = "") -> dict[str, Any]:
    """Copy every tensor of ``state_dict`` whose name (after ``prefix``) and shape match.

    Returns a JSON-able record: ``loaded`` (count), ``loaded_modules`` / ``fresh_modules``
    (top-level child names fully loaded / left at their fresh initialisation; a partly loaded
    child is listed in ``partial_modules``) and ``unused`` (count of source tensors not used).
    """
    own = module.state_dict()
    update: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        name = prefix + key
        if name in own and tuple(own[name].shape) == tuple(value.shape):
            update[name] = value
    module.load_state_dict(update, strict=False)
    groups: dict[str, list[bool]] = {}
    for name in own:
        groups.setdefault(name.split(".")[0], []).append(name in update)
    return {
        "loaded": len(update),
        "loaded_modules": sorted(g for g, flags in groups.items() if all(flags)),
        "partial_modules": sorted(g for g, flags in groups.items() if any(flags) and not all(flags)),
        "fresh_modules": sorted(g for g, flags in groups.items() if not any(flags)),
        "unused": len(state_dict) - len(update),
    }
