"""Fine-tuning: Trainer (fast / full / fast+full), its settings, progress reports and results.

    from segcore.training import Trainer, TrainConfig, TrainCallbacks
    result = Trainer(model, TrainConfig(mode="full", time_budget_s=120)).fit(train_pairs, val_pairs)

Modules: config (TrainConfig, EpochReport, TrainCallbacks, TrainResult), data (augmentation,
feature cache), losses (segmentation_loss), trainer (Trainer: the orchestration), phases (the
fast and full phases behind one Phase interface), run (what they share: the step loop, DDP),
budget (time/epoch limits, progress and the ETA), distributed (torchrun / DDP set-up).
"""

from .config import MODES, EpochReport, TrainCallbacks, TrainConfig, TrainResult
from .evaluate import evaluate_pairs
from .losses import segmentation_loss
from ..devices import resolve_device
from ..models.base import freeze_bn
from .budget import StepEta
from .trainer import Trainer

__all__ = ["MODES", "EpochReport", "StepEta", "TrainCallbacks", "TrainConfig", "TrainResult", "Trainer",
           "evaluate_pairs", "freeze_bn", "resolve_device", "segmentation_loss"]
