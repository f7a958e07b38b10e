"""Trainer: fine-tune a SegModel on (image, mask) pairs, with held-out metrics, cancel and NaN guard.

The caller's model is never touched: fit() trains a deep copy and returns it only on success.
cancel() is thread-safe (a threading.Event, checked before every step) and stops within one step.
Under torch.distributed (DDP, see segcore.training.distributed) the trained module is wrapped in
DistributedDataParallel, data is sharded with DistributedSampler, and rank 0 decides when to stop
(time budget, cancel) and broadcasts that decision and the LR progress every step, so every rank
runs the same number of steps with the same learning rates.
"""

from __future__ import annotations

import copy
import functools
import math
import threading
import time
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from ..devices import resolve_device
from ..errors import TrainingError
from .config import DEFAULT_EPOCHS, EpochReport, TrainCallbacks, TrainConfig, TrainResult
from ..preprocess import Preset
from .data import (AugmentedPairs, FeatureCache, ValPair, _load_pair, collate_features, normalize,
                   prepare_train_pairs, prepare_val_pairs, view)
from .evaluate import evaluate_prepared
from .losses import class_weights, segmentation_loss

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class _Cancelled(Exception):
    pass


def _dist() -> tuple[bool, int, int]:
    """(active, rank, world_size) of torch.distributed."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return True, torch.distributed.get_rank(), torch.distributed.get_world_size()
    return False, 0, 1


def freeze_bn(module: nn.Module) -> None:
    """BatchNorm layers of ``module``: eval mode (running stats fixed) and affine params frozen."""
    for m in module.modules():
        if isinstance(m, _BN):
            m.eval()
            for p in m.parameters(recurse=False):
                p.requires_grad_(False)


def _freeze_encoder_bn(model: nn.Module) -> None:
    """Full mode's encoder freeze: the model's own rule (SegModel.freeze_encoder_bn: pretrained
    BatchNorm statistics stay, a fresh encoder's learn), else every encoder BatchNorm."""
    method = getattr(model, "freeze_encoder_bn", None)
    if callable(method):
        method()
    else:
        freeze_bn(model.encoder)


def _drop_aux(model: nn.Module, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Cached features without the aux head's input (unless the decoder reads it)."""
    keep = tuple(getattr(model, "decoder_inputs", ()))
    return {k: v for k, v in feats.items() if k != "aux" or k in keep}


class _Head(nn.Module):
    """forward(features, size) → model.forward_head: lets DDP wrap the decoder-only step."""

    def __init__(self, model: nn.Module, tail_blocks: int = 0) -> None:
        super().__init__()
        self.model = model
        self.tail_blocks = tail_blocks

    def forward(self, features: dict[str, torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        return self.model.head_from_cache(features, size, self.tail_blocks)


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
        self.distributed, self.rank, self.world = _dist()
        self._step = 0
        self._start = 0.0
        self._total_estimate = 0
        self._fmt = torch.contiguous_format

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
        torch.manual_seed(cfg.seed + self.rank)
        self._start = time.monotonic()
        self._step = 0
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
        # NHWC: oneDNN's convolution backward is ~1.6x faster in it on CPU (decoder step
        # 0.52 -> 0.32 s, decoder + 7 encoder blocks 0.85 -> 0.67 s at batch 8, 320 px)
        self._fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        model = copy.deepcopy(self.source).to(self.device, memory_format=self._fmt)
        history: list[EpochReport] = []
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
                deadline, epochs = self._phase_budget(phase, phases)
                runner = self._run_fast if phase == "fast" else self._run_full
                reason = runner(model, train, val, epochs, deadline, history)
            if self.distributed and self.world > 1:
                for t in model.state_dict().values():  # buffers (running stats) follow rank 0
                    torch.distributed.broadcast(t, src=0)
        except _Cancelled:
            self.callbacks.on_message("training cancelled; the previous model is unchanged")
            return TrainResult(None, "cancelled", history, seconds=self._elapsed(), steps=self._step)
        model.eval()
        model.to("cpu", memory_format=torch.contiguous_format)
        model.meta = {**(getattr(model, "meta", None) or {}), "preset": preset.to_dict(),
                      "input_size": preset.input_size}
        last = history[-1] if history else None
        return TrainResult(model, reason, history, last.val_iou if last else None,
                           last.val_biou if last else None, self._elapsed(), self._step)

    # ---------------------------------------------------------------- budget
    def _elapsed(self) -> float:
        return time.monotonic() - self._start

    def _phase_budget(self, phase: str, phases: list[str]) -> tuple[float | None, int | None]:
        """(deadline as monotonic time or None, epoch limit or None) of one phase."""
        cfg = self.config
        deadline = None
        if cfg.time_budget_s is not None:
            end = self._start + cfg.time_budget_s
            if phase == "fast" and len(phases) == 2:
                end = self._start + cfg.time_budget_s * cfg.fast_share
            deadline = end
        if phase == "fast" and len(phases) == 2:
            epochs = cfg.fast_epochs if cfg.fast_epochs is not None else cfg.epochs
        else:
            epochs = cfg.epochs
        if epochs is None and deadline is None:
            epochs = DEFAULT_EPOCHS
        return deadline, epochs

    def _sync(self, progress: float, stop: bool) -> tuple[float, bool]:
        """Rank 0's (progress, stop) for every rank; identity without DDP."""
        if not self.distributed or self.world == 1:
            return progress, stop
        t = torch.tensor([progress, 1.0 if stop else 0.0], dtype=torch.float64)
        torch.distributed.broadcast(t, src=0)
        return float(t[0]), bool(t[1] > 0.5)

    # ---------------------------------------------------------------- optimisation
    def _optimizer(self, groups: list[tuple[list[nn.Parameter], float]]) -> torch.optim.Optimizer:
        cfg = self.config
        params = [{"params": ps, "lr": lr, "initial_lr": lr} for ps, lr in groups if ps]
        if not params:
            raise TrainingError("nothing to train: every parameter is frozen")
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(params, lr=params[0]["lr"], momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay)
        return torch.optim.AdamW(params, lr=params[0]["lr"], weight_decay=cfg.weight_decay)

    def _loop(self, phase: str, batches: Callable[[int], Iterable[Any]], n_batches: int,
              step_fn: Callable[[Any], torch.Tensor], optimizer: torch.optim.Optimizer,
              epochs: int | None, deadline: float | None, validate: Callable[[], tuple],
              history: list[EpochReport], set_train: Callable[[], None]) -> str:
        """Epoch/step loop shared by both modes; returns the stop reason."""
        cfg = self.config
        phase_start = time.monotonic()
        phase_steps = (epochs or 0) * n_batches
        step_in_phase = 0
        epoch = 0
        reason = "epochs done"
        while True:
            epoch += 1
            set_train()
            losses: list[float] = []
            stop = False
            for batch in batches(epoch):
                now = time.monotonic()
                progress = step_in_phase / phase_steps if phase_steps else 0.0
                if deadline is not None:
                    progress = max(progress, (now - phase_start) / max(deadline - phase_start, 1e-6))
                want_stop = self._cancel.is_set() or progress >= 1.0
                progress, stop = self._sync(min(progress, 1.0), want_stop)
                if stop:
                    break
                factor = (1.0 - progress) ** cfg.poly_power
                for g in optimizer.param_groups:
                    g["lr"] = g["initial_lr"] * factor
                loss = step_fn(batch)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise TrainingError(
                        f"training stopped: the loss became {value} at step {self._step + 1} "
                        f"({phase} phase, epoch {epoch}); the learning rate "
                        f"({optimizer.param_groups[0]['lr']:.3g}) may be too high or a mask invalid. "
                        f"The previous model is unchanged.")
                self._step += 1
                step_in_phase += 1
                losses.append(value)
                self.callbacks.on_step(self._step, max(self._estimate_total(phase_start, step_in_phase,
                                                                            phase_steps, deadline),
                                                       self._step), value)
            if self._cancel.is_set():
                raise _Cancelled()
            if stop and deadline is not None:
                reason = "time budget reached"
            if not losses and epoch > 1:
                return reason  # nothing changed since the last epoch's report
            val_iou, val_biou = validate()
            elapsed_phase = time.monotonic() - phase_start
            if epochs is not None:
                planned = epochs
            else:
                planned = max(epoch, int(math.ceil((deadline - phase_start) / max(elapsed_phase / epoch, 1e-6))))
            report = EpochReport(phase, epoch, planned, float(np.mean(losses)) if losses else float("nan"),
                                 val_iou, val_biou, self._elapsed(), self._eta(phase_start, epoch, planned, deadline))
            history.append(report)
            self.callbacks.on_epoch(report)
            if stop or (epochs is not None and epoch >= epochs):
                return reason if stop else "epochs done"

    def _estimate_total(self, phase_start: float, step_in_phase: int, phase_steps: int,
                        deadline: float | None) -> int:
        if deadline is None:
            return self._step - step_in_phase + phase_steps
        frac = (time.monotonic() - phase_start) / max(deadline - phase_start, 1e-6)
        est = int(step_in_phase / max(frac, 1e-6))
        if phase_steps:
            est = min(est, phase_steps)
        return self._step - step_in_phase + est

    def _eta(self, phase_start: float, epoch: int, planned: int, deadline: float | None) -> float:
        now = time.monotonic()
        if self.config.time_budget_s is not None:
            return max(0.0, self._start + self.config.time_budget_s - now)
        per_epoch = (now - phase_start) / max(epoch, 1)
        eta = per_epoch * max(planned - epoch, 0)
        if self.config.mode == "fast+full" and deadline is None and planned and epoch <= planned:
            pass  # the full phase's length is unknown until it starts; this is a lower bound
        return eta

    def _bn_frozen_head(self, effective_batch: int) -> bool:
        cfg = self.config
        if cfg.freeze_bn == "all":
            return True
        if cfg.freeze_bn == "none":
            return False
        return effective_batch < cfg.min_bn_batch

    def _wrap(self, module: nn.Module) -> nn.Module:
        if not self.distributed or self.world == 1:
            return module
        from torch.nn.parallel import DistributedDataParallel as DDP
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DDP(module, device_ids=ids)

    def _sampler(self, dataset: Any, epoch_seed: int = 0):
        if self.distributed and self.world > 1:
            return DistributedSampler(dataset, num_replicas=self.world, rank=self.rank,
                                      shuffle=True, seed=self.config.seed)
        gen = torch.Generator()
        gen.manual_seed(self.config.seed + epoch_seed)
        return RandomSampler(dataset, generator=gen)

    def _make_loader(self, dataset: Any, collate=None) -> tuple[DataLoader, Any, int]:
        cfg = self.config
        sampler = self._sampler(dataset)
        per_rank = math.ceil(len(dataset) / self.world)
        batch = min(cfg.batch_size, per_rank)
        # keep every sample, except a last batch of one (BatchNorm cannot train on it)
        loader = DataLoader(dataset, batch_size=batch, sampler=sampler, drop_last=per_rank % batch == 1,
                            num_workers=cfg.num_workers, collate_fn=collate)
        return loader, sampler, batch

    def _batches(self, loader: DataLoader, sampler: Any) -> Callable[[int], Iterable[Any]]:
        def gen(epoch: int) -> Iterable[Any]:
            if isinstance(sampler, DistributedSampler):
                sampler.set_epoch(epoch)
            return loader
        return gen

    # ---------------------------------------------------------------- validation
    def _validate(self, model: nn.Module, val: list[ValPair],
                  features: list[dict[str, torch.Tensor]] | None = None,
                  tail: int = 0) -> tuple[float | None, float | None]:
        if self.rank != 0:
            return None, None
        return evaluate_prepared(model, val, self.device, features, tail, self.preset)

    # ---------------------------------------------------------------- fast mode
    def _run_fast(self, model: nn.Module, train: list, val: list[ValPair], epochs: int | None,
                  deadline: float | None, history: list[EpochReport]) -> str:
        cfg = self.config
        tail = max(0, min(cfg.tail_blocks, model.max_tail_blocks()))
        tail_modules = model.tail_modules(tail)
        for p in model.parameters():
            p.requires_grad_(False)
        for p in model.decoder.parameters():
            p.requires_grad_(True)
        for m in tail_modules:
            for p in m.parameters():
                p.requires_grad_(True)
            freeze_bn(m)  # encoder BN statistics and affine stay as pretrained (as in full mode)
        cache, val_feats = self._build_cache(model, train, val, deadline, tail)
        if self.preset is not None and self.preset.policy != "stretch":
            val_feats = None  # scale: held-out images are predicted in tiles by the full model
        loader, sampler, batch = self._make_loader(cache, collate_features)
        freeze_head_bn = self._bn_frozen_head(batch)
        if freeze_head_bn:
            freeze_bn(model.decoder)
        head = self._wrap(_Head(model, tail))
        tail_params = [p for m in tail_modules for p in m.parameters() if p.requires_grad]
        optimizer = self._optimizer([([p for p in model.decoder.parameters() if p.requires_grad], cfg.lr_head),
                                     (tail_params, cfg.lr_tail)])
        size = (self.preset.input_size, self.preset.input_size)

        def set_train() -> None:
            model.eval()
            model.decoder.train()
            if freeze_head_bn:
                freeze_bn(model.decoder)

        def step(batch_: Any) -> torch.Tensor:
            feats, labels = batch_
            feats = {k: v.to(self.device).contiguous(memory_format=self._fmt) for k, v in feats.items()}
            labels = labels.to(self.device)
            loss = self.loss_fn(head(feats, size), labels)
            optimizer.zero_grad(set_to_none=True)
            if math.isfinite(float(loss.detach())):
                loss.backward()
                optimizer.step()
            return loss

        what = f"the decoder and the encoder's last {tail} blocks" if tail else "the decoder"
        self.callbacks.on_message(f"fast mode: training {what} on {len(cache)} cached views")
        return self._loop("fast", self._batches(loader, sampler), len(loader), step, optimizer, epochs,
                          deadline, lambda: self._validate(model, val, val_feats, tail), history, set_train)

    @torch.no_grad()
    def _build_cache(self, model: nn.Module, train: list, val: list[ValPair], deadline: float | None,
                     tail: int = 0) -> tuple[FeatureCache, list[dict[str, torch.Tensor]]]:
        """Encoder features (up to its trainable tail) of fast_views augmented views per image
        (view 0 = no augmentation)."""
        cfg = self.config
        model.eval()
        mine = train[self.rank::self.world] if self.world > 1 else train
        if self.world > 1 and len(mine) < math.ceil(len(train) / self.world):
            mine = mine + train[:1]  # equal shard sizes keep DDP ranks in step
        rng = np.random.default_rng(cfg.seed + 1000 * self.rank)
        cache = FeatureCache()
        views = cfg.fast_views
        self.callbacks.on_message(f"fast mode: computing encoder features of {len(mine)} images")
        t_start = time.monotonic()
        for i, pair in enumerate(mine):
            if self._cancel.is_set():
                raise _Cancelled()
            if i == 1 and deadline is not None and self.world == 1:  # DDP ranks must stay equal
                views = self._views_within_budget(views, len(mine), time.monotonic() - t_start, deadline, cache)
            imgs, labs = [], []
            for v in range(views):
                img, lab = view(pair, self.preset, rng, identity=(v == 0), **cfg.augmentation())
                imgs.append(normalize(img, model.mean, model.std))
                labs.append(torch.from_numpy(lab.astype(np.int64)))
            batch_in = torch.stack(imgs).to(self.device).contiguous(memory_format=self._fmt)
            feats = model.cached_features(batch_in, tail)
            feats = _drop_aux(model, feats)
            cache.add(feats, torch.stack(labs))
            if i == 0:
                per_image = cache.nbytes()
                limit = cfg.cache_limit_mb * 2**20
                fit = max(1, int(limit // max(per_image * len(mine) / views, 1)))
                if fit < views:
                    self.callbacks.on_message(f"fast mode: feature cache limited to {fit} views per image")
                    views = fit
                    del cache.features[views:], cache.labels[views:]
        val_feats: list[dict[str, torch.Tensor]] = []
        for pair in (val if self.preset is None or self.preset.policy == "stretch" else []):
            x = normalize(pair.image, model.mean, model.std).unsqueeze(0).to(self.device)
            f = model.cached_features(x, tail)
            val_feats.append({k: v[0].to("cpu", torch.float16) for k, v in _drop_aux(model, f).items()})
        return cache, val_feats

    def _views_within_budget(self, views: int, n_images: int, first_s: float, deadline: float,
                             cache: FeatureCache) -> int:
        """Fewer cached views per image when building the cache would eat over half the budget."""
        per_view = first_s / max(len(cache), 1)
        allowed = int(0.5 * (deadline - time.monotonic()) / max(per_view * max(n_images - 1, 1), 1e-6))
        fit = max(1, min(views, allowed))
        if fit < views:
            self.callbacks.on_message(f"fast mode: {fit} views per image to stay within the time budget")
            del cache.features[fit:], cache.labels[fit:]
        return fit

    # ---------------------------------------------------------------- full mode
    def _run_full(self, model: nn.Module, train: list, val: list[ValPair], epochs: int | None,
                  deadline: float | None, history: list[EpochReport]) -> str:
        cfg = self.config
        for p in model.parameters():
            p.requires_grad_(True)
        _freeze_encoder_bn(model)  # backbone BN statistics and affine stay as pretrained
        if model.aux_head is not None and cfg.aux_weight <= 0:
            for p in model.aux_head.parameters():
                p.requires_grad_(False)
        dataset = AugmentedPairs(train, self.preset, seed=cfg.seed + 7 * self.rank, **cfg.augmentation())
        loader, sampler, batch = self._make_loader(dataset)
        freeze_head = self._bn_frozen_head(batch)
        heads = [model.decoder] + ([model.aux_head] if model.aux_head is not None else [])
        if freeze_head:
            for h in heads:
                freeze_bn(h)
        wrapped = self._wrap(model)
        enc = [p for p in model.encoder.parameters() if p.requires_grad]
        head_params = [p for h in heads for p in h.parameters() if p.requires_grad]
        optimizer = self._optimizer([(enc, cfg.lr_backbone), (head_params, cfg.lr_head)])
        use_amp = cfg.amp and self.device.type == "cuda"
        scaler = torch.amp.GradScaler("cuda") if use_amp else None

        def set_train() -> None:
            model.train()
            _freeze_encoder_bn(model)
            if freeze_head:
                for h in heads:
                    freeze_bn(h)

        def step(batch_: Any) -> torch.Tensor:
            images, labels = (t.to(self.device, non_blocking=True) for t in batch_)
            images = images.contiguous(memory_format=self._fmt)
            with torch.autocast(self.device.type, enabled=use_amp):
                out = wrapped(images)
                loss = self.loss_fn(out["out"], labels)
                if "aux" in out and cfg.aux_weight > 0:
                    loss = loss + cfg.aux_weight * self.loss_fn(out["aux"], labels)
            optimizer.zero_grad(set_to_none=True)
            if not math.isfinite(float(loss.detach())):
                return loss
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            return loss

        enc_bn = "encoder BN frozen" if getattr(model, "encoder_bn_frozen", True) else "encoder BN learns"
        self.callbacks.on_message(
            f"full mode: training all weights on {len(train)} images ({enc_bn}"
            f"{', decoder BN frozen' if freeze_head else ''}, batch {batch}, {self.device})")
        return self._loop("full", self._batches(loader, sampler), len(loader), step, optimizer, epochs,
                          deadline, lambda: self._validate(model, val), history, set_train)
