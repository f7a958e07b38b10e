"""``segloop-cli export`` / ``segloop-cli import``: a project's masks out and in (segcore.export,
segcore.mask_import)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import EPILOG, _err, command
from ..errors import SegLoopError
from ..export import FORMAT_TEXT, FORMATS


def add_parser(sub: Any) -> None:
    p = command(
        sub, "export", "export a project's masks (PNG, palette, COCO RLE, overlays, dataset)",
        epilog=EPILOG, description="Write the masks of a project's done images (or all with --all) to OUT in "
                    "one format:\n" + "\n".join(f"  {k:8} {v}" for k, v in FORMAT_TEXT.items())
                    + "\nEvery export also writes classes.json. Example:\n"
                      "  segloop-cli export --project photos/ --format coco --out coco/")
    p.add_argument("--project", required=True, help="project folder (images + masks/)")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--format", choices=FORMATS, default="index", help="default: index")
    p.add_argument("--all", action="store_true", help="every image with a mask, not only done ones")
    p.set_defaults(func=_cmd_export)

    p = command(
        sub, "import", "import masks into a project (masks/, labels/, <stem>_mask.*, JPEG, RGB)",
        epilog=EPILOG, description="Find masks for a project's images (in --from, else masks/, labels/, "
                    "annotations/ and <stem>_mask.* beside the images), decode them (palette, "
                    "0/255, class indices, instance ids, JPEG with cleaning) and save them as done "
                    "masks. Existing masks are kept. RGB colour-coded masks need their colours "
                    "to be the project's class colours.")
    p.add_argument("--project", required=True, help="project folder")
    p.add_argument("--from", dest="source", help="folder holding the masks, or a COCO .json file")
    p.add_argument("--instances", choices=["merge", "keep"],
                   help="masks with more values than the project's classes are instance ids: "
                        "merge them into class 1, or keep the ids as classes (default: report "
                        "such masks and skip them)")
    p.set_defaults(func=_cmd_import)


def _cmd_export(args: argparse.Namespace) -> int:
    from ..export import export_project
    from ..project import Project
    try:
        with Project.open(args.project) as project:
            summary = export_project(project, args.out, args.format, only_done=not args.all)
    except (SegLoopError, OSError) as exc:
        return _err("export", exc)
    print(summary.text())
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from ..mask_import import find_masks, import_arrays, import_masks, read_coco
    from ..project import Project
    try:
        with Project.open(args.project) as project:
            if args.source and Path(args.source).suffix.lower() == ".json":
                report = import_arrays(project, read_coco(project, args.source))
                print(report.text())
                return 0 if report.imported else 1
            found = find_masks(project, Path(args.source) if args.source else None)
            if not found:
                return _err("import", f"no masks named like an image of {project.root} in "
                                      f"{args.source or 'masks/, labels/, annotations/'}")
            report = import_masks(project, found, instances=args.instances)
    except (SegLoopError, OSError) as exc:
        return _err("import", exc)
    print(report.text())
    return 0 if report.imported else 1
