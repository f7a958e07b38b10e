"""``segloop-cli train``: fine-tune a model on a folder of images and masks (torchrun: DDP)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import SegLoopError
from ..pairing import match_pairs
from .common import (INPUT_SIZE, CLIError, Progress, _ensure_writable_folder, _err, _int_at_least,
                     _positive_float, _reason, add_label_args, add_pair_folders, command)


def add_parser(sub: Any) -> None:
    from ..training.config import MODES, TrainConfig
    d = TrainConfig()
    p = command(
        sub, "train", "fine-tune a model on a folder of images and masks",
        "Fine-tune a segmentation model on (image, mask) pairs matched by file name. "
                    "Every 5th image (by a stable hash of its name, at least one when there are 4 "
                    "or more) is held out to report IoU and Boundary IoU; it is never trained on. "
                    "Under torchrun, training runs with DistributedDataParallel (gloo on CPU, nccl "
                    "on GPU) and only rank 0 writes the checkpoint.")
    add_pair_folders(p)
    p.add_argument("--checkpoint", help="start from this checkpoint (default: ImageNet-initialised --arch)")
    p.add_argument("--out", required=True, help="checkpoint file to write (.pt)")
    p.add_argument("--mode", choices=list(MODES), default=d.mode,
                   help="fast: frozen encoder, cached features, decoder only; full: all weights "
                        "(encoder BN frozen); fast+full: fast warm-up then full; auto: fast for binary "
                        "masks, full with class weights for --classes > 2 (default %(default)s)")
    p.add_argument("--time-budget", type=_positive_float, metavar="S", help="stop after S seconds in total")
    p.add_argument("--epochs", type=_int_at_least(1), metavar="N",
                   help="epochs per phase (default: 20 without --time-budget)")
    p.add_argument("--arch", default=d.arch, help="architecture of a fresh model (default %(default)s: "
                   "the per-kind default, segcore.models.DEFAULT_FOR_KIND)")
    add_label_args(p, "never trained on")
    p.add_argument("--scale-policy", choices=["auto", "stretch", "scale"], default=d.scale_policy,
                   help="what the model sees: auto (chosen from the masks' object sizes), stretch "
                        "(whole image to one square view) or scale (working scale, aspect kept, tiles)")
    p.add_argument("--working-scale", type=float, default=0.0, metavar="F",
                   help="scale policy: resize factor of the images (default: chosen from the masks)")
    p.add_argument("--no-pretrained", action="store_true", help="fresh model from random weights")
    p.add_argument("--input-size", type=INPUT_SIZE, default=d.input_size,
                   help="crop size, 32..8192 (default %(default)s; small images of large objects "
                        "get a smaller whole-image view, at most 2x their long side)")
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
    from .. import models
    from ..loop import split_held_out
    from ..training import TrainCallbacks, TrainConfig, Trainer
    from ..training.distributed import cleanup, init_from_env, state_checksum
    from ..versions import load_checkpoint, save_checkpoint
    rank, world = init_from_env(args.device)
    try:
        if rank == 0:
            _check_checkpoint_out(Path(args.out))
        import numpy as np

        from ..io import read_mask
        ignore = args.ignore_index

        def truth(path: Path) -> Any:
            gt = read_mask(path, args.classes)
            return gt if ignore is None else np.where(gt == ignore, 255, gt).astype(np.uint8)

        pairs = {s: (i, truth(m), s) for i, m, s in match_pairs(Path(args.images), Path(args.masks))}
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
            model, start_meta = models.build(config.arch_for(args.classes), num_classes=args.classes,
                                             pretrained=not args.no_pretrained), {}
        quiet = rank != 0
        info = models.ARCHITECTURES.get(str(getattr(model, "arch", args.arch)))
        note = info.device_note(config.device) if info else ""
        if info is not None and note and not quiet:
            print(f"note: {info.title}: {note}", file=sys.stderr)
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
        trainer = Trainer(model, config, cbs)
        result = trainer.fit([pairs[s] for s in train_stems], [pairs[s] for s in held])
        if bar:
            bar.close()
        if args.state_checksum:
            Path(f"{args.state_checksum}.rank{rank}").write_text(state_checksum(result.model))
        if rank == 0:
            meta = {"data": {"train": train_stems, "held_out": held}, "metrics": result.metrics(),
                    "train_config": trainer.config.to_dict(), "world_size": world,
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
        from ..inference import is_oom
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
