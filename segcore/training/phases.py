"""The two training phases behind one interface, :class:`Phase`: ``run`` trains the model in
place, epoch by epoch, until the phase's budget (or cancel) says stop, and returns why it stopped.

- :class:`FastPhase` ("fast"): the encoder frozen up to its last ``tail_blocks`` blocks
  (``SegModel.freeze_encoder``), its features computed once per augmented view and cached
  (``fast_views`` per image, within ``cache_limit_mb`` and half the time left); the decoder and
  those tail blocks train on the cache.
- :class:`FullPhase` ("full"): every weight trains end to end on freshly augmented views; the
  encoder's BatchNorm stays as pretrained (``SegModel.freeze_encoder_bn``), the aux head (if any)
  adds ``aux_weight`` × its loss; AMP on CUDA.
Both freeze the decoder's BatchNorm for small batches (``RunContext.bn_frozen_head``) and run
each batch's forward/backward in chunks (``RunContext.accumulate``, ``config.micro_batch``): one
optimizer step per batch, with the activation memory of one chunk.
"""

from __future__ import annotations

import math
import time
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from ..memory import release_free_memory
from ..models.base import SegModel, freeze_bn, frozen_bn_as_affine, global_pool_norms
from ..preprocess import with_mirror
from .budget import PhaseBudget
from .data import AugmentedPairs, FeatureCache, FeatureCrops, ValPair, collate_features, normalize, view
from .run import RunContext


class Phase(Protocol):
    name: str

    def run(self, ctx: RunContext, model: SegModel, train: list, val: list[ValPair],
            limits: PhaseBudget) -> str:
        """Train ``model`` in place until ``limits`` say stop; return the stop reason."""
        ...


