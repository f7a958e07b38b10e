"""Parameters and GFLOPs per registered architecture, counted by torch (not by hand).

``complexity(name_or_model, size=320)`` → ``{"arch", "params", "params_m", "gflops", "size"}``:
parameters of the model as built for inference (no auxiliary head), and FLOPs of one eval-mode
forward of a (1, 3, size, size) input counted by ``torch.utils.flop_counter.FlopCounterMode``
(a multiply-add counts as 2 FLOPs; convolutions, matmuls and transposed convolutions are
counted, element-wise ops, pooling and interpolation are not).

    python -m segcore.models.complexity [--size 320] [--arch a,b] [--json]
"""

from __future__ import annotations

import argparse
import json
import warnings
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode


def complexity(model: Any, size: int = 320, num_classes: int = 2) -> dict[str, Any]:
    """Params and GFLOPs of a SegModel (or a registered name, built without pretrained weights)."""
    from . import build
    if isinstance(model, str):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = build(model, num_classes=num_classes, pretrained=False, aux=False)
    model = model.eval()
    params = sum(p.numel() for name, p in model.named_parameters() if not name.startswith("aux_head."))
    x = torch.zeros(1, 3, int(size), int(size))
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    flops = counter.get_total_flops()
    return {"arch": model.arch, "params": int(params), "params_m": round(params / 1e6, 3),
            "gflops": round(flops / 1e9, 3), "size": int(size)}


def main(argv: list[str] | None = None) -> int:
    from . import available_models
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--arch", default="all", help="comma-separated names (default: every registered one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    names = available_models() if args.arch == "all" else args.arch.split(",")
    rows = [complexity(name, args.size) for name in names]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'architecture':<28} {'params (M)':>10} {f'GFLOPs @{args.size}²':>14}")
    for r in rows:
        print(f"{r['arch']:<28} {r['params_m']:>10.2f} {r['gflops']:>14.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
