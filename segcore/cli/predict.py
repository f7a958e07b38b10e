"""``segloop-cli predict``: masks for a folder of images, or predictions into a project.

Safety rules: --out may not be a project's masks/ folder (the user's corrections) nor inside
its .segloop/; files already in --out are replaced only with --overwrite; output names follow
the project's stem rule (see segcore.cli), so two images never write the same file. With
--project and no --out, predictions go to the project's prediction store (segcore.loop.
predict_project), exactly as the app stores them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..pairing import list_images, output_stems
from .common import (INPUT_SIZE, CLIError, Progress, _about, _ensure_writable_folder, _err, _predictor,
                     _reason, command)
from ..errors import SegLoopError


def add_parser(sub: Any) -> None:
    p = command(sub, "predict", "write predicted masks for a folder of images",
                "Predict a mask for every image in --images and write <stem>.png "
                "into --out. The model is --checkpoint, else the active version of "
                "--project, else the untrained ImageNet model. With --project and "
                "no --out the predictions are stored in the project (.segloop/"
                "predictions, what the app shows); corrected masks are never "
                "touched. --out may not be a project's masks/ folder, and existing "
                "files in --out are only replaced with --overwrite. Output names: "
                "<stem>.png; when images share a stem (a.jpg, a.png) the first in "
                "name order keeps it, the others use their full name "
                "(a.png -> a.png.png), as project masks do.")
    p.add_argument("--images", help="folder of images (default: the --project folder)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", help="checkpoint file (.pt) written by train or the app")
    src.add_argument("--project", help="project folder: use its active model version")
    p.add_argument("--out", help="folder for the masks (created if missing); without it, --project "
                                 "stores the predictions in the project")
    p.add_argument("--overwrite", action="store_true", help="replace files that already exist in --out")
    p.add_argument("--crf", nargs="?", const="on", default="auto", choices=["auto", "on", "off"],
                   help="DenseCRF refinement: auto (default: as the model's fine-tune decided on its "
                        "held-out images), on (default parameters), off")
    p.add_argument("--input-size", type=INPUT_SIZE, default=None,
                   help="side of the square the model sees, 32..8192 (default: the size it was "
                        "trained at)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.set_defaults(func=_cmd_predict)


def _project_root(folder: Path) -> Path | None:
    """``folder`` if it is a SegLoop project (has .segloop/), else None."""
    from ..project import STATE_DIR
    return folder.resolve() if (folder / STATE_DIR).is_dir() else None


def _refuse_project_folders(out: Path, images: Path, project: str | None) -> None:
    """--out must not be a project's masks folder (the user's corrections) or its state."""
    from ..project import STATE_DIR
    target = out.resolve()
    roots = {images.resolve(), target.parent}
    if project:
        roots.add(Path(project).resolve())
    for root in roots:
        is_project = (root / STATE_DIR).is_dir() or root == images.resolve()
        if not is_project:
            continue
        if target == root / "masks":
            raise CLIError(f"--out {out} is the masks folder of {root}, which holds the masks you "
                           f"corrected; predict never writes there. To store predictions in the "
                           f"project (as the app does) run 'segloop-cli predict --project {root}' "
                           f"without --out; or choose another --out folder")
        if target == root / STATE_DIR or root / STATE_DIR in target.parents:
            raise CLIError(f"--out {out} is inside SegLoop's state folder {root / STATE_DIR}; "
                           f"use 'segloop-cli predict --project {root}' without --out instead")


def _prepare_out(out: Path, names: list[str], overwrite: bool) -> None:
    """Create --out and check, before any prediction, that it is a writable folder and that no
    existing file would be replaced (unless --overwrite)."""
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} is a file; give a folder for the masks")
    _ensure_writable_folder(out, out, "")
    existing = [n for n in names if (out / n).exists()]
    if existing and not overwrite:
        raise CLIError(f"--out {out} already holds {len(existing)} of the output files "
                       f"({', '.join(existing[:3])}{', ...' if len(existing) > 3 else ''}); nothing "
                       f"was written. Pass --overwrite to replace them, or choose an empty folder")


def _check_project_classes(predictor: Any, root: Path | None, what: str) -> None:
    """A checkpoint must predict as many classes as the project it is used on has."""
    if root is None:
        return
    from ..project import Project
    with Project.open(root) as project:
        names = [c.name for c in project.classes]
    k = predictor.model.num_classes
    if k != len(names):
        raise CLIError(f"{what} predicts {k} classes but project {root} has {len(names)} "
                       f"({', '.join(names)}); its masks would mean other classes. Use a "
                       f"checkpoint trained on this project's classes")


def _cmd_predict(args: argparse.Namespace) -> int:
    if args.out is None and not args.project:
        return _err("predict", "give --out FOLDER, or --project FOLDER to store the predictions in "
                               "the project")
    if args.images is None and not args.project:
        return _err("predict", "give --images FOLDER (or --project FOLDER)")
    images = Path(args.images or args.project)
    try:
        paths = list_images(images)
        if args.out is None:
            return _predict_into_project(args, images)
        out = Path(args.out)
        _refuse_project_folders(out, images, args.project)
        names = {p: f"{stem}.png" for p, stem in output_stems(paths).items()}
        _prepare_out(out, list(names.values()), args.overwrite)
        predictor = _predictor(args)
        what = f"checkpoint {args.checkpoint}" if args.checkpoint else "the model"
        _check_project_classes(predictor, Path(args.project).resolve() if args.project
                               else _project_root(images), what)
    except (CLIError, SegLoopError, OSError) as exc:
        return _err("predict", _reason(exc) if isinstance(exc, OSError) else exc)
    return _write_predictions(predictor, paths, names, out)


def _write_predictions(predictor: Any, paths: list[Path], names: dict[Path, str], out: Path) -> int:
    from ..errors import MaskWriteError
    from ..io import write_mask
    num_classes = predictor.model.num_classes
    bar = Progress(len(paths), "predict")
    failed = written = 0
    for i, (path, pred) in enumerate(predictor.predict_paths(paths), 1):
        if isinstance(pred, Exception):
            failed += 1
            print(f"\n{_about(path, pred)}", file=sys.stderr)
        else:
            try:
                write_mask(out / names[path], pred.mask, num_classes)
            except MaskWriteError as exc:  # disk full, folder gone read-only: stop, say so
                bar.close()
                return _err("predict", f"{exc}. Stopped: {written} of {len(paths)} masks "
                                       f"written to {out}")
            written += 1
        bar.update(i, path.name)
    bar.close()
    print(f"{written} masks written to {out}" + (f", {failed} images failed" if failed else ""))
    return 1 if failed else 0


def _predict_into_project(args: argparse.Namespace, images: Path) -> int:
    """--project without --out: predictions go to the project's prediction store (never to
    masks/), exactly as the app stores them; corrected images keep their masks."""
    from ..loop import predict_project
    from ..project import Project
    root = Path(args.project).resolve()
    if images.resolve() != root:
        raise CLIError(f"without --out, predictions are stored in project {root}, so --images "
                       f"must be that folder (got {images}); give --out to predict another folder")
    predictor = _predictor(args)
    _check_project_classes(predictor, root, "the project's active model")
    with Project.open(root) as project:
        if project.read_only:
            raise CLIError(f"{root}: the project is read-only ({project.read_only_reason}); give "
                           f"--out to write the masks elsewhere")
        stems = project.stems()
        bar = Progress(len(stems), "predict")
        summary = predict_project(project, predictor, stems,
                                  on_progress=lambda done, total, stem: bar.update(done, stem))
        bar.close()
        for stem, message in summary.errors.items():
            print(f"{stem}: {message}", file=sys.stderr)
    ok = summary.done - len(summary.errors)
    print(f"{ok} predictions stored in {root / '.segloop' / 'predictions'} (shown in the app; "
          f"masks/ untouched)" + (f", {len(summary.errors)} images failed" if summary.errors else ""))
    return 1 if summary.errors else 0