def _drop_aux(model: nn.Module, feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Cached features without the aux head's input (unless the decoder reads it)."""
    keep = tuple(getattr(model, "decoder_inputs", ()))
    return {k: v for k, v in feats.items() if k != "aux" or k in keep}


class _Head(nn.Module):
    """forward(features, size) → model.head_from_cache: lets DDP wrap the decoder-only step."""

    def __init__(self, model: nn.Module, tail_blocks: int = 0, recompute_tail: bool = False) -> None:
        super().__init__()
        self.model = model
        self.tail_blocks = tail_blocks
        self.recompute_tail = recompute_tail

    def forward(self, features: dict[str, torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        return self.model.head_from_cache(features, size, self.tail_blocks, self.recompute_tail)


class FastPhase:
    name = "fast"

    def run(self, ctx: RunContext, model: SegModel, train: list, val: list[ValPair],
            limits: PhaseBudget) -> str:
        cfg = ctx.config
        tail = max(0, min(cfg.tail_blocks, model.max_tail_blocks()))
        tail_modules = model.freeze_encoder(tail)
        cache, val_feats = self._build_cache(ctx, model, train, val, limits.deadline, tail)
        release_free_memory()  # the encoder's activations of the feature pass (see segcore.memory)
        if ctx.preset.policy != "stretch":
            val_feats = None  # scale: held-out images are predicted in tiles by the full model
        crop = cfg.fast_crop < 1.0 and getattr(model, "fast_crop_ok", False)
        data = FeatureCrops(cache, cfg.fast_crop, cfg.seed + 1000 * ctx.rank) if crop else cache
        batches, n_batches, batch = ctx.loader(data, collate_features)
        freeze_head_bn = ctx.bn_frozen_head(batch)
        pooled = global_pool_norms(model.decoder) if cfg.freeze_pool_bn else []

        def freeze_head() -> None:
            if freeze_head_bn:
                freeze_bn(model.decoder)
            for m in pooled:
                freeze_bn(m)

        freeze_head()
        with frozen_bn_as_affine(model):  # the tail's frozen BN keeps no input for backward
            head = ctx.wrap(_Head(model, tail, cfg.recompute_tail and tail > 0))
            tail_params = [p for m in tail_modules for p in m.parameters() if p.requires_grad]
            optimizer = ctx.optimizer([([p for p in model.decoder.parameters() if p.requires_grad], cfg.lr_head),
                                       (tail_params, cfg.lr_tail)])

            def set_train() -> None:
                model.eval()
                model.decoder.train()
                freeze_head()

            def step(batch_: Any) -> torch.Tensor:
                feats, labels = batch_
                feats = {k: v.to(ctx.device).contiguous(memory_format=ctx.memory_format) for k, v in feats.items()}
                labels = labels.to(ctx.device)
                optimizer.zero_grad(set_to_none=True)
                loss, finite = ctx.accumulate(
                    labels.shape[0],
                    lambda c: ctx.loss_fn(head({k: v[c] for k, v in feats.items()}, labels.shape[-2:]), labels[c]))
                if finite:
                    optimizer.step()
                else:
                    optimizer.zero_grad(set_to_none=True)
                return loss

            what = f"the decoder and the encoder's last {tail} blocks" if tail else "the decoder"
            ctx.callbacks.on_message(f"fast mode: training {what} on {len(cache)} cached views")
            return ctx.run_epochs("fast", limits, batches, n_batches, step, optimizer,
                                  lambda: ctx.validate(model, val, val_feats, tail), set_train)

    @torch.no_grad()
    def _build_cache(self, ctx: RunContext, model: SegModel, train: list, val: list[ValPair],
                     deadline: float | None, tail: int = 0
                     ) -> tuple[FeatureCache, list[dict[str, torch.Tensor]]]:
        """Encoder features (up to its trainable tail) of fast_views augmented views per image
        (view 0 = no augmentation)."""
        cfg = ctx.config
        model.eval()
        mine = train[ctx.rank::ctx.world] if ctx.world > 1 else train
        if ctx.world > 1 and len(mine) < math.ceil(len(train) / ctx.world):
            mine = mine + train[:1]  # equal shard sizes keep DDP ranks in step
        rng = np.random.default_rng(cfg.seed + 1000 * ctx.rank)
        cache = FeatureCache()
        views = cfg.fast_views
        ctx.callbacks.on_message(f"fast mode: computing encoder features of {len(mine)} images")
        t_start = time.monotonic()
        for i, pair in enumerate(mine):
            ctx.check_cancel()
            if i == 1 and deadline is not None and ctx.world == 1:  # DDP ranks must stay equal
                views = self._views_within_budget(ctx, views, len(mine), time.monotonic() - t_start,
                                                  deadline, cache)
            imgs, labs = [], []
            for v in range(views):
                img, lab = view(pair, ctx.preset, rng, identity=(v == 0), **cfg.augmentation())
                imgs.append(normalize(img, model.mean, model.std))
                labs.append(torch.from_numpy(lab.astype(np.int64)))
            batch_in = torch.stack(imgs).to(ctx.device).contiguous(memory_format=ctx.memory_format)
            feats = _drop_aux(model, model.cached_features(batch_in, tail))
            cache.add(feats, torch.stack(labs))
            if i == 0:
                per_image = cache.nbytes()
                limit = cfg.cache_limit_mb * 2**20
                fit = max(1, int(limit // max(per_image * len(mine) / views, 1)))
                if fit < views:
                    ctx.callbacks.on_message(f"fast mode: feature cache limited to {fit} views per image")
                    views = fit
                    del cache.features[views:], cache.labels[views:]
        val_feats: list[dict[str, torch.Tensor]] = []
        for pair in (val if ctx.preset.policy == "stretch" else []):
            x = normalize(pair.image, model.mean, model.std).unsqueeze(0).to(ctx.device)
            if ctx.preset.flip:  # mirror-averaged scoring: the mirror image's features too
                x = with_mirror(x)
            f = model.cached_features(x, tail)
            val_feats.append({k: v.to("cpu", torch.float16) for k, v in _drop_aux(model, f).items()})
        return cache, val_feats

    @staticmethod
    def _views_within_budget(ctx: RunContext, views: int, n_images: int, first_s: float, deadline: float,
                             cache: FeatureCache) -> int:
        """Fewer cached views per image when building the cache would eat over half the budget."""
        per_view = first_s / max(len(cache), 1)
        allowed = int(0.5 * (deadline - time.monotonic()) / max(per_view * max(n_images - 1, 1), 1e-6))
        fit = max(1, min(views, allowed))
        if fit < views:
            ctx.callbacks.on_message(f"fast mode: {fit} views per image to stay within the time budget")
            del cache.features[fit:], cache.labels[fit:]
        return fit


class FullPhase:
    name = "full"

    def run(self, ctx: RunContext, model: SegModel, train: list, val: list[ValPair],
            limits: PhaseBudget) -> str:
        cfg = ctx.config
        for p in model.parameters():
            p.requires_grad_(True)
        model.freeze_encoder_bn()  # backbone BN statistics and affine stay as pretrained
        if model.aux_head is not None and cfg.aux_weight <= 0:
            for p in model.aux_head.parameters():
                p.requires_grad_(False)
        dataset = AugmentedPairs(train, ctx.preset, seed=cfg.seed + 7 * ctx.rank, **cfg.augmentation())
        batches, n_batches, batch = ctx.loader(dataset)
        freeze_head = ctx.bn_frozen_head(batch)
        heads = [model.decoder] + ([model.aux_head] if model.aux_head is not None else [])
        if freeze_head:
            for h in heads:
                freeze_bn(h)
        with frozen_bn_as_affine(model):  # the pretrained encoder's frozen BN: no saved inputs
            wrapped = ctx.wrap(model)
            enc = [p for p in model.encoder.parameters() if p.requires_grad]
            head_params = [p for h in heads for p in h.parameters() if p.requires_grad]
            optimizer = ctx.optimizer([(enc, cfg.lr_backbone), (head_params, cfg.lr_head)])
            use_amp = cfg.amp and ctx.device.type == "cuda"
            scaler = torch.amp.GradScaler("cuda") if use_amp else None

            def set_train() -> None:
                model.train()
                model.freeze_encoder_bn()
                if freeze_head:
                    for h in heads:
                        freeze_bn(h)

            def step(batch_: Any) -> torch.Tensor:
                images, labels = (t.to(ctx.device, non_blocking=True) for t in batch_)
                images = images.contiguous(memory_format=ctx.memory_format)

                def chunk_loss(c: slice) -> torch.Tensor:
                    with torch.autocast(ctx.device.type, enabled=use_amp):
                        out = wrapped(images[c])
                        loss = ctx.loss_fn(out["out"], labels[c])
                        if "aux" in out and cfg.aux_weight > 0:
                            loss = loss + cfg.aux_weight * ctx.loss_fn(out["aux"], labels[c])
                    return loss

                optimizer.zero_grad(set_to_none=True)
                loss, finite = ctx.accumulate(images.shape[0], chunk_loss,
                                              None if scaler is None else lambda t: scaler.scale(t).backward())
                if not finite:
                    optimizer.zero_grad(set_to_none=True)
                    return loss
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                return loss

            enc_bn = "encoder BN frozen" if model.encoder_bn_frozen else "encoder BN learns"
            ctx.callbacks.on_message(
                f"full mode: training all weights on {len(train)} images ({enc_bn}"
                f"{', decoder BN frozen' if freeze_head else ''}, batch {batch}"
                f"{f' in {len(ctx.micro_batches(batch))} chunks' if len(ctx.micro_batches(batch)) > 1 else ''}"
                f", {ctx.device})")
            return ctx.run_epochs("full", limits, batches, n_batches, step, optimizer,
                                  lambda: ctx.validate(model, val), set_train)


PHASES: dict[str, Phase] = {"fast": FastPhase(), "full": FullPhase()}
