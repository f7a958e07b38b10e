"""Simulated annotator: run the human-in-the-loop cycle without a GUI on any labelled folder.

    rows = simulate("images/", "masks/", test_last=80, ks=(5, 20, 50), orders=("attention", "random"))

For every order and k, starting each time from the ImageNet-initialised model (``config.arch``):
1. choose k images from the pool (all stems except the test stems):
   "attention" = the app's needs-attention order: the pool predicted by the starting model,
   highest ``Prediction.uncertainty`` first; "random" = a seeded permutation (same seed for all k);
2. "correct" them by copying their ground truth into a temporary project
   (``Project.save_mask``, so they are CORRECTED exactly as a user's corrections are);
3. press one-click fine-tune: ``segcore.loop.finetune(project, config)`` (the app's defaults
   unless a config is given; the loop's own held-out split applies, as in the app);
4. re-predict the test stems (the last ``test_last`` sorted stems, never trained on) and score them.

Row keys (stable): dataset, k, order, iou, biou (per-image means of foreground IoU / Boundary IoU),
iou_crf, biou_crf (same after segcore.crf.refine on the predicted probabilities; None when
pydensecrf is missing or crf=False), seconds (wall time from the click to updated predictions =
fine-tune + predicting the test images, CRF excluded), plus train_seconds, predict_seconds,
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


def _project_with(stems: Sequence[str], images: dict[str, Path], masks: Path, folder: Path) -> Any:
    from .project import Project
    for s in stems:
        link = folder / images[s].name
        try:
            os.symlink(images[s].resolve(), link)
        except OSError:
            import shutil
            shutil.copy2(images[s], link)
    project = Project.open(folder)
    for s in stems:
        project.save_mask(s, (read_mask(masks / f"{s}.png") > 0).astype(np.uint8))
    return project


def simulate(images: str | os.PathLike[str], masks: str | os.PathLike[str], test_last: int = 80,
             ks: Sequence[int] = (5, 20, 50), orders: Sequence[str] = ORDERS, config: TrainConfig | None = None,
             seed: int = 0, crf: bool = True, crf_params: Any = None, dataset: str | None = None,
             on_row: Callable[[dict[str, Any]], None] | None = None,
             on_message: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Rows for every (order, k); see the module docstring. Raises SegLoopError on unusable input."""
    from .loop import finetune
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
    test, pool = stems[-test_last:], stems[:-test_last]
    crf_params = _crf_params(crf, crf_params, say)
    rankings: dict[str, list[str]] = {"random": list(np.random.default_rng(seed).permutation(pool))}
    if "attention" in orders:
        say(f"attention order: predicting {len(pool)} pool images with the starting model")
        rankings["attention"] = attention_ranking(pool, found, config)
    cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    rows = []
    for order in orders:
        for k in ks:
            chosen = rankings[order][:min(int(k), len(pool))]
            with tempfile.TemporaryDirectory(prefix="segloop-sim-") as tmp:
                project = _project_with(chosen, found, masks, Path(tmp))
                try:
                    say(f"{order} k={k}: fine-tuning ({config.mode}, budget {config.time_budget_s} s)")
                    t0 = time.perf_counter()
                    result = finetune(project, config)
                    train_s = time.perf_counter() - t0
                    from .versions import ModelStore
                    model = ModelStore(project).load(result.version_id)
                finally:
                    project.close()
            scores = evaluate_test(make_predictor(model, config.input_size), found, masks, test, crf_params, cache)
            row = {"dataset": dataset or images.parent.name or str(images), "k": int(k), "order": order,
                   "iou": scores["iou"], "biou": scores["biou"], "iou_crf": scores["iou_crf"],
                   "biou_crf": scores["biou_crf"], "seconds": train_s + scores["predict_seconds"],
                   "train_seconds": train_s, "predict_seconds": scores["predict_seconds"],
                   "crf_ms_per_image": scores["crf_ms_per_image"], "n_train": len(result.train),
                   "n_held_out": len(result.held_out), "stopped_reason": result.stopped_reason}
            rows.append(row)
            if on_row is not None:
                on_row(row)
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
