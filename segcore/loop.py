"""The human-in-the-loop cycle as two functions the GUI, the CLI and the benchmarks share.

finetune(project, config): DONE images → their fixed roles (train / held out) → train from the ACTIVE
    version (or a fresh ImageNet-initialised model) → save a new version (parent = active),
    activate it unless it is surely worse than its parent on the held-out images
    (``surely_worse``: then the parent stays active) → FinetuneResult.
predict_project(project, predictor, stems): predict in the given order, store predictions and
    uncertainty, never touch the user's masks, refresh IoU/BIoU of images with masks.

Held-out rule (stable, visible): each DONE image's role is decided once, when it first becomes
done, and stored in the index (segcore.roles: ~15 %, at least one once >= 4 are done; below 4
none is, and metrics are None). ``Project.training_split`` reads them; ``split_held_out(stems)``
applies the same rule to a plain list of stems (the CLI's folders, which have no index).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence, TYPE_CHECKING

import numpy as np

from . import roles
from .errors import TrainingError
from .training import EpochReport, TrainCallbacks, TrainConfig, Trainer
from .training.evaluate import evaluate_pairs
from .versions import ModelStore

if TYPE_CHECKING:  # the type only: no import cycle at run time
    from .project import Project

SAVE_RESERVE_S = 0.5  # writing the new version (measured ~0.1-0.3 s for MobileNetV2 DeepLabV3+)
CRF_RESERVE_S = 3.0   # deciding DenseCRF on the held-out images (segcore.crf.decide), inside the budget
MIN_FOR_HELD_OUT = roles.MIN_FOR_HELD_OUT
#: A new version is saved but not activated when it is surely worse than its parent on the
#: held-out images both were scored on (per-image IoU, no CRF): the mean drop is at least
#: KEEP_DROP and consistent across images (the one-sided KEEP_CONFIDENCE upper bound of the
#: mean change, Student t, is below 0; segcore.crf.gain_bound), or the mean drop is at least
#: KEEP_LARGE_DROP (the only rule with a single held-out image: no bound exists). A click
#: can end in a broken model: on the development suite a ph2_tiles click at k = 20 (seed 1)
#: ended predicting nothing, test IoU 0.10 against the parent's 0.73, and a ph2_skin_lesion
#: click at k = 20 (seed 0) fell to 0.647 from 0.852, its 3 held-out images 0.70 → 0.47 with one
#: rising, so no bound (tests/benchmarks/results.md); the next click then trained from it. In 76
#: suite clicks of session 20 that was the only mean drop >= 0.2 (the next largest, 0.13, came
#: with a better test IoU). The user can still activate the new version under Versions.
KEEP_DROP = 0.02
KEEP_CONFIDENCE = 0.90
KEEP_LARGE_DROP = 0.2
TOO_FEW_MESSAGE = "too few done images to hold any out (need at least 4); no held-out metrics"


def split_held_out(stems: Sequence[str]) -> tuple[list[str], list[str]]:
    """(train stems, held-out stems), both sorted, for a plain list of stems without an index
    (the rule a project applies to its first batch of done images; see segcore.roles)."""
    assigned = roles.assign(stems, 0, 0)
    held = sorted(s for s, r in assigned.items() if r == roles.ROLE_HELD_OUT)
    return sorted(s for s, r in assigned.items() if r != roles.ROLE_HELD_OUT), held


def per_image_scores(model: Any, pairs: Sequence[tuple], preset: Any,
                     device: Any) -> dict[str, list[float | None]]:
    """{stem: [IoU, BIoU]} of ``model`` on each held-out pair (the Trainer's scoring, one image at
    a time, with ``preset`` or, when None, the model's own), so versions can be compared on the
    images held out for both."""
    out: dict[str, list[float | None]] = {}
    for pair in pairs:
        iou, biou = evaluate_pairs(model, [pair], preset, device)
        out[str(pair[2])] = [None if iou is None or iou != iou else float(iou),
                             None if biou is None or biou != biou else float(biou)]
    return out


def surely_worse(parent: dict[str, list[float | None]], new: dict[str, list[float | None]]
                 ) -> tuple[bool, float | None, float | None, int]:
    """Whether the ``new`` per-image held-out scores are surely worse than the ``parent``'s
    (see KEEP_DROP); → (worse, parent mean IoU, new mean IoU, images compared). Images without
    an IoU in both are left out."""
    from .crf import gain_bound
    both: list[tuple[float, float]] = []
    for stem, scores in parent.items():
        a, b = scores[0], (new.get(stem) or [None])[0]
        if a is not None and b is not None:
            both.append((float(a), float(b)))
    if not both:
        return False, None, None, 0
    old_iou = float(np.mean([a for a, _ in both]))
    new_iou = float(np.mean([b for _, b in both]))
    drops = [a - b for a, b in both]
    mean_drop, bound = gain_bound(drops, KEEP_CONFIDENCE)
    worse = mean_drop >= KEEP_LARGE_DROP or (mean_drop >= KEEP_DROP and bound > 0)  # bound: -inf for 1
    return bool(worse), old_iou, new_iou, len(both)


def class_scores(model: Any, pairs: Sequence[tuple], class_names: Sequence[str],
                 device: Any) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """Per-class (IoU, Boundary IoU) of ``model`` over the held-out pairs through the app's
    prediction path (segcore.inference.Predictor), as segcore.metrics.Evaluation pools them
    (IoU: pixels pooled, void ignored; BIoU: mean over the images holding the class).
    Two {name: score or None} dicts."""
    from .inference import Predictor
    from .metrics import Evaluation

    scores = Evaluation(len(class_names))
    predictor = Predictor(model, device=device, optimize=False)  # the model's own preset
    for image, mask, stem in pairs:
        pred = predictor.predict(image).mask
        if pred.shape == mask.shape:
            scores.add(mask, pred, stem)
    summary = scores.summary()

    def named(values: list[float]) -> dict[str, float | None]:
        return {name: (None if v != v else float(v)) for name, v in zip(class_names, values)}
    return named(summary["class_iou"]), named(summary["class_biou"])


def worst_classes(scores: dict[str, float | None], n: int = 3) -> list[tuple[str, float]]:
    """The ``n`` lowest-scoring classes with a score (background left out)."""
    items = [(k, v) for i, (k, v) in enumerate(scores.items()) if i > 0 and v is not None]
    return sorted(items, key=lambda kv: kv[1])[:n]


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def compare_versions(a: Any, b: Any) -> dict[str, Any] | None:
    """Scores of versions ``a`` and ``b`` (ModelVersion) on the images held out for both: the
    stems in both versions' per-image held-out scores that neither trained on. Falls back to
    ``a``'s parent-before scores when ``b`` is ``a``'s parent and has no per-image scores.
    Returns {"n", "stems", "a_iou", "b_iou", "a_biou", "b_biou"} or None (nothing in common)."""
    sa = (a.metrics or {}).get("held_out_scores") or {}
    sb = (b.metrics or {}).get("held_out_scores") or {}
    if not sb and a.parent == b.id:
        sb = (a.metrics or {}).get("parent_held_out_scores") or {}
    trained = set(((a.meta or {}).get("data") or {}).get("train", [])) | set(
        ((b.meta or {}).get("data") or {}).get("train", []))
    common = sorted((set(sa) & set(sb)) - trained)
    if not common:
        return None
    return {"n": len(common), "stems": common,
            "a_iou": _mean([sa[s][0] for s in common]), "b_iou": _mean([sb[s][0] for s in common]),
            "a_biou": _mean([sa[s][1] for s in common]), "b_biou": _mean([sb[s][1] for s in common])}


@dataclass
class FinetuneResult:
    version_id: int | None          # None when cancelled
    parent_id: int | None
    metrics: dict[str, Any] | None  # val_iou/val_biou/start_val_iou/...; None without held-out images
    held_out: list[str]
    train: list[str]
    seconds: float
    stopped_reason: str             # "epochs done" | "time budget reached" | "cancelled"
    run_id: str = ""
    history: list[EpochReport] = field(default_factory=list)
    message: str = ""
    kept_parent: bool = False       # the new version was surely worse: saved, not activated

    @property
    def cancelled(self) -> bool:
        return self.stopped_reason == "cancelled"

    @property
    def active_id(self) -> int | None:
        """The version active after the click: the new one, or the parent when the click was
        cancelled or the new one was surely worse (kept_parent)."""
        return self.parent_id if self.kept_parent or self.version_id is None else self.version_id


class _LoggingCallbacks(TrainCallbacks):
    """Forwards to the caller's callbacks and logs each epoch into the project index."""

    def __init__(self, project: Project, run_id: str, inner: TrainCallbacks | None) -> None:
        super().__init__()
        self.project, self.run_id, self.inner = project, run_id, inner or TrainCallbacks()

    def on_step(self, step: int, total: int, loss: float) -> None:
        self.inner.on_step(step, total, loss)

    def on_epoch(self, report: EpochReport) -> None:
        try:
            self.project.log_epoch(None, self.run_id, len(self.project.epoch_history(self.run_id)) + 1,
                                   report.to_row())
        except Exception:  # noqa: BLE001 - a read-only/closed index must not stop training
            pass
        self.inner.on_epoch(report)

    def on_message(self, text: str) -> None:
        self.inner.on_message(text)


def starting_model(project: Project, config: TrainConfig) -> tuple[Any, int | None, str]:
    """(model, parent version id, description): the active version, or a fresh model — also
    when ``config.switch_arch`` asks for ``config.arch`` and the active version is another
    architecture (a new lineage: the version saved from it has no parent)."""
    from . import models
    store = ModelStore(project)
    active = store.active()
    switched = ""
    arch = config.arch_for(project.num_classes)
    if active is not None:
        if config.switch_arch and active.arch != arch:
            switched = f", switching from v{active.id}'s {active.arch}: a new lineage"
        else:
            model = store.load(active.id)  # CheckpointError names the file and the reason
            if getattr(model, "num_classes", None) == project.num_classes:
                return model, active.id, f"version {active.id}"
    model = models.build(arch, num_classes=project.num_classes, pretrained=config.pretrained)
    init = (getattr(model, "meta", None) or {}).get("init", {}).get("weights_source", "")
    weights = "random" if (not config.pretrained or init.startswith("random")) else "ImageNet backbone"
    return model, None, f"a fresh {arch} ({weights}{switched})"


def _pairs(project: Project, stems: Sequence[str],
           outside: dict[str, list[int]] | None = None) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(image, mask, stem) of ``stems``; a mask holding values outside the project's classes
    (other than void 255) is left out and recorded in ``outside`` (never trained as background)."""
    out = []
    k = project.num_classes
    for stem in stems:
        mask = project.load_mask(stem)
        if mask is None:
            continue
        values = np.flatnonzero(np.bincount(mask.ravel(), minlength=256))
        bad = [int(v) for v in values if k <= v < 255]
        if bad:
            if outside is not None:
                outside[stem] = bad
            continue
        out.append((project.load_image(stem), mask, stem))
    return out


def finetune(project: Project, config: TrainConfig | None = None, callbacks: TrainCallbacks | None = None,
             cancel_event: threading.Event | None = None) -> FinetuneResult:
    """Train on the project's DONE images (train role); score on its held-out ones; save and
    activate the new version. See module doc."""
    config = config or TrainConfig()
    t0 = time.monotonic()
    train_stems, held = project.training_split()
    if not train_stems:
        raise TrainingError(f"{project.root}: no done images to train on; finish at least one "
                            f"image (paint its mask, then Mark Done, or accept a prediction) and "
                            f"try again" + (f" ({len(held)} done images are held out)" if held else ""))
    run_id = uuid.uuid4().hex[:12]
    cbs = _LoggingCallbacks(project, run_id, callbacks)
    model, parent, origin = starting_model(project, config)
    cbs.on_message(f"fine-tuning {origin} on {len(train_stems)} images, {len(held)} held out")
    if not held:
        cbs.on_message(TOO_FEW_MESSAGE)
    outside: dict[str, list[int]] = {}
    train_pairs, val_pairs = _pairs(project, train_stems, outside), _pairs(project, held, outside)
    if outside:
        cbs.on_message(f"left out {len(outside)} mask(s) with values outside the "
                       f"{project.num_classes} classes: " + ", ".join(
                           f"{s} ({', '.join(map(str, v[:3]))})" for s, v in list(outside.items())[:4]))
        train_stems = [s for s in train_stems if s not in outside]
        held = [s for s in held if s not in outside]
        if not train_pairs:
            raise TrainingError(f"{project.root}: every done mask holds values outside the "
                                f"project's {project.num_classes} classes; add classes (Classes…) "
                                f"first")
    budget = config.budget_for(len(train_pairs))
    if budget != config.time_budget_s:
        cbs.on_message(f"time budget {budget:.0f} s for {len(train_pairs)} images")
    preset = config.preset_for([m for _, m, _ in train_pairs]).with_model(model)
    trainer = Trainer(model, config, cbs, cancel_event=cancel_event, preset=preset)
    own = (getattr(model, "meta", None) or {}).get("preset")
    t_score = time.monotonic()
    parent_scores = per_image_scores(model, val_pairs, None if own else preset, trainer.device)
    scoring_s = time.monotonic() - t_score  # the new model is scored the same way after training
    start_iou = _mean([v[0] for v in parent_scores.values()])
    start_biou = _mean([v[1] for v in parent_scores.values()])
    if budget is not None:  # the budget counts from the click: loading and saving are inside it
        # after training, inside the budget: held-out scores (per class too), CRF decision, save
        scoring = scoring_s * (2 if project.num_classes > 2 else 1)
        # the CRF decision predicts the held-out images once more (about scoring_s), then has
        # CRF_RESERVE_S for its DenseCRF passes
        reserve = SAVE_RESERVE_S + (CRF_RESERVE_S + scoring + scoring_s if val_pairs else 0.0)
        trainer.config = replace(trainer.config,  # resolved for the model's classes (AUTO)
                                 time_budget_s=max(1.0, budget - (time.monotonic() - t0) - reserve))
    result = trainer.fit(train_pairs, val_pairs)
    if result.cancelled or result.model is None:
        return FinetuneResult(None, parent, None, held, train_stems, time.monotonic() - t0,
                              "cancelled", run_id, result.history, "cancelled; the previous model is kept")
    crf_decision = decide_crf(result.model, val_pairs, trainer.device)
    cbs.on_message(crf_decision["message"])
    metrics: dict[str, Any] | None = None
    if held:
        metrics = {**result.metrics(), "start_val_iou": start_iou, "start_val_biou": start_biou,
                   "n_train": len(train_stems), "n_held_out": len(held), "crf": crf_decision,
                   "held_out_scores": per_image_scores(result.model, val_pairs, None, trainer.device),
                   "parent_held_out_scores": parent_scores}
        if project.num_classes > 2:
            metrics["class_iou"], metrics["class_biou"] = class_scores(
                result.model, val_pairs, [c.name for c in project.classes], trainer.device)
    worse, old_iou, new_iou, n_cmp = (surely_worse(parent_scores, metrics["held_out_scores"])
                                      if metrics and parent is not None else (False, None, None, 0))
    if worse:
        metrics["kept_parent"] = True  # type: ignore[index]
    stored = metrics or {**result.metrics(), "n_train": len(train_stems), "n_held_out": 0, "crf": crf_decision}
    meta = {"data": {"train": train_stems, "held_out": held}, "run_id": run_id,
            "train_config": {**trainer.config.to_dict(), "time_budget_s": budget}, "started_from": origin,
            "classes": [c.name for c in project.classes], "preset": result.model.meta.get("preset"),
            "crf": crf_decision}
    version = ModelStore(project).save_version(result.model, meta, parent, stored, activate=not worse)
    message = "" if held else TOO_FEW_MESSAGE
    if worse:
        message = (f"v{version} scored lower than v{parent} on the held-out images (IoU "
                   f"{old_iou:.3f} → {new_iou:.3f} on {n_cmp} image{'s' if n_cmp != 1 else ''}): "
                   f"v{parent} stays active; activate v{version} under Versions to use it anyway")
        cbs.on_message(message)
    return FinetuneResult(version, parent, metrics, held, train_stems, time.monotonic() - t0,
                          result.stopped_reason, run_id, result.history, message,
                          kept_parent=worse)


def decide_crf(model: Any, val_pairs: Sequence[tuple[np.ndarray, np.ndarray, str]],
               device: Any = "cpu", time_limit_s: float = CRF_RESERVE_S - 1.0) -> dict[str, Any]:
    """segcore.crf.decide on the held-out pairs, with the model's own predictions (as the app
    makes them: segcore.inference.Predictor). ``time_limit_s`` bounds the DenseCRF passes, not
    the predictions (finetune reserves those apart): when the predictions counted against it, a
    project with 30 held-out images decided on 3 of them (Weizmann k = 200)."""
    from .crf import decide
    from .inference import Predictor
    if not val_pairs:
        return decide([], model.num_classes)
    predictor = Predictor(model, device=device)
    items = [(np.array(img, copy=not img.flags.writeable), predictor.predict_probs(img), mask)
             for img, mask, _ in val_pairs]
    return decide(items, model.num_classes, time_limit_s)


@dataclass
class PredictSummary:
    done: int
    errors: dict[str, str]
    cancelled: bool


def predict_project(project: Project, predictor: Any, stems: Sequence[str],
                    on_progress: Callable[[int, int, str], None] | None = None,
                    cancel_event: threading.Event | None = None) -> PredictSummary:
    """Predict ``stems`` in the given order (put the shown image first).

    Predictions go to project.save_prediction (a user status -- in progress, done, skipped --
    stays, and masks are never written); images with a mask also get IoU/BIoU of mask vs prediction.
    on_progress(done, total, stem) after each image. Per-image failures → project.set_error.
    """
    from . import metrics
    active = project.models.active(rebuild=False)
    version = active.id if active is not None else None
    stems = list(dict.fromkeys(stems))
    by_path = {str(project.image_path(s)): s for s in stems}
    errors: dict[str, str] = {}
    done = 0
    for path, pred in predictor.predict_paths([project.image_path(s) for s in stems]):
        if cancel_event is not None and cancel_event.is_set():
            return PredictSummary(done, errors, True)
        stem = by_path[str(path)]
        done += 1
        if isinstance(pred, Exception):
            errors[stem] = str(pred)
            project.set_error(stem, str(pred))
        else:
            project.save_prediction(stem, pred.mask, pred.uncertainty, version)
            _refresh_metrics(project, stem, pred.mask, metrics)
        if on_progress is not None:
            on_progress(done, len(stems), stem)
    return PredictSummary(done, errors, False)


def _refresh_metrics(project: Project, stem: str, pred: np.ndarray, metrics: Any) -> None:
    try:
        mask = project.load_mask(stem)
    except Exception:  # noqa: BLE001 - scores are informative: an unreadable mask just has none
        return
    if mask is None or mask.shape != pred.shape:
        return
    score = metrics.score_mask(mask, pred, project.num_classes)
    project.set_image_metrics(stem, score.iou, score.biou)
