"""Simulated annotator: run the human-in-the-loop cycle without a GUI on any labelled folder.

    rows = simulate("images/", "masks/", test_last=80, ks=(5, 20, 50), orders=("attention", "random"))

Test = the last ``test_last`` sorted stems (never trained on); pool = the other stems.
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

Row keys (stable): dataset, k, order, iou, biou (per-image means of foreground IoU / Boundary IoU),
iou_crf, biou_crf (same after segcore.crf.refine on the predicted probabilities; None when
pydensecrf is missing or crf=False), seconds (wall time of this k's click to updated predictions
= fine-tune + predicting the test images, CRF excluded), plus protocol, clicks (fine-tunes so far
in this session), total_train_seconds (all of them), train_seconds, predict_seconds,
crf_ms_per_image, n_train, n_held_out, stopped_reason.
Images and masks are matched by stem (masks/<stem>.png, any image suffix in segcore.io).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import torch

from .errors import SegLoopError
from .io import IMAGE_SUFFIXES, read_image, read_mask
from .training import TrainConfig

ROW_KEYS = ("dataset", "k", "order", "iou", "biou", "iou_crf", "biou_crf", "seconds")
ORDERS = ("attention", "random")
PROTOCOLS = ("session", "independent")


def default_config() -> TrainConfig:
    """The fine-tune settings the app's one-click button uses (TrainConfig's defaults)."""
    return TrainConfig()


def matched_stems(images: Path, masks: Path) -> dict[str, Path]:
    """stem → image path for every image in ``images`` with a mask ``masks/<stem>.png``."""
    out = {}
    for p in sorted(Path(images).iterdir()):
        if p.suffix.lower() in IMAGE_SUFFIXES and (Path(masks) / f"{p.stem}.png").is_file():
            out[p.stem] = p
    return out


class StretchPredictor:
    """Eager prediction with the training resize policy (stretch to input_size², logits back to HxW).

    Eager reference of what segcore.inference.Predictor does on images up to its tiling size.
    """

    def __init__(self, model: Any, input_size: int) -> None:
        self.model, self.input_size = model.eval(), int(input_size)

    @torch.inference_mode()
    def predict(self, image: np.ndarray) -> Any:
        from .inference import Prediction, mean_normalised_entropy
        from .models import logits_to_probs
        from .training.data import normalize, stretch_image
        h, w = image.shape[:2]
        x = normalize(stretch_image(image, self.input_size), self.model.mean, self.model.std)[None]
        logits = self.model(x)["out"][0]
        uncertainty = mean_normalised_entropy(logits_to_probs(logits[None])[0])
        full = np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_LINEAR) for c in logits.numpy()])
        probs = logits_to_probs(torch.from_numpy(full)[None])[0].numpy().astype(np.float32)
        return Prediction(mask=probs.argmax(0).astype(np.uint8), probs=probs, uncertainty=uncertainty)


def make_predictor(model: Any, input_size: int) -> Any:
    """The app's segcore.inference.Predictor (it uses the training view: stretched square)."""
    from .inference import Predictor
    return Predictor(model, device="cpu", input_size=input_size)


