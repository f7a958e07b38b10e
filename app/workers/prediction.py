"""Background predictions: one QThread with a queue, shown image first, then prefetch.

``request(stems)`` replaces the pending queue (the item being predicted finishes); the first
stem is the shown one, the rest are prefetched. Each result is saved with
``project.save_prediction`` in the worker thread and announced by ``predicted(stem, mask,
uncertainty)``; the window shows it only if that stem is still on screen. The GUI never waits.

The model is loaded lazily in the worker by :func:`default_model_factory` (module-level, so
tests can monkeypatch it): the project's active version (``ModelStore``) or, without one, a
fresh ``deeplabv3_mobilenet_v2`` with its pretrained backbone. A load failure emits
``modelFailed(message)``; the app keeps working without predictions until ``reload_model()``.

DenseCRF: ``set_crf(enabled, params)``. Only the first stem of a request (the shown image) is
refined: pydensecrf holds the GIL while it builds its lattice (~0.1 s per image), so refining
every image of a re-prediction in the background stalled the GUI thread for as long, once per
image. Background items are stored unrefined; when one is shown it is refined then (from the
kept probabilities of the last few images, or predicted again).

``probabilities(stem, image)`` (any thread; the scribble tool calls it from its own worker)
returns the model's CxHxW probabilities of the image: the kept ones of the last prediction when
there are some, else predicted then (under the same lock as the queue's predictions, so one
predictor is never run by two threads at once) and kept for the shown image even above
``PROBS_CACHE_MAX_PIXELS`` (one such image). None without a trained model. The kept
probabilities are cleared when the model changes (``reload_model``), so they always belong to
the version that predicts.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QThread, Signal

from .detach import stop_or_detach

PROBS_CACHE = 6
PROBS_CACHE_MAX_PIXELS = 4_000_000


@dataclass
class LoadedModel:
    predictor: Any  # segcore.inference.Predictor, or None: no trained model yet
    version_id: int | None
    label: str


NO_MODEL_LABEL = "no trained model yet: correct a few images, then Fine-tune"


def _device_name() -> str:
    from segcore.devices import device_label
    return device_label()


def default_model_factory(project: Any) -> LoadedModel:
    """The active model version of ``project``; without one, no predictor at all.

    A fresh DeepLabV3 has an ImageNet backbone but a random head: its "predictions" are noise
    (typically the whole image or nothing). Showing them as a starting mask would be worse
    than showing nothing, so until the first fine-tune the user paints from scratch.
    """
    from segcore.inference import Predictor

    try:
        from segcore.versions import ModelStore
        store = ModelStore(project)
        active = store.active()
    except Exception:  # noqa: BLE001 - no usable store: fall back to the pretrained model
        active, store = None, None
    if active is not None and store is not None:
        model: Any = store.load(active.id)  # a SegModel (ModelStore.load is typed nn.Module)
        return LoadedModel(Predictor(model, device="auto"), active.id, f"model v{active.id}")
    return LoadedModel(None, None, NO_MODEL_LABEL)


class PredictionWorker(QThread):
    predicted = Signal(str, object, float)   # stem, HxW uint8 mask, uncertainty
    failed = Signal(str, str)                # stem, message (the image could not be read)
    modelReady = Signal(str, str)            # device name, model label
    modelFailed = Signal(str)                # message
    busyChanged = Signal(bool, int)          # busy, items left

    def __init__(self, project: Any, factory: Callable[[Any], LoadedModel] | None = None,
                 parent=None) -> None:
        super().__init__(parent)
        self.project = project
        self._factory = factory
        self._cond = threading.Condition()
        self._queue: list[tuple[str, bool, bool]] = []  # stem, force, refine with the CRF
        self._stop = False
        self._model: LoadedModel | None = None
        self._model_error: str | None = None
        self._reload = False
        self._done: set[str] = set()
        self._disk_fresh = True  # predictions on disk came from the current model
        self._crf: tuple[bool, Any] = (False, None)
        self._refined: set[str] = set()  # stems whose last prediction was CRF-refined
        self._probs: OrderedDict[str, tuple[np.ndarray, np.ndarray, float]] = OrderedDict()
        self._large_probs: tuple[str, np.ndarray] | None = None  # the shown image above the cap
        self._predict_lock = threading.Lock()
        self.setObjectName("PredictionWorker")

    # -- GUI thread API ---------------------------------------------------------------------
    def request(self, stems: list[str], force_first: bool = False) -> None:
        with self._cond:
            self._queue = [(s, force_first and i == 0, i == 0) for i, s in enumerate(dict.fromkeys(stems))]
            self._cond.notify()
        if not self.isRunning():
            self.start(QThread.Priority.LowPriority)

    def set_crf(self, enabled: bool, params: Any = None) -> None:
        with self._cond:
            if (enabled, params) != self._crf:
                self._refined.clear()
            self._crf = (enabled, params)

    def reload_model(self) -> None:
        """Use the project's (new) active version from the next prediction on."""
        with self._cond:
            self._reload = True
            self._model_error = None
            self._done.clear()
            self._refined.clear()
            self._disk_fresh = False
            self._probs.clear()
            self._large_probs = None
            self._cond.notify()

    def start_loading(self) -> None:
        """Start the thread (and the model load) before the first request."""
        if not self.isRunning():
            self.start(QThread.Priority.LowPriority)

    def probabilities(self, stem: str, image: np.ndarray) -> np.ndarray | None:
        """The model's CxHxW probabilities of ``image`` (the image ``stem`` on screen), or None
        without a trained model. Any thread; see the module docstring."""
        hw = tuple(np.asarray(image).shape[:2])
        with self._cond:
            cached = self._probs.get(stem)
            large = self._large_probs
            model = self._model
        if cached is not None and cached[1].shape[1:] == hw:
            return cached[1]
        if large is not None and large[0] == stem and large[1].shape[1:] == hw:
            return large[1]
        if model is None or model.predictor is None:
            return None
        with self._predict_lock:
            probs = np.asarray(model.predictor.predict(image).probs)
        with self._cond:
            if self._model is model:
                self._large_probs = (stem, probs)
        return probs

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def stop(self, wait_ms: int = 3000) -> bool:
        """Stop after the current item. A thread still busy after ``wait_ms`` (e.g. loading a
        model) is detached and kept alive until it ends; it no longer touches the project."""
        with self._cond:
            self._stop = True
            self._queue.clear()
            self._cond.notify()
        return stop_or_detach(self, wait_ms)

    # -- worker thread ----------------------------------------------------------------------
    def run(self) -> None:
        self._ensure_model()  # load at once: device and version show up even with no work
        while True:
            with self._cond:
                while not self._stop and (not self._queue or self._model_error):
                    self.busyChanged.emit(False, 0)
                    self._cond.wait()
                if self._stop:
                    return
                stem, force, primary = self._queue.pop(0)
                left = len(self._queue)
                refine = primary and self._crf[0]
            if not force and self._already_done(stem):
                if not refine or stem in self._refined:
                    continue
                force = True  # shown now: refine its stored (unrefined) prediction
            self.busyChanged.emit(True, left + 1)
            if not self._ensure_model():
                continue
            if self._model is None or self._model.predictor is None:
                with self._cond:
                    self._queue.clear()  # nothing to predict with until a version exists
                continue
            self._predict(stem, force, refine)

    def _already_done(self, stem: str) -> bool:
        if stem in self._done:
            return True
        try:
            return self._disk_fresh and self.project.prediction_path(stem).is_file()
        except Exception:  # noqa: BLE001
            return False

    def _ensure_model(self) -> bool:
        with self._cond:
            reload, self._reload = self._reload, False
        if self._model is not None and not reload:
            return True
        factory = self._factory or default_model_factory
        try:
            self._model = factory(self.project)
        except Exception as exc:  # noqa: BLE001 - shown to the user, the app keeps working
            message = f"Model could not be loaded: {exc}"
            with self._cond:
                self._model_error = message
                self._queue.clear()
            self._model = None
            self.modelFailed.emit(message)
            return False
        if self._stop:
            return False
        device = getattr(self._model.predictor, "device_name", None) or _device_name()
        self.modelReady.emit(str(device), self._model.label)
        return True

    def _predict(self, stem: str, force: bool, refine: bool = True) -> None:
        assert self._model is not None
        try:
            cached = self._probs.get(stem) if force else None
            if cached is not None:
                image, probs, uncertainty = cached
            else:
                image = self.project.load_image(stem)
                with self._predict_lock:
                    prediction = self._model.predictor.predict(image)
                probs, uncertainty = prediction.probs, float(prediction.uncertainty)
                if image.shape[0] * image.shape[1] <= PROBS_CACHE_MAX_PIXELS:
                    with self._cond:
                        self._probs[stem] = (image, probs, uncertainty)
                        while len(self._probs) > PROBS_CACHE:
                            self._probs.popitem(last=False)
            mask = self._mask(image, probs, refine)
        except Exception as exc:  # noqa: BLE001 - a bad image must not stop the queue
            self.failed.emit(stem, str(exc) or type(exc).__name__)
            return
        if self._stop:
            return
        try:
            self.project.save_prediction(stem, mask, uncertainty, self._model.version_id)
        except Exception:  # noqa: BLE001 - read-only project: shown, not stored
            pass
        self._done.add(stem)
        with self._cond:
            if refine and self._crf[0]:
                self._refined.add(stem)
            else:
                self._refined.discard(stem)
        self.predicted.emit(stem, mask, uncertainty)

    def _mask(self, image: np.ndarray, probs: np.ndarray, refine: bool) -> np.ndarray:
        """The class mask of ``probs``, DenseCRF-refined when ``refine`` and the CRF is on."""
        enabled, params = self._crf
        if enabled and refine:
            from segcore.crf import refine as crf_refine  # not ``refine``: that is the parameter

            try:
                probs = crf_refine(image, probs, params)
            except Exception:  # noqa: BLE001 - CRF unavailable: plain prediction
                pass
        return np.asarray(probs).argmax(axis=0).astype(np.uint8)
