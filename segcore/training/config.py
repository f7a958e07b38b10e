"""Training settings, progress reports and results (plain dataclasses, no torch state).

Conventions
- ``mode``: "fast" = the encoder up to its last ``tail_blocks`` blocks frozen, its features
  computed once per augmented view and cached; the decoder and those tail blocks train (their
  BatchNorm statistics stay frozen); "full" = every weight trains, the encoder's BatchNorm statistics stay
  frozen; "fast+full" = a fast warm-up (``fast_share`` of the budget) followed by full.
- Budget: ``time_budget_s`` (what the GUI uses) and/or ``epochs``; whichever ends first wins.
  With neither set, ``DEFAULT_EPOCHS`` epochs are run.
- Learning rate: poly schedule ``lr * (1 - progress) ** 0.9`` where progress is the larger of
  step/total-steps and elapsed/time-budget, so it decays to zero exactly when the budget ends.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Literal

Mode = Literal["auto", "fast", "full", "fast+full"]
MODES: tuple[str, ...] = ("auto", "fast", "full", "fast+full")
DEFAULT_EPOCHS = 20

# What "auto" means for ``mode`` and ``class_balance``, per kind of project (chosen on the
# development suite, tests/benchmarks/results.md "Suite", by the mean over its datasets of each
# kind). Binary projects: the cached-feature fast mode, no class weights. Multi-class projects:
# full mode with sqrt class weights (decoder LR x ``lr_head_factor``); fast mode + 2x LR scored
# 0.04 lower on msrc_v2 and 0.01 higher on ccp_clothing at k = 50 (the numbers of every setting
# tried are in the closing notes of issue 10).
AUTO = {"binary": {"mode": "fast", "class_balance": "none", "lr_head_factor": 1.0},
        "classes": {"mode": "full", "class_balance": "sqrt", "lr_head_factor": 1.0}}


@dataclass
class TrainConfig:
    """Everything a training run needs besides the model and the data."""

    mode: str = "auto"                   # "auto": AUTO[binary | classes]["mode"] (resolved by for_classes)
    epochs: int | None = None            # per phase for "fast"/"full"; full phase for "fast+full"
    fast_epochs: int | None = None       # "fast+full" only: epochs of the warm-up (default = epochs)
    time_budget_s: float | None = 55.0   # from the click to a saved version (segcore.loop.finetune;
                                         # a bare Trainer counts from fit()); + re-predicting ≈ 60 s
    budget_per_extra_image_s: float = 1.5  # loop.finetune adds this per training image beyond
                                         # budget_free_images (k=200: 60 s → 0.56 IoU, 300 s → 0.86)
    budget_free_images: int = 20
    fast_share: float = 0.3              # "fast+full": share of the time budget spent in fast
    input_size: int = 320                # training views / prediction tiles: input_size x input_size
    scale_policy: str = "auto"           # "auto": chosen from the training masks by
                                         # segcore.preprocess.choose_preset; "stretch" | "scale"
    working_scale: float = 0.0           # "scale": the object factor (0 = chosen from the masks)
    crop_jitter: tuple[float, float] = (0.8, 1.25)  # "scale": factor jitter of training crops
    fg_crop_share: float = 0.5           # "scale": share of crops centred on a labelled object pixel
    class_balance: str = "auto"          # "none" | "sqrt": CE / BCE weights (median freq / freq)^0.5;
                                         # "auto": AUTO[binary | classes]["class_balance"]
    batch_size: int = 8
    micro_batch: int = 4                 # forward/backward in chunks of >= this many samples, the
                                         # gradients summed: one update per batch, about half the
                                         # activation memory at batch 8 (fast step +889 → +377 MB)
    optimizer: str = "adamw"             # "adamw" | "sgd"
    lr_head: float = 1e-3                # decoder (and aux head)
    lr_backbone: float = 1e-4            # encoder (full mode)
    tail_blocks: int = 7                 # fast mode: also train the encoder's last N blocks on
                                         # features cached before them (0 = decoder only); Weizmann
                                         # k=20, 60 s: 0 → 0.74/0.44 IoU/BIoU, 7 → 0.79/0.44-0.49
    recompute_tail: bool = True          # fast mode: keep only each tail block's input for backward
                                         # and run the block again there (same gradients). On whole
                                         # views it saved 160 MB for a 5-13 % slower step; on
                                         # fast_crop's half-side crops ~50 MB for a 25-30 % slower
                                         # step. Off (more steps per click) was tried in session 18:
                                         # suite means unchanged, but the tile sets scored lower in
                                         # every paired click and collapsed twice at k=20 (0.69, 0.60)
    lr_tail: float = 7e-4                # those tail blocks (fast mode; 1e-4 → 0.755, 5e-4 → 0.791)
    weight_decay: float = 1e-4
    average_last: float = 0.0            # each phase ends with the mean of its trained weights
                                         # over this last share of its progress (0 = off); 0.3
                                         # on 7 binary sets k=5/20: 0.758/0.811 vs 0.767-0.769/
                                         # 0.808-0.817 without (results.md): not adopted
    freeze_pool_bn: bool = True          # fast mode: the decoder's BatchNorm after global pooling
                                         # (ASPP's image-pooling branch; models.base.global_pool_norms)
                                         # stays as initialised instead of normalising 4 pooled
                                         # values; 7 binary sets, seeds 0/1/2, k=5/20 means higher
                                         # in all 6 pairs: +0.002-0.005 / +0.005-0.052 (results.md)
    dice_weight: float = 0.0             # loss = BCE/CE + this x soft Dice
    momentum: float = 0.9                # SGD only
    poly_power: float = 0.9
    aux_weight: float = 0.4              # used when the model has an aux head (full mode)
    freeze_bn: str = "auto"              # "auto": encoder BN always frozen in full mode, decoder BN
                                         # frozen when batch_size < min_bn_batch; "all"; "none"
    min_bn_batch: int = 4
    scale_range: tuple[float, float] = (1.0, 1.6)  # zoom-in only: views never contain padding
    hflip: bool = True
    vflip: bool = False
    mirror_predict: bool = True          # with hflip: predictions average the image and its mirror
                                         # (segcore.preprocess.mirrored; stored in the preset)
    color_jitter: float = 0.2            # brightness/contrast/saturation +- this fraction
    fast_crop: float = 0.5               # fast mode: train on random crops of this share of each
                                         # cached view's side, cut in feature space (1 = whole
                                         # views): ~4x the steps in the budget; suite means of 7
                                         # binary sets k=5/20: 1 → 0.678/0.777, 0.8 → 0.744/0.789,
                                         # 0.65 → 0.754/0.803, 0.5 → 0.758/0.819 (results.md)
    fast_views: int = 6                  # augmented views per image cached in fast mode
    cache_limit_mb: int = 768            # fast-mode feature cache ceiling (float16)
    device: str = "auto"                 # "auto" | "cpu" | "cuda" | "cuda:N"
    amp: bool = True                     # mixed precision on CUDA only
    channels_last: bool = True           # NHWC tensors while training (faster oneDNN backward on CPU)
    seed: int = 0
    num_workers: int = 0                 # DataLoader workers (0: augment in the training thread)
    arch: str = "auto"                   # fresh model when there is none to start from; "auto":
                                         # segcore.models.default_arch per kind (arch_for)
    pretrained: bool = True              # ditto: ImageNet backbone for a fresh model
    switch_arch: bool = False            # True: when the active version is not an ``arch`` model,
                                         # start a fresh lineage of ``arch`` (the Advanced panel's
                                         # architecture choice); False: continue the active version

    def validate(self) -> None:
        """Raise ValueError with a clear message when a setting is out of range."""
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, not {self.epochs}")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ValueError(f"time_budget_s must be > 0, not {self.time_budget_s}")
        if self.input_size < 32:
            raise ValueError(f"input_size must be >= 32, not {self.input_size}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {self.batch_size}")
        if self.micro_batch < 1:
            raise ValueError(f"micro_batch must be >= 1, not {self.micro_batch}")
        if self.optimizer not in ("adamw", "sgd"):
            raise ValueError(f"optimizer must be 'adamw' or 'sgd', not {self.optimizer!r}")
        if self.freeze_bn not in ("auto", "all", "none"):
            raise ValueError(f"freeze_bn must be 'auto', 'all' or 'none', not {self.freeze_bn!r}")
        if self.tail_blocks < 0:
            raise ValueError(f"tail_blocks must be >= 0, not {self.tail_blocks}")
        if self.scale_policy not in ("auto", "stretch", "scale"):
            raise ValueError(f"scale_policy must be 'auto', 'stretch' or 'scale', not {self.scale_policy!r}")
        if not (self.working_scale >= 0):
            raise ValueError(f"working_scale must be >= 0, not {self.working_scale}")
        if self.class_balance not in ("auto", "none", "sqrt"):
            raise ValueError(f"class_balance must be 'auto', 'none' or 'sqrt', not {self.class_balance!r}")
        if not 0.0 < self.fast_crop <= 1.0:
            raise ValueError(f"fast_crop must be in (0, 1], not {self.fast_crop}")
        if not 0.0 <= self.average_last < 1.0:
            raise ValueError(f"average_last must be in [0, 1), not {self.average_last}")
        if not 0.0 < self.fast_share < 1.0:
            raise ValueError(f"fast_share must be in (0, 1), not {self.fast_share}")

    def arch_for(self, num_classes: int) -> str:
        """The architecture of a fresh model for ``num_classes`` classes: ``arch``, or for "auto"
        the per-kind default (segcore.models.default_arch)."""
        if self.arch != "auto":
            return self.arch
        from ..models import default_arch  # torch: only when a model is about to be built
        return default_arch(num_classes)

    def for_classes(self, num_classes: int) -> "TrainConfig":
        """This config with "auto" settings resolved for a model of ``num_classes`` outputs
        (1 logit or 2 classes = binary)."""
        kind = AUTO["binary" if num_classes <= 2 else "classes"]
        if self.arch == "auto":
            return replace(self, arch=self.arch_for(num_classes)).for_classes(num_classes)
        if self.mode != "auto" and self.class_balance != "auto":
            return self
        return replace(self, mode=kind["mode"] if self.mode == "auto" else self.mode,
                       class_balance=(kind["class_balance"] if self.class_balance == "auto"
                                      else self.class_balance),
                       lr_head=self.lr_head * (kind["lr_head_factor"] if self.mode == "auto" else 1.0))

    def budget_for(self, n_train: int) -> float | None:
        """The time budget for ``n_train`` training images (None = no limit)."""
        if self.time_budget_s is None:
            return None
        extra = max(0, int(n_train) - self.budget_free_images)
        return float(self.time_budget_s) + self.budget_per_extra_image_s * extra

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def augmentation(self) -> dict[str, Any]:
        """The augmentation settings segcore.training.data.view takes."""
        return {"scale_range": self.scale_range, "crop_jitter": self.crop_jitter, "hflip": self.hflip,
                "vflip": self.vflip, "color_jitter": self.color_jitter, "fg_crop_share": self.fg_crop_share}

    def preset_for(self, masks: Any) -> Any:
        """The preprocessing preset of a run on ``masks`` (the training masks), per scale_policy,
        mirror-averaged when training flips views left-right and ``mirror_predict`` is on."""
        return replace(self._geometry_for(masks), flip=bool(self.hflip and self.mirror_predict))

    def _geometry_for(self, masks: Any) -> Any:
        from ..preprocess import Preset, choose_preset, stretch_side
        if self.scale_policy == "stretch":
            side = stretch_side(masks, self.input_size)
            return Preset("stretch", side, reason="set in the training settings")
        chosen = choose_preset(masks, self.input_size)
        if self.working_scale > 0:
            return Preset("scale", self.input_size, scale=float(self.working_scale),
                          reason=f"working scale x{self.working_scale:g} set in the training settings")
        if self.scale_policy == "scale" and chosen.policy != "scale":
            return Preset("scale", self.input_size, scale=0.0, reason="aspect-kept views, fit to one view")
        return chosen


@dataclass
class EpochReport:
    """One epoch of one phase. val_* are per-image means on the held-out pairs (None: no held-out)."""

    phase: str          # "fast" | "full"
    epoch: int          # 1-based within the phase
    epochs: int         # planned epochs of the phase (an estimate under a time budget)
    train_loss: float
    val_iou: float | None
    val_biou: float | None
    elapsed_s: float    # since fit() started
    eta_s: float        # estimated seconds left for the whole run

    def to_row(self) -> dict[str, Any]:
        """The JSON-able metrics row the project's epoch log stores (Project.log_epoch)."""
        return {"phase": self.phase, "phase_epoch": self.epoch, "train_loss": self.train_loss,
                "val_iou": self.val_iou, "val_biou": self.val_biou, "elapsed_s": self.elapsed_s}

    @classmethod
    def from_row(cls, row: dict[str, Any], epochs: int) -> "EpochReport":
        """A stored row (Project.epoch_history) back as a report of a finished run of ``epochs``
        logged epochs (its ETA is 0); rows without ``phase_epoch`` use the run's ``epoch``."""
        return cls(row.get("phase", ""), int(row.get("phase_epoch", row["epoch"])), epochs,
                   float(row.get("train_loss", float("nan"))), row.get("val_iou"), row.get("val_biou"),
                   float(row.get("elapsed_s", 0.0)), 0.0)


