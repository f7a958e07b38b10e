"""``segloop-cli versions``: list, activate or roll back a project's model versions."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ..errors import SegLoopError
from .common import _err, _reason, command


def add_parser(sub: Any) -> None:
    p = command(sub, "versions", "list, activate or roll back a project's model versions",
                "List the model versions of a project (* = active), with their "
                "held-out IoU / Boundary IoU. --activate ID or --rollback (to the "
                "active version's parent) changes the active version first.")
    p.add_argument("--project", required=True, help="project folder")
    act = p.add_mutually_exclusive_group()
    act.add_argument("--activate", type=int, metavar="ID", help="make version ID the active one")
    act.add_argument("--rollback", action="store_true", help="activate the active version's parent")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_versions)


def _cmd_versions(args: argparse.Namespace) -> int:
    from ..project import Project
    from ..versions import ModelStore
    try:
        project = Project.open(args.project)
        store = ModelStore(project)
        if args.activate is not None:
            store.activate(args.activate)
            print(f"version {args.activate} is now active", file=sys.stderr if args.json else sys.stdout)
        elif args.rollback:
            print(f"rolled back: version {store.rollback()} is now active",
                  file=sys.stderr if args.json else sys.stdout)
        rows = store.versions()
    except (SegLoopError, OSError) as exc:
        return _err("versions", _reason(exc) if isinstance(exc, OSError) else exc)
    if args.json:
        print(json.dumps([{"id": v.id, "parent": v.parent, "created": v.created, "arch": v.arch,
                           "file": v.file, "active": v.active, "metrics": v.metrics} for v in rows], indent=1))
        return 0
    if not rows:
        print(f"{project.root}: no model versions yet")
    else:
        print(f"{'':1} {'id':>4} {'parent':>6}  {'created':<16} {'val IoU':>7} {'val BIoU':>8} {'train':>5}  arch")
    for v in rows:
        m = v.metrics or {}
        fmt = lambda x: f"{x:.3f}" if isinstance(x, (int, float)) and x == x else "-"
        print(f"{'*' if v.active else ' '} {v.id:>4} {v.parent if v.parent is not None else '-':>6}  "
              f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(v.created)):<16} {fmt(m.get('val_iou')):>7} "
              f"{fmt(m.get('val_biou')):>8} {m.get('n_train', '-'):>5}  {v.arch}")
    project.close()
    return 0
