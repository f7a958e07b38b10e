"""What the training phases share during one Trainer.fit run: settings, device, DDP rank, the
step counter, the history, and the epoch/step loop that both phases run (poly learning rate,
the budget's stop decision, the NaN guard, progress callbacks, held-out validation per epoch).

Under torch.distributed (DDP, see segcore.training.distributed) rank 0 decides when to stop
(time budget, cancel) and broadcasts that decision and the LR progress every step
(:meth:`RunContext.sync`), so every rank runs the same number of steps with the same rates.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from ..errors import TrainingError
from ..preprocess import Preset
from .budget import PhaseBudget, RunBudget
from .config import EpochReport, TrainCallbacks, TrainConfig
from .data import ValPair
from .evaluate import evaluate_prepared


class Cancelled(Exception):
    """Raised inside a run when its cancel event is set; Trainer.fit turns it into a result."""


def dist_info() -> tuple[bool, int, int]:
    """(active, rank, world_size) of torch.distributed."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return True, torch.distributed.get_rank(), torch.distributed.get_world_size()
    return False, 0, 1


@dataclass
class RunContext:
    """One fit()'s shared state; the phases read it and advance ``step`` and ``history``."""

    config: TrainConfig
    callbacks: TrainCallbacks
    cancel_event: threading.Event
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    preset: Preset
    device: torch.device
    budget: RunBudget
    memory_format: torch.memory_format = torch.contiguous_format
    distributed: bool = False
    rank: int = 0
    world: int = 1
    step: int = 0                    # steps over the whole run
    history: list[EpochReport] = field(default_factory=list)

    # ---------------------------------------------------------------- control
    def check_cancel(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled()

    def sync(self, progress: float, stop: bool) -> tuple[float, bool]:
        """Rank 0's (progress, stop) for every rank; identity without DDP."""
        if not self.distributed or self.world == 1:
            return progress, stop
        t = torch.tensor([progress, 1.0 if stop else 0.0], dtype=torch.float64)
        torch.distributed.broadcast(t, src=0)
        return float(t[0]), bool(t[1] > 0.5)

    # ---------------------------------------------------------------- building blocks
    def optimizer(self, groups: list[tuple[list[nn.Parameter], float]]) -> torch.optim.Optimizer:
        """SGD or AdamW over (parameters, learning rate) groups; empty groups are left out."""
        cfg = self.config
        params = [{"params": ps, "lr": lr, "initial_lr": lr} for ps, lr in groups if ps]
        if not params:
            raise TrainingError("nothing to train: every parameter is frozen")
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(params, lr=params[0]["lr"], momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay)
        return torch.optim.AdamW(params, lr=params[0]["lr"], weight_decay=cfg.weight_decay)

    def bn_frozen_head(self, batch: int) -> bool:
        """Whether the decoder's BatchNorm stays frozen (config.freeze_bn; "auto": when the
        smallest chunk one forward sees (``micro_batches``) is below ``min_bn_batch``)."""
        cfg = self.config
        if cfg.freeze_bn == "all":
            return True
        if cfg.freeze_bn == "none":
            return False
        return min(len(range(*c.indices(batch))) for c in self.micro_batches(batch)) < cfg.min_bn_batch

    def micro_batches(self, n: int) -> list[slice]:
        """A batch of ``n`` split into ``n // micro_batch`` (at least one) chunks of balanced
        sizes, each at least ``micro_batch`` long (so BatchNorm never sees fewer samples)."""
        k = max(1, n // max(1, self.config.micro_batch))
        bounds = [round(i * n / k) for i in range(k + 1)]
        return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]

    def accumulate(self, n: int, chunk_loss: Callable[[slice], torch.Tensor],
                   backward: Callable[[torch.Tensor], None] | None = None) -> tuple[torch.Tensor, bool]:
        """Backward over a batch of ``n`` in ``micro_batches`` (peak activation memory of one
        chunk): each chunk's loss weighted by its share of the batch, so the summed gradient is
        the batch's. Returns (the batch loss, detached; whether every chunk was finite). The
        caller zeroes the gradients before and steps the optimizer only when finite."""
        total = torch.zeros(())
        for chunk in self.micro_batches(n):
            loss = chunk_loss(chunk) * ((chunk.stop - chunk.start) / n)
            if not math.isfinite(float(loss.detach())):
                return loss.detach(), False
            (backward or torch.Tensor.backward)(loss)
            total = total + loss.detach().cpu()
        return total, True

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` in DistributedDataParallel under DDP, else itself."""
        if not self.distributed or self.world == 1:
            return module
        from torch.nn.parallel import DistributedDataParallel as DDP
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DDP(module, device_ids=ids)

    def _sampler(self, dataset: Any, epoch_seed: int = 0) -> Any:
        if self.distributed and self.world > 1:
            return DistributedSampler(dataset, num_replicas=self.world, rank=self.rank,
                                      shuffle=True, seed=self.config.seed)
        gen = torch.Generator()
        gen.manual_seed(self.config.seed + epoch_seed)
        return RandomSampler(dataset, generator=gen)

    def loader(self, dataset: Any, collate: Any = None) -> tuple[Callable[[int], Iterable[Any]], int, int]:
        """(batches of an epoch: epoch -> iterable, batches per epoch, batch size) of ``dataset``."""
        cfg = self.config
        sampler = self._sampler(dataset)
        per_rank = math.ceil(len(dataset) / self.world)
        batch = min(cfg.batch_size, per_rank)
        # keep every sample, except a last batch of one (BatchNorm cannot train on it)
        loader = DataLoader(dataset, batch_size=batch, sampler=sampler, drop_last=per_rank % batch == 1,
                            num_workers=cfg.num_workers, collate_fn=collate)

        def batches(epoch: int) -> Iterable[Any]:
            if isinstance(sampler, DistributedSampler):
                sampler.set_epoch(epoch)
            return loader
        return batches, len(loader), batch

    def validate(self, model: nn.Module, val: list[ValPair],
                 features: list[dict[str, torch.Tensor]] | None = None,
                 tail: int = 0) -> tuple[float | None, float | None]:
        """Held-out (IoU, BIoU) on rank 0; (None, None) elsewhere."""
        if self.rank != 0:
            return None, None
        return evaluate_prepared(model, val, self.device, features, tail, self.preset)

    # ---------------------------------------------------------------- the loop
    def run_epochs(self, phase: str, limits: PhaseBudget, batches: Callable[[int], Iterable[Any]],
                   n_batches: int, step_fn: Callable[[Any], torch.Tensor],
                   optimizer: torch.optim.Optimizer, validate: Callable[[], tuple],
                   set_train: Callable[[], None]) -> str:
        """Epochs of ``step_fn`` over ``batches`` until ``limits`` (or cancel) say stop; one
        EpochReport per epoch. Returns the stop reason."""
        cfg = self.config
        clock = self.budget.clock(limits, n_batches)
        step_in_phase = 0
        epoch = 0
        reason = "epochs done"
        averaged = _WeightAverage(optimizer, cfg.average_last)
        while True:
            epoch += 1
            set_train()
            losses: list[float] = []
            stop = False
            for batch in batches(epoch):
                progress = clock.progress(step_in_phase)
                want_stop = self.cancel_event.is_set() or progress >= 1.0
                progress, stop = self.sync(min(progress, 1.0), want_stop)
                if stop:
                    break
                factor = (1.0 - progress) ** cfg.poly_power
                for g in optimizer.param_groups:
                    g["lr"] = g["initial_lr"] * factor
                value = float(step_fn(batch).detach())
                if not math.isfinite(value):
                    raise TrainingError(
                        f"training stopped: the loss became {value} at step {self.step + 1} "
                        f"({phase} phase, epoch {epoch}); the learning rate "
                        f"({optimizer.param_groups[0]['lr']:.3g}) may be too high or a mask invalid. "
                        f"The previous model is unchanged.")
                self.step += 1
                step_in_phase += 1
                losses.append(value)
                averaged.update(progress)
                total = clock.total_steps(self.step - step_in_phase, step_in_phase)
                self.callbacks.on_step(self.step, max(total, self.step), value)
            self.check_cancel()
            if stop and limits.deadline is not None:
                reason = "time budget reached"
            last = stop or (limits.epochs is not None and epoch >= limits.epochs)
            if last:
                averaged.apply()  # the phase ends with the mean of its last weights
            if not losses and epoch > 1:
                return reason  # nothing changed since the last epoch's report
            val_iou, val_biou = validate()
            planned = clock.planned_epochs(epoch)
            report = EpochReport(phase, epoch, planned, float(np.mean(losses)) if losses else float("nan"),
                                 val_iou, val_biou, self.budget.elapsed(), clock.eta(epoch, planned))
            self.history.append(report)
            self.callbacks.on_epoch(report)
            if last:
                return reason if stop else "epochs done"


class _WeightAverage:
    """The uniform mean of the trained parameters over the last ``share`` of a phase's progress
    (stochastic weight averaging, Izmailov et al. 2018, on the poly schedule's tail): the model
    ends between the last steps' weights instead of at whichever one the time budget stopped on.
    ``share`` 0 = off. torch.optim.swa_utils.AveragedModel keeps the running mean, over the
    optimizer's parameters only (the frozen encoder is not copied); BatchNorm running
    statistics stay as trained (the decoder's are updated every step)."""

    def __init__(self, optimizer: torch.optim.Optimizer, share: float) -> None:
        self.params = nn.ParameterList([p for g in optimizer.param_groups for p in g["params"]])
        self.start = 1.0 - float(share)
        self.on = share > 0 and len(self.params) > 0
        self.mean: AveragedModel | None = None

    def update(self, progress: float) -> None:
        """After an optimizer step taken at ``progress`` (0..1) of the phase."""
        if not self.on or progress < self.start:
            return
        if self.mean is None:
            self.mean = AveragedModel(self.params)
        self.mean.update_parameters(self.params)

    @torch.no_grad()
    def apply(self) -> None:
        """Replace the parameters by their mean (once; no-op unless 2+ steps were averaged)."""
        if self.mean is None or int(self.mean.n_averaged) < 2:
            return
        for p, m in zip(self.params, self.mean.module):
            p.copy_(m)
        self.mean = None