def _score(gt: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    from .metrics import boundary_iou, foreground_iou
    return foreground_iou(gt, pred), boundary_iou(gt, pred)


def evaluate_test(predictor: Any, images: dict[str, Path], masks: Path, stems: Sequence[str],
                  crf_params: Any = None, cache: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
                  ) -> dict[str, Any]:
    """Predict and score ``stems``; CRF scores too when ``crf_params`` is given."""
    from .crf import refine
    cache = {} if cache is None else cache
    ious, bious, ious_c, bious_c, crf_ms = [], [], [], [], []
    predict_s = 0.0
    for stem in stems:
        if stem not in cache:
            image = read_image(images[stem])  # writable copy: pydensecrf refuses read-only buffers
            cache[stem] = (np.array(image, copy=not image.flags.writeable),
                           (read_mask(masks / f"{stem}.png") > 0).astype(np.uint8))
        image, gt = cache[stem]
        t0 = time.perf_counter()
        pred = predictor.predict(image)
        predict_s += time.perf_counter() - t0
        i, b = _score(gt, pred.mask)
        ious.append(i)
        bious.append(b)
        if crf_params is not None:
            t1 = time.perf_counter()
            refined = refine(image, pred.probs, crf_params).argmax(0).astype(np.uint8)
            crf_ms.append((time.perf_counter() - t1) * 1000.0)
            i, b = _score(gt, refined)
            ious_c.append(i)
            bious_c.append(b)
    mean = lambda xs: float(np.mean(xs)) if xs else None  # noqa: E731
    return {"iou": mean(ious), "biou": mean(bious), "iou_crf": mean(ious_c), "biou_crf": mean(bious_c),
            "predict_seconds": predict_s, "crf_ms_per_image": mean(crf_ms)}


def attention_ranking(pool: Sequence[str], images: dict[str, Path], config: TrainConfig) -> list[str]:
    """Pool stems by the starting model's uncertainty, highest first (the app's attention order)."""
    from . import models
    model = models.build(config.arch, num_classes=2, pretrained=config.pretrained)
    predictor = make_predictor(model, config.input_size)
    scores = {s: predictor.predict(read_image(images[s])).uncertainty for s in pool}
    return sorted(pool, key=lambda s: (-scores[s], s))


def _project_with(stems: Sequence[str], images: dict[str, Path], masks: Path, folder: Path,
                  corrected: Sequence[str] | None = None) -> Any:
    """A project in ``folder`` holding ``stems`` (symlinks); ``corrected`` (default: all of them)
    get their ground truth saved as corrections."""
    from .project import Project
    for s in stems:
        link = folder / images[s].name
        try:
            os.symlink(images[s].resolve(), link)
        except OSError:
            import shutil
            shutil.copy2(images[s], link)
    project = Project.open(folder)
    for s in (stems if corrected is None else corrected):
        _correct(project, s, masks)
    return project


def _correct(project: Any, stem: str, masks: Path) -> None:
    project.save_mask(stem, (read_mask(masks / f"{stem}.png") > 0).astype(np.uint8))


def _row(dataset: str, k: int, order: str, scores: dict[str, Any], train_s: float, result: Any,
         **extra: Any) -> dict[str, Any]:
    return {"dataset": dataset, "k": int(k), "order": order,
            "iou": scores["iou"], "biou": scores["biou"], "iou_crf": scores["iou_crf"],
            "biou_crf": scores["biou_crf"], "seconds": train_s + scores["predict_seconds"],
            "train_seconds": train_s, "predict_seconds": scores["predict_seconds"],
            "crf_ms_per_image": scores["crf_ms_per_image"], "n_train": len(result.train),
            "n_held_out": len(result.held_out), "stopped_reason": result.stopped_reason, **extra}


def simulate(images: str | os.PathLike[str], masks: str | os.PathLike[str], test_last: int = 80,
             ks: Sequence[int] = (5, 20, 50), orders: Sequence[str] = ORDERS, config: TrainConfig | None = None,
             seed: int = 0, crf: bool = True, crf_params: Any = None, dataset: str | None = None,
             on_row: Callable[[dict[str, Any]], None] | None = None,
             on_message: Callable[[str], None] | None = None,
             protocol: str = "session") -> list[dict[str, Any]]:
    """Rows for every (order, k); see the module docstring. Raises SegLoopError on unusable input."""
    images, masks = Path(images), Path(masks)
    config = replace(config) if config is not None else default_config()
    say = on_message or (lambda text: None)
    found = matched_stems(images, masks)
    stems = sorted(found)
    if test_last < 1 or len(stems) <= test_last:
        raise SegLoopError(f"{images}: {len(stems)} images with masks in {masks}; need more than "
                           f"--test-last {test_last} (the test stems) to train on any")
    bad = [o for o in orders if o not in ORDERS]
    if bad:
        raise SegLoopError(f"unknown order(s) {bad}; use {ORDERS}")
    if protocol not in PROTOCOLS:
        raise SegLoopError(f"unknown protocol {protocol!r}; use {PROTOCOLS}")
    test, pool = stems[-test_last:], stems[:-test_last]
    run = _Run(found, masks, test, pool, config, _crf_params(crf, crf_params, say),
               dataset or images.parent.name or str(images), seed, say, on_row)
    rows: list[dict[str, Any]] = []
    for order in orders:
        if protocol == "session":
            rows += run.session(order, sorted({int(k) for k in ks}))
        else:
            rows += run.independent(order, [int(k) for k in ks])
    return rows


class _Run:
    """Shared state of one simulate() call: data, test cache, callbacks."""

    def __init__(self, found: dict[str, Path], masks: Path, test: list[str], pool: list[str],
                 config: TrainConfig, crf_params: Any, dataset: str, seed: int,
                 say: Callable[[str], None], on_row: Callable[[dict[str, Any]], None] | None) -> None:
        self.found, self.masks, self.test, self.pool, self.config = found, masks, test, pool, config
        self.crf_params, self.dataset, self.seed, self.say, self.on_row = crf_params, dataset, seed, say, on_row
        self.cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.random = [str(s) for s in np.random.default_rng(seed).permutation(pool)]

    def _emit(self, row: dict[str, Any]) -> dict[str, Any]:
        if self.on_row is not None:
            self.on_row(row)
        return row

    def _click(self, project: Any) -> tuple[Any, Any, float]:
        """One-click fine-tune → (result, trained model, seconds)."""
        from .loop import finetune
        from .versions import ModelStore
        t0 = time.perf_counter()
        result = finetune(project, self.config)
        train_s = time.perf_counter() - t0
        return result, ModelStore(project).load(result.version_id), train_s

    def independent(self, order: str, ks: list[int]) -> list[dict[str, Any]]:
        """Each k: a fresh project with k corrected images, one click from the ImageNet model."""
        ranking = self.random
        if order == "attention":
            self.say(f"attention order: ranking {len(self.pool)} pool images by the starting model")
            ranking = attention_ranking(self.pool, self.found, self.config)
        rows = []
        for k in ks:
            chosen = ranking[:min(k, len(self.pool))]
            with tempfile.TemporaryDirectory(prefix="segloop-sim-") as tmp:
                project = _project_with(chosen, self.found, self.masks, Path(tmp))
                try:
                    self.say(f"{order} k={k}: fine-tuning from the ImageNet model")
                    result, model, train_s = self._click(project)
                finally:
                    project.close()
            scores = evaluate_test(make_predictor(model, self.config.input_size), self.found, self.masks,
                                   self.test, self.crf_params, self.cache)
            rows.append(self._emit(_row(self.dataset, k, order, scores, train_s, result,
                                        protocol="independent", clicks=1, total_train_seconds=train_s)))
        return rows

    def session(self, order: str, ks: list[int]) -> list[dict[str, Any]]:
        """One project holding the whole pool, corrected in batches up to each k, one click per k.

        As in the app: each click fine-tunes the active version (the first one the ImageNet model);
        after it every uncorrected pool image is re-predicted, and "attention" takes the next
        batch from ``Project.attention_order()`` (most uncertain first; before any model exists,
        the cold-start order of segcore.selection).
        """
        from .inference import Predictor
        from .loop import predict_project
        from . import selection
        rows: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory(prefix="segloop-sim-") as tmp:
            project = _project_with(self.pool, self.found, self.masks, Path(tmp), corrected=[])
            try:
                if order == "attention":
                    self.say(f"attention order: cold-start ranking of {len(self.pool)} pool images")
                    selection.store_cold_start_order(project, selection.cold_start_order(
                        project, selection.embedding_model(self.config)))
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
                    result, model, train_s = self._click(project)
                    total_train += train_s
                    predictor = make_predictor(model, self.config.input_size)
                    scores = evaluate_test(predictor, self.found, self.masks, self.test, self.crf_params,
                                           self.cache)
                    rows.append(self._emit(_row(self.dataset, k, order, scores, train_s, result,
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