class TrainCallbacks:
    """Override what you need, or pass functions: TrainCallbacks(on_epoch=print).

    Callbacks run in the training thread; a GUI must forward them to its own thread.
    """

    def __init__(self, on_step: Callable[[int, int, float], None] | None = None,
                 on_epoch: Callable[[EpochReport], None] | None = None,
                 on_message: Callable[[str], None] | None = None) -> None:
        if on_step is not None:
            self.on_step = on_step  # type: ignore[method-assign]
        if on_epoch is not None:
            self.on_epoch = on_epoch  # type: ignore[method-assign]
        if on_message is not None:
            self.on_message = on_message  # type: ignore[method-assign]

    def on_step(self, step: int, total: int, loss: float) -> None:
        """step is 1-based over the whole run; total is an estimate under a time budget."""

    def on_epoch(self, report: EpochReport) -> None:
        """Called after each epoch's validation."""

    def on_message(self, text: str) -> None:
        """Human-readable notes (phase changes, cache building, settings chosen)."""


@dataclass
class TrainResult:
    """What fit() returns. ``model`` is the trained copy, or None when cancelled."""

    model: Any                          # SegModel | None
    stopped_reason: str                 # "epochs done" | "time budget reached" | "cancelled"
    history: list[EpochReport] = field(default_factory=list)
    val_iou: float | None = None
    val_biou: float | None = None
    seconds: float = 0.0
    steps: int = 0

    @property
    def cancelled(self) -> bool:
        return self.stopped_reason == "cancelled"

    def metrics(self) -> dict[str, Any]:
        """JSON-able summary stored with a model version."""
        return {"val_iou": self.val_iou, "val_biou": self.val_biou,
                "seconds": round(self.seconds, 2), "steps": self.steps,
                "epochs": len(self.history), "stopped_reason": self.stopped_reason}
