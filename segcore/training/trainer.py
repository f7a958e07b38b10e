"""Trainer: fine-tune a SegModel on (image, mask) pairs, with held-out metrics, cancel and NaN guard.

The caller's model is never touched: fit() trains a deep copy and returns it only on success.
cancel() is thread-safe (a threading.Event, checked before every step) and stops within one step.
fit() is the orchestration only: the preset and the prepared data, the loss, then each phase of
the mode (segcore.training.phases: fast, full) within its share of the budget
(segcore.training.budget), sharing one RunContext (segcore.training.run: the step loop, DDP).
Under torch.distributed the trained module is wrapped in DistributedDataParallel, data is
sharded with DistributedSampler, rank 0 decides when to stop, and after training every rank's
buffers (BatchNorm running stats) follow rank 0.
"""

from __future__ import annotations

import copy
import functools
import threading
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..devices import resolve_device
from ..errors import TrainingError
from ..memory import configure_allocator, release_free_memory
from ..preprocess import Preset
from .budget import RunBudget
from .config import TrainCallbacks, TrainConfig, TrainResult
from .data import _load_pair, prepare_train_pairs, prepare_val_pairs
from .losses import class_weights, segmentation_loss
from .phases import PHASES
from .run import Cancelled, RunContext, dist_info

__all__ = ["Trainer", "segmentation_loss"]


class Trainer:
    """Trainer(model, config, callbacks).fit(train_pairs, val_pairs) → TrainResult.

    Raises TrainingError for no data, bad pairs and a non-finite loss (the caller's model is unchanged).
    """

    def __init__(self, model: nn.Module, config: TrainConfig | None = None,
                 callbacks: TrainCallbacks | None = None,
                 cancel_event: threading.Event | None = None,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                 preset: Preset | None = None) -> None:
        self.config = (config or TrainConfig()).for_classes(int(getattr(model, "num_classes", 2)))
        self.config.validate()
        self.source = model
        self.callbacks = callbacks or TrainCallbacks()
        self._cancel = cancel_event if cancel_event is not None else threading.Event()
        self._custom_loss = loss_fn
        self.loss_fn = loss_fn or functools.partial(segmentation_loss,
                                                    dice_weight=self.config.dice_weight)
        self.preset = preset  # None: chosen in fit() from the training masks (config.preset_for)
        self.device = resolve_device(self.config.device)
        self.distributed, self.rank, self.world = dist_info()

    # ---------------------------------------------------------------- public
    def cancel(self) -> None:
        """Ask fit() to stop before its next step (any thread)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def fit(self, train_pairs: Sequence[Any], val_pairs: Sequence[Any] = ()) -> TrainResult:
        # resolved here too: a caller may have replaced self.config (e.g. loop.finetune's budget)
        cfg = self.config = self.config.for_classes(int(getattr(self.source, "num_classes", 2)))
        if len(train_pairs) == 0:
            raise TrainingError("no training images: correct at least one image first")
        configure_allocator()  # every caller (app, CLI, simulator) trains under the same malloc
        torch.manual_seed(cfg.seed + self.rank)
        budget = RunBudget(cfg)
        budget.begin()
        loaded = [_load_pair(p, i) for i, p in enumerate(train_pairs)]
        preset = (self.preset or cfg.preset_for([m for _, m, _ in loaded])).with_model(self.source)
        self.preset = preset
        self.callbacks.on_message(f"preprocessing: {preset.describe()}"
                                  + (f" ({preset.reason})" if preset.reason else ""))
        max_scale = cfg.scale_range[1] if preset.policy == "stretch" else cfg.crop_jitter[1]
        train = prepare_train_pairs(loaded, preset, max_scale)
        del loaded
        val = prepare_val_pairs(val_pairs, preset)
        if self._custom_loss is None and cfg.class_balance != "none":
            weights = class_weights([p.mask for p in train], self.source.num_classes)
            self.loss_fn = functools.partial(segmentation_loss, dice_weight=cfg.dice_weight,
                                             class_weights=weights.to(self.device))
            self.callbacks.on_message("class weights: " + ", ".join(f"{w:.2f}" for w in weights.tolist()))
        # NHWC: oneDNN's convolution backward is faster in it on CPU (bench_train)
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        model = copy.deepcopy(self.source).to(self.device, memory_format=fmt)
        ctx = RunContext(cfg, self.callbacks, self._cancel, self.loss_fn, preset, self.device, budget, fmt,
                         self.distributed, self.rank, self.world)
        phases = ["fast", "full"] if cfg.mode == "fast+full" else [cfg.mode]
        if any(p not in ("fast", "full") for p in phases):
            raise ValueError(f"training mode {cfg.mode!r} is not resolved to fast / full")
        if "fast" in phases and not getattr(model, "fast_mode_ok", True):
            phases = ["full"]  # e.g. a fresh-weight U-Net: its cached features would be random
            self.callbacks.on_message(f"{getattr(model, 'arch', 'this model')} trains in full mode only "
                                      f"({getattr(model, 'fast_mode_reason', '')})")
        reason = "epochs done"
        try:
            for phase in phases:
                reason = PHASES[phase].run(ctx, model, train, val, budget.phase(phase, phases))
            if self.distributed and self.world > 1:
                for t in model.state_dict().values():  # buffers (running stats) follow rank 0
                    torch.distributed.broadcast(t, src=0)
        except Cancelled:
            self.callbacks.on_message("training cancelled; the previous model is unchanged")
            return TrainResult(None, "cancelled", ctx.history, seconds=budget.elapsed(), steps=ctx.step)
        finally:
            release_free_memory()  # the phases' graphs, caches and optimizer state (segcore.memory)
        model.eval()
        model.to("cpu", memory_format=torch.contiguous_format)
        model.meta = {**(getattr(model, "meta", None) or {}), "preset": preset.to_dict(),
                      "input_size": preset.input_size}
        last = ctx.history[-1] if ctx.history else None
        return TrainResult(model, reason, ctx.history, last.val_iou if last else None,
                           last.val_biou if last else None, budget.elapsed(), ctx.step)
