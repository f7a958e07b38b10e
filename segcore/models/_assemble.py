"""``assemble``: one SegModel from a backbone and a decoder factory (shared by the zoo's builders)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ..weights import ProgressCallback
from .backbones import Backbone
from .base import SegModel
from .deeplabv3 import Pretrained, init_from_pretrained
from .heads import aux_fcn_head


def assemble(
    arch: str, num_classes: int, bb: Backbone, make_decoder: Callable[[int], nn.Module], *,
    pretrained: Pretrained, aux: bool, binary_bce: bool, progress: ProgressCallback | None,
    options: dict[str, Any], note: str, cls: type[SegModel] = SegModel,
) -> SegModel:
    """``cls(arch, …)`` with ``bb.encoder``, ``make_decoder(out_channels)``, an aux FCN head on
    ``"aux"`` when ``aux`` and the encoder's ImageNet weights per ``pretrained``."""
    model = cls(arch=arch, num_classes=num_classes, encoder=bb.encoder, decoder=nn.Identity(),
                binary_bce=binary_bce, options=options)
    model.decoder = make_decoder(model.out_channels)
    if aux:
        if "aux" not in bb.channels:
            raise ValueError(f"{arch}: this backbone has no auxiliary-head input")
        model.aux_head = aux_fcn_head(bb.channels["aux"], model.out_channels)
    if bb.source is None:
        model.meta["init"] = {"weights_source": "random-init (fresh-weight architecture)", "note": note}
    else:
        init_from_pretrained(model, bb.source, pretrained, progress, fresh_note=note)
    return model


def check_aux(arch: str, aux: bool | None, default: bool = False) -> bool:
    """The registry passes aux=None for "the architecture's default"."""
    return default if aux is None else bool(aux)
