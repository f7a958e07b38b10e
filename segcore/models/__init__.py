"""Model registry: ``build(name, ...)`` → SegModel; see ``base`` for the model conventions.

Models: ``deeplabv3_mobilenet_v2`` (OS16, ImageNet MobileNetV2 backbone, the seed's head design
at 256 ch), ``deeplabv3plus_mobilenet_v2`` (the same backbone with a slim DeepLabV3+ decoder:
the CPU default for fine-tuning) and ``deeplabv3_resnet50_v1c`` (the seed's configuration, OS8).
The zoo (issue 12), one builder per paper: ``fcn32s``/``fcn16s``/``fcn8s`` (fcn.py), ``unet``
and ``unet_mobilenet_v2`` (unet.py), ``segnet`` (segnet.py), ``pspnet`` (pspnet.py),
``deeplabv1_largefov`` and ``deeplabv2`` (deeplab_v1v2.py), ``spp``, ``speed_dspp`` and
``speed_mdspp`` (pyramids.py). Those needing an ImageNet encoder use the MobileNetV2 one (the
only weights on this machine); the paper's backbone is an option (``backbone=``).
``ARCHITECTURES[name].good_for`` is a one-line summary for the UI. ``build(**model.config(),
pretrained=False)`` (or ``from_config``) rebuilds a model's architecture for loading weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..devices import resolve_device
from ..weights import ProgressCallback
from .base import IMAGENET_MEAN, IMAGENET_STD, LogitsOnly, SegModel, logits_to_probs
from .deeplab_v1v2 import deeplabv1_largefov, deeplabv2
from .deeplabv3 import (MobileNetDeepLab, Pretrained, deeplabv3_mobilenet_v2, deeplabv3_resnet50_v1c,
                        deeplabv3plus_mobilenet_v2)
from .fcn import fcn8s, fcn16s, fcn32s
from .pspnet import pspnet
from .pyramids import speed_dspp, speed_mdspp, spp
from .segnet import segnet
from .unet import unet, unet_mobilenet_v2

__all__ = [
    "ARCHITECTURES", "ArchInfo", "DEFAULT_FOR_KIND", "DEFAULT_MODEL", "IMAGENET_MEAN", "IMAGENET_STD", "LogitsOnly",
    "MobileNetDeepLab", "SegModel", "available_models", "build", "default_arch", "from_config", "logits_to_probs", "short_name",
]

#: what a new project fine-tunes, per kind of project: the architecture with the best mean
#: IoU / mIoU at k = 20 and 50 over that kind's suite datasets in the zoo benchmark (one click from
#: the ImageNet model, same images and test split for every architecture;
#: tests/benchmarks/results.md "Zoo"). Binary: DeepLabV3+ (MobileNetV2); classes: FCN-8s.
DEFAULT_FOR_KIND: dict[str, str] = {"binary": "deeplabv3plus_mobilenet_v2", "classes": "fcn8s"}
#: the binary default (the registry's first entry; the untrained model `segloop-cli predict` uses)
DEFAULT_MODEL = DEFAULT_FOR_KIND["binary"]


def default_arch(num_classes: int) -> str:
    """The architecture a new project of ``num_classes`` classes (2 = binary) starts from."""
    return DEFAULT_FOR_KIND["binary" if num_classes <= 2 else "classes"]


@dataclass(frozen=True)
class ArchInfo:
    """A registered architecture: its builder and a one-line summary for the UI.

    ``good_for`` says what the architecture is good and weak at: with ``measured`` the zoo
    benchmark's numbers on this project's suite (tests/benchmarks/bench_suite.py zoo), else the
    paper's claim.
    """

    builder: Callable[..., SegModel]
    title: str
    good_for: str
    measured: bool = False  # True: good_for is this project's measurement, not the paper's claim
    short: str = ""         # a few characters for narrow places (the versions table)
    needs_gpu: bool = False  # measured: on a CPU one click overruns its budget and learns little

    def device_note(self, device: str = "auto") -> str:
        """A warning when this architecture is a poor choice on ``device`` (a TrainConfig.device:
        "auto", "cpu", "cuda", "cuda:N"), else ""."""
        if self.needs_gpu and resolve_device(device).type != "cuda":
            return ("Needs a GPU, and none was found on this computer: a click here will overrun its "
                    "time budget")
        return ""

    @property
    def good_for_line(self) -> str:
        """"Good for …" with where the claim comes from."""
        where = ("measured: one click at k = 20 / 50 on the suite, IoU or mIoU" if self.measured
                 else "from the paper; not yet measured here")
        return f"Good for {self.good_for} ({where})"


# "good for" lines: the zoo benchmark (tests/benchmarks/results.md "Zoo"): one click from the
# ImageNet model with k = 20 / 50 corrected images, random order, IoU (binary) or mIoU over
# MSRC-21 (msrc), single runs (noise about ±0.03); horses = weizmann_horse, dsb = dsb2018_nuclei.
ARCHITECTURES: dict[str, ArchInfo] = {
    "deeplabv3plus_mobilenet_v2": ArchInfo(
        deeplabv3plus_mobilenet_v2, "DeepLabV3+ (MobileNetV2)",
        "binary masks, the binary default (k = 20: ph2 0.84, dsb 0.73, horses 0.81); weaker when the "
        "first click has 50 images (horses 0.73, dsb 0.62) and with classes (msrc 0.05 / 0.22)",
        measured=True),
    "deeplabv3_mobilenet_v2": ArchInfo(
        deeplabv3_mobilenet_v2, "DeepLabV3 (MobileNetV2)",
        "large objects and classes at k = 50 (ph2 0.83, msrc 0.41); weak on small objects "
        "(dsb 0.16 / 0.12) and worse on horses with 50 (0.74 / 0.62)", measured=True),
    "deeplabv3_resnet50_v1c": ArchInfo(
        deeplabv3_resnet50_v1c, "DeepLabV3 (ResNet-50-V1c, the seed)",
        "natural scenes with a GPU; on a CPU one click learns nothing (horses 0.07 / 0.27, ph2 0.00 / "
        "0.09, dsb 0.00 / 0.14, msrc 0.00 / 0.00; 3-18x over budget)", measured=True, needs_gpu=True),
    "fcn32s": ArchInfo(fcn32s, "FCN-32s (MobileNetV2)",
                       "a cheap baseline for classes (msrc 0.35 / 0.48) and large objects (ph2 0.81 / "
                       "0.85); coarse on small objects (dsb 0.30 / 0.31)", measured=True),
    "fcn16s": ArchInfo(fcn16s, "FCN-16s (MobileNetV2)",
                       "classes (msrc 0.34 / 0.50) and binary masks (horses 0.83 / 0.82, ph2 0.86 / 0.86, "
                       "dsb 0.69 / 0.68); 1.4 GFLOPs",
                       measured=True),
    "fcn8s": ArchInfo(fcn8s, "FCN-8s (MobileNetV2)",
                      "classes, the default there (msrc 0.35 / 0.50), and binary masks (horses 0.83 / 0.83, "
                      "ph2 0.85 / 0.87, dsb 0.69 / 0.65); the cheapest to run (1.4 GFLOPs)",
                      measured=True),
    "unet": ArchInfo(unet, "U-Net (fresh weights)",
                     "microscopy with a GPU and many labels; on a CPU one click overruns 3-11x and learns "
                     "little (ph2 0.63 / 0.62, horses 0.33 / 0.27, dsb 0.02 / 0.16, msrc 0.00)",
                     measured=True, needs_gpu=True),
    "unet_mobilenet_v2": ArchInfo(unet_mobilenet_v2, "U-Net decoder (MobileNetV2)",
                                  "single large objects (horses 0.85 / 0.81, the best at k = 20); "
                                  "unsteady on ph2 (0.73 / 0.82) and dsb (0.70 / 0.54), weak with "
                                  "classes (msrc 0.12 / 0.08)",
                                  measured=True),
    "segnet": ArchInfo(segnet, "SegNet (VGG-16, fresh weights)",
                       "scenes with a GPU and many labels; on a CPU one click learns little (ph2 0.51 / "
                       "0.00, dsb 0.14 / 0.14, horses 0.00, msrc 0.00; 3-9x over budget)",
                       measured=True, needs_gpu=True),
    "pspnet": ArchInfo(pspnet, "PSPNet (MobileNetV2)",
                       "scene context with longer training; at one click it lags (ph2 0.57 / 0.71, "
                       "msrc 0.25 / 0.29, dsb 0.07 / 0.15)", measured=True),
    "deeplabv1_largefov": ArchInfo(deeplabv1_largefov, "DeepLab v1 LargeFOV (MobileNetV2)",
                                   "DenseCRF pairing after long training; at one click it barely learns "
                                   "(ph2 0.31 / 0.00, msrc 0.05 / 0.10, dsb 0.00 / 0.00)", measured=True),
    "deeplabv2": ArchInfo(deeplabv2, "DeepLab v2 ASPP (MobileNetV2)",
                          "objects at several scales after long training; unsteady at one click "
                          "(ph2 0.07 / 0.62, msrc 0.19 / 0.30, dsb 0.00 / 0.00)", measured=True),
    "spp": ArchInfo(spp, "SPP head (MobileNetV2)",
                    "a cheap context head for large objects and classes (ph2 0.78 / 0.83, msrc 0.30 / "
                    "0.40); weak on small objects (dsb 0.28 / 0.03)", measured=True),
    "speed_dspp": ArchInfo(speed_dspp, "SPEED + DSPP (fresh weights)",
                           "low-resource inference after long training; fresh weights learn little in "
                           "one click (ph2 0.44 / 0.63, msrc 0.03 / 0.07, dsb 0.47 / 0.02)",
                           measured=True),
    "speed_mdspp": ArchInfo(speed_mdspp, "SPEED + MDSPP (fresh weights)",
                            "as SPEED + DSPP, with the mixed pyramid (ph2 0.02 / 0.64, msrc 0.03 / 0.06, "
                            "dsb 0.47 / 0.00)", measured=True),
}
#: short names for narrow places (the versions table)
_SHORT = {
    "deeplabv3plus_mobilenet_v2": "V3+", "deeplabv3_mobilenet_v2": "V3",
    "deeplabv3_resnet50_v1c": "V3-R50", "fcn32s": "FCN32", "fcn16s": "FCN16", "fcn8s": "FCN8",
    "unet": "U-Net", "unet_mobilenet_v2": "U-Net-M", "segnet": "SegNet", "pspnet": "PSP",
    "deeplabv1_largefov": "V1", "deeplabv2": "V2", "spp": "SPP", "speed_dspp": "SPEED",
    "speed_mdspp": "SPEED-M",
}
ARCHITECTURES = {name: replace(info, short=_SHORT.get(name, name)) for name, info in ARCHITECTURES.items()}
_REGISTRY: dict[str, Callable[..., SegModel]] = {name: info.builder for name, info in ARCHITECTURES.items()}


def short_name(arch: str) -> str:
    """A few characters naming ``arch`` ("V3+", "U-Net", …; an unknown name as is)."""
    info = ARCHITECTURES.get(arch)
    return info.short if info else arch


def available_models() -> list[str]:
    """Registered architecture names, CPU default first."""
    return [DEFAULT_MODEL] + [name for name in _REGISTRY if name != DEFAULT_MODEL]


def build(
    name: str = DEFAULT_MODEL,
    num_classes: int = 2,
    pretrained: Pretrained = True,
    aux: bool | None = None,
    binary_bce: bool = True,
    progress: ProgressCallback | None = None,
    **options: Any,
) -> SegModel:
    """Build a registered model. ``options`` are architecture options (e.g. ``output_stride``).
    ``aux=None``: the architecture's default (an auxiliary head for PSPNet only).

    Raises ValueError for an unknown name (the message lists the known ones).
    """
    try:
        builder = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(_REGISTRY)}") from None
    return builder(num_classes=num_classes, pretrained=pretrained, aux=aux, binary_bce=binary_bce,
                   progress=progress, **options)


def from_config(config: dict[str, Any], pretrained: Pretrained = False) -> SegModel:
    """Rebuild from ``SegModel.config()`` (an ``arch`` key is accepted in place of ``name``)."""
    cfg = dict(config)
    name = cfg.pop("name", None) or cfg.pop("arch")
    cfg.pop("arch", None)
    return build(name, pretrained=pretrained, **cfg)
