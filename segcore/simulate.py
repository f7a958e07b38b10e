"""Simulated annotator: run the human-in-the-loop cycle without a GUI on any labelled folder.

    rows = simulate("images/", "masks/", test_last=80, ks=(5, 20, 50), orders=("attention", "random"))

Test = the last ``test_last`` sorted stems, or the given ``test_stems`` (never trained on);
pool = the other stems.
Protocol "session" (default; what a user of the app does), per order, in one project holding
the whole pool and starting from the ImageNet-initialised model (``config.arch``):
for each k in increasing order
1. "correct" images up to k by copying their ground truth (``Project.save_mask``, exactly as a
   user's corrections are saved): "attention" = the head of ``Project.attention_order()`` (the
   app's needs-attention sort: most uncertain prediction of the current model first; before
   the first model, segcore.selection's cold-start order), "random" = a seeded permutation of
   the pool (the same seed for every k);
2. press one-click fine-tune: ``segcore.loop.finetune(project, config)`` (the app's defaults
   unless a config is given; it trains from the active version, i.e. the previous click's model,
   with the loop's own held-out split);
3. re-predict the test stems and score them; for "attention", re-predict the uncorrected pool
   too (the app does this after every fine-tune; it is what the next batch is ranked by).
Protocol "independent": every k in a fresh project with one click from the ImageNet model
("attention" = ranked by the untrained model's uncertainty).

Classes: ``num_classes`` (2 = binary: masks 0/1 or 0/255) and ``ignore_index`` (a void value,
e.g. 255: never trained on, never scored); a multi-class run gives the project those classes.

Row keys (stable): dataset, k, order, iou, biou (per-image means of segcore.metrics.score_mask:
foreground IoU / Boundary IoU, or per-image mIoU / mean BIoU for k classes), miou and
per_class_iou (multi-class: over the whole test set's confusion matrix, void excluded) and
per_class_biou (each class's Boundary IoU averaged over the test images holding it; both
segcore.metrics.Evaluation),
iou_crf, biou_crf (same after segcore.crf.refine with default parameters; None when
pydensecrf is missing or crf=False), project_iou / project_biou (with the CRF decision the
fine-tune made on its held-out images, segcore.crf.decide: refined with its parameters when it
turned CRF on, else the plain scores), crf_decision (its message), preset (what the model saw),
seconds (wall time of this k's click to updated predictions
= fine-tune + predicting the test images, CRF excluded), plus protocol, clicks (fine-tunes so far
in this session), total_train_seconds (all of them), train_seconds, predict_seconds,
crf_ms_per_image, n_train, n_held_out, stopped_reason, project_scores ({stem: IoU} behind
project_iou), held_out_iou / held_out_biou / held_out_scores (the version's own held-out
numbers, as the app's Training dock and effort forecast see them), parent_held_out_iou (the
model the click started from, on the same held-out images), kept_parent (the new version
was surely worse on the held-out images, segcore.loop.surely_worse, so its parent stayed active:
the test scores are the parent's, as the app would predict with it).
Images and masks are paired by segcore.pairing.match_pairs (the CLI's rule: masks/<stem>.png,
or <stem> with another image suffix).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TYPE_CHECKING

import numpy as np

from .errors import SegLoopError
from .io import read_image, read_mask
from .training import TrainConfig

if TYPE_CHECKING:  # the type only: no import cycle at run time
    from .project import Project

ROW_KEYS = ("dataset", "k", "order", "iou", "biou", "iou_crf", "biou_crf", "seconds")
ORDERS = ("attention", "random")
PROTOCOLS = ("session", "independent")


def default_config() -> TrainConfig:
    """The fine-tune settings the app's one-click button uses (TrainConfig's defaults)."""
    return TrainConfig()


def matched_stems(images: Path, masks: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """(stem → image, stem → mask) for the image/mask pairs of segcore.pairing.match_pairs."""
    from .pairing import match_pairs
    pairs = match_pairs(images, masks, on_message=lambda text: None)
    return {s: i for i, _m, s in pairs}, {s: m for _i, m, s in pairs}


def make_predictor(model: Any, input_size: int | None = None) -> Any:
    """The app's segcore.inference.Predictor (the model's own preprocessing preset)."""
    from .inference import Predictor
    return Predictor(model, device="cpu", input_size=input_size)


def read_truth(path: Path, num_classes: int = 2, ignore_index: int | None = None) -> np.ndarray:
    """A ground-truth mask as the simulated annotator saves it: class indices, 255 = void."""
    if num_classes == 2:
        raw = read_mask(path)
        gt = (raw > 0).astype(np.uint8)
        if ignore_index is not None and ignore_index != 255:
            gt[raw == ignore_index] = 255
        return gt
    gt = read_mask(path, num_classes)
    if ignore_index is not None and ignore_index != 255:
        gt = np.where(gt == ignore_index, 255, gt).astype(np.uint8)
    return gt


def evaluate_test(predictor: Any, images: dict[str, Path], masks: Mapping[str, Path], stems: Sequence[str],
                  crf_params: Any = None, cache: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
                  num_classes: int = 2, ignore_index: int | None = None,
                  project_crf: Any = None) -> dict[str, Any]:
    """Predict and score ``stems`` (segcore.metrics.score_mask); CRF scores too when
    ``crf_params`` is given, and with ``project_crf`` (the fine-tune's decision) the scores with it."""
    from .crf import refine
    from .metrics import Evaluation
    cache = {} if cache is None else cache
    plain, crf, project = (Evaluation(num_classes), Evaluation(num_classes), Evaluation(num_classes))
    crf_ms: list[float] = []
    predict_s = 0.0
    for stem in stems:
        if stem not in cache:
            image = read_image(images[stem])  # writable copy: pydensecrf refuses read-only buffers
            cache[stem] = (np.array(image, copy=not image.flags.writeable),
                           read_truth(masks[stem], num_classes, ignore_index))
        image, gt = cache[stem]
        t0 = time.perf_counter()
        pred = predictor.predict(image)
        predict_s += time.perf_counter() - t0
        plain.add(gt, pred.mask, stem)
        if crf_params is not None:
            t1 = time.perf_counter()
            refined = refine(image, pred.probs, crf_params).argmax(0).astype(np.uint8)
            crf_ms.append((time.perf_counter() - t1) * 1000.0)
            crf.add(gt, refined, stem)
        if project_crf is not None:
            project.add(gt, refine(image, pred.probs, project_crf).argmax(0).astype(np.uint8), stem)

    def mean(ev: Evaluation, key: str) -> float | None:
        return ev.summary()[key] if ev.images else None
    chosen = project if project_crf is not None else plain
    out: dict[str, Any] = {"iou": mean(plain, "iou"), "biou": mean(plain, "biou"), "iou_crf": mean(crf, "iou"),
           "biou_crf": mean(crf, "biou"), "project_iou": mean(chosen, "iou"),
           "project_biou": mean(chosen, "biou"), "predict_seconds": predict_s,
           "project_scores": {stem: sc.iou for stem, sc in chosen.per_image.items()},
           "crf_ms_per_image": float(np.mean(crf_ms)) if crf_ms else None}
    if num_classes > 2:
        summary = plain.summary()
        present = plain.confusion.sum(1) > 0  # classes in the test ground truth
        out["miou"] = summary["miou"]
        out["per_class_iou"] = [v if p else None for v, p in zip(summary["class_iou"], present)]
        out["per_class_biou"] = [None if v != v else v for v in summary["class_biou"]]
    return out


def attention_ranking(pool: Sequence[str], images: dict[str, Path], config: TrainConfig,
                      num_classes: int = 2) -> list[str]:
    """Pool stems by the starting model's uncertainty, highest first (the app's attention order)."""
    from . import models
    model = models.build(config.arch_for(num_classes), num_classes=num_classes, pretrained=config.pretrained)
    predictor = make_predictor(model, config.input_size)
    scores = {s: predictor.predict(read_image(images[s])).uncertainty for s in pool}
    return sorted(pool, key=lambda s: (-scores[s], s))


def _project_with(stems: Sequence[str], images: dict[str, Path], masks: Mapping[str, Path], folder: Path,
                  corrected: Sequence[str] | None = None, num_classes: int = 2,
                  ignore_index: int | None = None) -> Any:
    """A project in ``folder`` holding ``stems`` (symlinks) with ``num_classes`` classes;
    ``corrected`` (default: all of them) get their ground truth saved as corrections."""
    from .project import ClassInfo, Project
    from .io import default_palette
    for s in stems:
        link = folder / images[s].name
        try:
            os.symlink(images[s].resolve(), link)
        except OSError:
            import shutil
            shutil.copy2(images[s], link)
    project = Project.open(folder)
    if num_classes > 2:
        project.set_classes([ClassInfo("background" if i == 0 else f"class {i}", c)
                             for i, c in enumerate(default_palette(num_classes))])
    project.simulate_ignore_index = ignore_index  # type: ignore[attr-defined]  # read by _correct
    for s in (stems if corrected is None else corrected):
        _correct(project, s, masks)
    return project


def _correct(project: Project, stem: str, masks: Mapping[str, Path]) -> None:
    project.save_mask(stem, read_truth(masks[stem], project.num_classes,
                                       getattr(project, "simulate_ignore_index", None)))


def _row(dataset: str, k: int, order: str, scores: dict[str, Any], train_s: float, result: Any,
         **extra: Any) -> dict[str, Any]:
    return {"dataset": dataset, "k": int(k), "order": order,
            "iou": scores["iou"], "biou": scores["biou"], "iou_crf": scores["iou_crf"],
            "biou_crf": scores["biou_crf"], "project_iou": scores["project_iou"],
            "project_biou": scores["project_biou"],
            **({key: scores[key] for key in ("miou", "per_class_iou", "per_class_biou")}
               if "miou" in scores else {}),
            "seconds": train_s + scores["predict_seconds"],
            "train_seconds": train_s, "predict_seconds": scores["predict_seconds"],
            "crf_ms_per_image": scores["crf_ms_per_image"], "n_train": len(result.train),
            "n_held_out": len(result.held_out), "stopped_reason": result.stopped_reason,
            "project_scores": scores.get("project_scores"), "kept_parent": bool(result.kept_parent),
            **_held_out(result), **extra}


def _held_out(result: Any) -> dict[str, Any]:
    """The version's own held-out numbers (what the app's forecast is fitted on)."""
    m = result.metrics or {}
    per = m.get("held_out_scores") or {}
    return {"held_out_iou": m.get("val_iou"), "held_out_biou": m.get("val_biou"),
            "held_out_scores": {s: v[0] for s, v in per.items()},
            "parent_held_out_iou": m.get("start_val_iou")}


def simulate(images: str | os.PathLike[str], masks: str | os.PathLike[str], test_last: int = 80,
             ks: Sequence[int] = (5, 20, 50), orders: Sequence[str] = ORDERS, config: TrainConfig | None = None,
             seed: int = 0, crf: bool = True, crf_params: Any = None, dataset: str | None = None,
             on_row: Callable[[dict[str, Any]], None] | None = None,
             on_message: Callable[[str], None] | None = None,
             protocol: str = "session", num_classes: int = 2,
             ignore_index: int | None = None,
             test_stems: Sequence[str] | None = None, default_crf: bool = True) -> list[dict[str, Any]]:
    """Rows for every (order, k); see the module docstring. Raises SegLoopError on unusable input.

    ``default_crf=False`` skips the default-parameter CRF columns (iou_crf / biou_crf are None)
    but still scores the test images with the fine-tune's own CRF decision (project_iou)."""
    images, masks = Path(images), Path(masks)
    config = replace(config) if config is not None else default_config()
    say = on_message or (lambda text: None)
    found, mask_paths = matched_stems(images, masks)
    stems = sorted(found)
    if test_stems is not None:
        missing = sorted(set(test_stems) - set(found))
        if missing:
            raise SegLoopError(f"{images}: test stem(s) without an image and mask: {missing[:5]}")
        chosen = set(test_stems)
        stems = [s for s in stems if s not in chosen] + sorted(chosen)
        test_last = len(chosen)
    if test_last < 1 or len(stems) <= test_last:
        raise SegLoopError(f"{images}: {len(stems)} images with masks in {masks}; need more than "
                           f"--test-last {test_last} (the test stems) to train on any")
    bad = [o for o in orders if o not in ORDERS]
    if bad:
        raise SegLoopError(f"unknown order(s) {bad}; use {ORDERS}")
    if protocol not in PROTOCOLS:
        raise SegLoopError(f"unknown protocol {protocol!r}; use {PROTOCOLS}")
    test, pool = stems[-test_last:], stems[:-test_last]
    if num_classes < 2:
        raise SegLoopError(f"--classes must be >= 2 (background counts), not {num_classes}")
    params = _crf_params(crf, crf_params, say)
    run = _Run(found, mask_paths, test, pool, config, params if default_crf else None,
               dataset or images.parent.name or str(images), seed, say, on_row, num_classes, ignore_index,
               project_crf=params is not None)
    rows: list[dict[str, Any]] = []
    for order in orders:
        if protocol == "session":
            rows += run.session(order, sorted({int(k) for k in ks}))
        else:
            rows += run.independent(order, [int(k) for k in ks])
    return rows


class _Run:
    """Shared state of one simulate() call: data, test cache, callbacks."""

    def __init__(self, found: dict[str, Path], masks: Mapping[str, Path], test: list[str], pool: list[str],
                 config: TrainConfig, crf_params: Any, dataset: str, seed: int,
                 say: Callable[[str], None], on_row: Callable[[dict[str, Any]], None] | None,
                 num_classes: int = 2, ignore_index: int | None = None, project_crf: bool = True) -> None:
        self.project_crf = project_crf  # score with the fine-tune's CRF decision (pydensecrf present)
        self.found, self.masks, self.test, self.pool, self.config = found, masks, test, pool, config
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.crf_params, self.dataset, self.seed, self.say, self.on_row = crf_params, dataset, seed, say, on_row
        self.cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.random = [str(s) for s in np.random.default_rng(seed).permutation(pool)]

    def _emit(self, row: dict[str, Any]) -> dict[str, Any]:
        if self.on_row is not None:
            self.on_row(row)
        return row

    def _click(self, project: Project) -> tuple[Any, Any, float, dict[str, Any] | None]:
        """One-click fine-tune → (result, the active model after it, seconds, that model's CRF
        decision): the new version, or its parent when the new one was surely worse on the
        held-out images and the parent stayed active (segcore.loop.surely_worse), as in the app."""
        from .loop import finetune
        from .versions import ModelStore
        t0 = time.perf_counter()
        result = finetune(project, self.config)
        train_s = time.perf_counter() - t0
        if result.version_id is None:
            raise SegLoopError("the simulated fine-tune was cancelled")
        store = ModelStore(project)
        active = result.active_id
        assert active is not None  # a saved version, or the parent it was kept back for
        decision = (store.get(active).metrics or {}).get("crf")
        return result, store.load(active), train_s, decision

    def _score(self, model: Any, decision: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any], Any]:
        """Test scores of a click's active model (plain, default CRF, its CRF decision)."""
        from .crf import params_from
        from .preprocess import preset_of
        predictor = make_predictor(model)
        scores = evaluate_test(predictor, self.found, self.masks, self.test, self.crf_params, self.cache,
                               self.num_classes, self.ignore_index,
                               params_from(decision) if self.project_crf else None)
        extra = {"crf_decision": (decision or {}).get("message", "no held-out images"),
                 "preset": preset_of(model).describe()}
        return scores, extra, predictor

    def independent(self, order: str, ks: list[int]) -> list[dict[str, Any]]:
        """Each k: a fresh project with k corrected images, one click from the ImageNet model."""
        ranking = self.random
        if order == "attention":
            self.say(f"attention order: ranking {len(self.pool)} pool images by the starting model")
            ranking = attention_ranking(self.pool, self.found, self.config, self.num_classes)
        rows = []
        for k in ks:
            chosen = ranking[:min(k, len(self.pool))]
            with tempfile.TemporaryDirectory(prefix="segloop-sim-") as tmp:
                project = _project_with(chosen, self.found, self.masks, Path(tmp),
                                        num_classes=self.num_classes, ignore_index=self.ignore_index)
                try:
                    self.say(f"{order} k={k}: fine-tuning from the ImageNet model")
                    result, model, train_s, decision = self._click(project)
                finally:
                    project.close()
            scores, extra, _ = self._score(model, decision)
            rows.append(self._emit(_row(self.dataset, k, order, scores, train_s, result, **extra,
                                        protocol="independent", clicks=1, total_train_seconds=train_s)))
        return rows

    def session(self, order: str, ks: list[int]) -> list[dict[str, Any]]:
        """One project holding the whole pool, corrected in batches up to each k, one click per k.

        As in the app: each click fine-tunes the active version (the first one the ImageNet model);
        after it every uncorrected pool image is re-predicted, and "attention" takes the next
        batch from ``Project.attention_order()`` (most uncertain first; before any model exists,
        the cold-start order of segcore.selection).
        """
        from .loop import predict_project
        from . import selection
        rows: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory(prefix="segloop-sim-") as tmp:
            project = _project_with(self.pool, self.found, self.masks, Path(tmp), corrected=[],
                                    num_classes=self.num_classes, ignore_index=self.ignore_index)
            try:
                if order == "attention":
                    self.say(f"attention order: cold-start ranking of {len(self.pool)} pool images")
                    selection.store_cold_start_order(project, selection.cold_start_order(
                        project, selection.embedding_model(self.config)) or [])
                done: list[str] = []
                total_train = 0.0
                for i, k in enumerate(ks):
                    ranking = self.random if order == "random" else project.attention_order()
                    have = set(done)
                    batch = [s for s in ranking if s not in have][:max(0, min(k, len(self.pool)) - len(done))]
                    for s in batch:
                        _correct(project, s, self.masks)
                    done += batch
                    self.say(f"{order} k={k}: {len(batch)} more corrected, fine-tuning")
                    result, model, train_s, decision = self._click(project)
                    total_train += train_s
                    scores, extra, predictor = self._score(model, decision)
                    rows.append(self._emit(_row(self.dataset, k, order, scores, train_s, result, **extra,
                                                protocol="session", clicks=i + 1,
                                                total_train_seconds=total_train)))
                    if order == "attention" and i + 1 < len(ks):
                        have = set(done)
                        rest = [s for s in self.pool if s not in have]
                        predict_project(project, predictor, rest)
            finally:
                project.close()
        return rows


def _crf_params(crf: bool, params: Any, say: Callable[[str], None]) -> Any:
    if not crf:
        return None
    from .crf import CRFParams, crf_available
    ok, why = crf_available()
    if not ok:
        say(f"DenseCRF unavailable ({why}); iou_crf/biou_crf are None")
        return None
    return params if params is not None else CRFParams()
