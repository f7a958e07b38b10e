"""Fine-tuning: Trainer (fast / full / fast+full), its settings, progress reports and results.

    from segcore.training import Trainer, TrainConfig, TrainCallbacks
    result = Trainer(model, TrainConfig(mode="full", time_budget_s=120)).fit(train_pairs, val_pairs)

Modules: config (TrainConfig, EpochReport, TrainCallbacks, TrainResult), data (augmentation,
feature cache), losses (segmentation_loss), trainer (Trainer), distributed (torchrun / DDP set-up).
"""

from .config import MODES, EpochReport, TrainCallbacks, TrainConfig, TrainResult
from .evaluate import evaluate_pairs
from .losses import segmentation_loss
from .trainer import Trainer, freeze_bn, resolve_device

__all__ = ["MODES", "EpochReport", "TrainCallbacks", "TrainConfig", "TrainResult", "Trainer",
           "evaluate_pairs", "freeze_bn", "resolve_device", "segmentation_loss"]
