"""``segloop-cli simulate``: the simulated annotator on any folder with masks (see segcore.simulate)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from .common import _err, _json_clean, add_label_args, add_pair_folders, command
from ..errors import SegLoopError


def add_parser(sub: Any) -> None:
    from ..training.config import MODES
    p = command(
        sub, "simulate", "estimate how many corrections a folder needs (simulated annotator)",
        "Simulate the app's loop on a folder that already has masks: the last N sorted "
                    "images are the test set (never trained on); for each k, k other images are "
                    "'corrected' by copying their masks, the app's one-click fine-tune runs from the "
                    "ImageNet model, and the test images are re-predicted. Prints held-out IoU and "
                    "Boundary IoU (without and with DenseCRF) and the seconds from click to updated "
                    "predictions. --order attention picks the images the app flags first (highest "
                    "uncertainty; before any model, typical and varied images first); random picks a "
        "seeded random sample.")
    add_pair_folders(p, "ground-truth masks")
    p.add_argument("--test-last", type=int, default=80, metavar="N", help="test = last N sorted stems (default 80)")
    p.add_argument("--k", default="5,20,50", help="comma-separated numbers of corrected images (default 5,20,50)")
    p.add_argument("--order", default="attention,random", help="attention, random or both (default both)")
    p.add_argument("--time-budget", type=float, metavar="S", help="fine-tune budget (default: the app's)")
    p.add_argument("--mode", choices=list(MODES),
                   help="training mode (default: the app's)")
    p.add_argument("--no-crf", action="store_true", help="skip the DenseCRF scores")
    p.add_argument("--seed", type=int, default=0, help="random order seed (default 0)")
    p.add_argument("--protocol", choices=["session", "independent"], default="session",
                   help="session (default): one project corrected in batches up to each k, one click "
                        "per k, each from the previous model, as in the app; independent: every k "
                        "from the ImageNet model with one click")
    add_label_args(p, "never trained on, never scored", "; K > 2 reports mIoU, mean BIoU and per-class IoU")
    p.add_argument("--json", action="store_true", help="print a JSON list of rows")
    p.set_defaults(func=_cmd_simulate)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from .. import simulate as sim
    try:
        ks = [int(k) for k in str(args.k).split(",") if k.strip()]
        orders = [o.strip() for o in str(args.order).split(",") if o.strip()]
        config = sim.default_config()
        if args.time_budget is not None:
            config = replace(config, time_budget_s=args.time_budget)
        if args.mode is not None:
            config = replace(config, mode=args.mode)
        say = (lambda text: print(text, file=sys.stderr))
        rows = sim.simulate(args.images, args.masks, args.test_last, ks, orders, config, seed=args.seed,
                        crf=not args.no_crf, dataset=Path(args.images).resolve().parent.name,
                        protocol=args.protocol, num_classes=args.classes, ignore_index=args.ignore_index,
                        on_message=say, on_row=None if args.json else (lambda r: say(
                            f"k={r['k']} {r['order']}: IoU {r['iou']:.3f} BIoU {r['biou']:.3f} "
                            + (f"mIoU {r['miou']:.3f} " if r.get("miou") is not None else "")
                            + f"({r['seconds']:.0f} s)")))
    except (SegLoopError, FileNotFoundError, ValueError) as exc:
        return _err("simulate", exc)
    if args.json:
        print(json.dumps([_json_clean(r) for r in rows], indent=2))
        return 0
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else ("-" if v is None else str(v))
    print("  ".join(f"{k:>9}" for k in sim.ROW_KEYS))
    for r in rows:
        print("  ".join(f"{fmt(r[k]):>9}" for k in sim.ROW_KEYS))
    if args.classes > 2:  # per class on the test images (segcore.metrics.Evaluation)
        print("\nper class (test images): IoU / Boundary IoU; '-' = class absent")
        print(f"{'class':>9}  " + "  ".join(f"{r['order'][:4]} k={r['k']}".rjust(13) for r in rows))
        for c in range(args.classes):
            cells = [f"{fmt((r.get('per_class_iou') or [None] * args.classes)[c])} / "
                     f"{fmt((r.get('per_class_biou') or [None] * args.classes)[c])}" for r in rows]
            print(f"{c:>9}  " + "  ".join(f"{cell:>13}" for cell in cells))
        print(f"{'mIoU':>9}  " + "  ".join(f"{fmt(r.get('miou')):>13}" for r in rows))
    return 0
