"""The segloop-cli argument parser (one subparser per module of this package) and ``main``."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..errors import SegLoopError
from ..memory import prepare_process
from . import eval as eval_cmd
from . import export, predict, simulate, train, versions, weights
from .common import EPILOG, CLIError, _err, _reason


def build_parser() -> argparse.ArgumentParser:
    from . import __doc__ as description
    parser = argparse.ArgumentParser(
        prog="segloop-cli", description=description, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (predict, train, eval_cmd, versions, simulate, export, weights):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    prepare_process()  # allocator setting; torch without Triton on a CPU-only machine
    try:
        return args.func(args)
    except (CLIError, SegLoopError) as exc:  # last net: each command handles its own first
        return _err(args.command, exc)
    except OSError as exc:
        return _err(args.command, f"{exc.filename + ': ' if exc.filename else ''}{_reason(exc)}")
    except MemoryError as exc:
        return _err(args.command, f"out of memory ({exc or 'MemoryError'})")
    except KeyboardInterrupt:
        print(f"segloop-cli {args.command}: interrupted", file=sys.stderr)
        return 130
