"""Two model versions, image by image: which images got worse (or better) with the new one.

    changes = compare_images(project, a, b)          # a = the earlier version, b = the later one
    changes[0].stem, changes[0].delta                # the largest drop first (delta = IoU b - IoU a)

Images: every held-out image and every done image that has a mask. Each gets the IoU and
Boundary IoU of both versions against the user's mask by segcore.metrics.score_mask (the one
scoring rule: binary foreground IoU / BIoU, multi-class per-image mIoU over the classes present,
void never scored). Where both versions' metrics hold that image's held-out score (the
fine-tune's ``held_out_scores``; a parent's from its child's ``parent_held_out_scores``), the
stored scores are used; otherwise both versions predict it (segcore.inference.Predictor with the
version's own preprocessing) and the plain predictions (no DenseCRF) are cached per (version,
stem) as PNGs in ``.segloop/compare/v0003/<stem>.png``, so a second comparison, and the diff
overlay of one image, need no model.

Status of an image: "held out" (never trained on by either), "trained on by vA" / "… by vB" /
"trained on by both", or "done since" (done after both versions were trained).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TYPE_CHECKING

import numpy as np

from . import io
from .metrics import IGNORE_INDEX, score_mask

if TYPE_CHECKING:  # the type only: no import cycle at run time
    from ._records import ModelVersion
    from .project import Project

CACHE_DIR = "compare"  # under the project's .segloop/
HELD_OUT = "held out"
DONE_SINCE = "done since"
# diff codes of diff_codes(): what the two predictions say where they differ
SAME, ONLY_A, ONLY_B, NEITHER = 0, 1, 2, 3

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ImageChange:
    """One image's scores under versions a and b (None: not scorable, e.g. a failed image)."""

    stem: str
    status: str
    iou_a: float | None
    iou_b: float | None
    biou_a: float | None = None
    biou_b: float | None = None
    stored: bool = False       # from the versions' stored held-out scores, not predicted now
    error: str = ""

    @property
    def delta(self) -> float | None:
        """IoU b - IoU a: negative = the image got worse with b."""
        if self.iou_a is None or self.iou_b is None:
            return None
        return self.iou_b - self.iou_a

    @property
    def biou_delta(self) -> float | None:
        if self.biou_a is None or self.biou_b is None:
            return None
        return self.biou_b - self.biou_a


def by_drop(changes: Sequence[ImageChange]) -> list[ImageChange]:
    """Largest drop first (most negative delta), images without a delta last, ties by stem."""
    return sorted(changes, key=lambda c: (c.delta is None, c.delta if c.delta is not None else 0.0, c.stem))


def _version(project: Project, v: Any) -> ModelVersion:
    return v if hasattr(v, "metrics") else project.models.get(int(v))


def _trained(v: ModelVersion) -> set[str]:
    return set(((v.meta or {}).get("data") or {}).get("train", []))


def status_of(stem: str, a: ModelVersion, b: ModelVersion, held_out: set[str]) -> str:
    ta, tb = stem in _trained(a), stem in _trained(b)
    if ta and tb:
        return "trained on by both"
    if ta or tb:
        return f"trained on by v{a.id if ta else b.id}"
    return HELD_OUT if stem in held_out else DONE_SINCE


def stored_scores(a: ModelVersion, b: ModelVersion) -> tuple[dict[str, list], dict[str, list]]:
    """{stem: [IoU, BIoU]} stored for a and for b: each version's own held-out scores, completed
    by its child's ``parent_held_out_scores`` when the other version is that child."""
    sa = dict((a.metrics or {}).get("held_out_scores") or {})
    sb = dict((b.metrics or {}).get("held_out_scores") or {})
    if b.parent == a.id:
        for stem, s in ((b.metrics or {}).get("parent_held_out_scores") or {}).items():
            sa.setdefault(stem, s)
    if a.parent == b.id:
        for stem, s in ((a.metrics or {}).get("parent_held_out_scores") or {}).items():
            sb.setdefault(stem, s)
    return sa, sb


def scope(project: Project) -> list[str]:
    """The images compared: held-out ones with a mask on disk, and every done image."""
    held = set(project.held_out_stems())
    done = set(project.done_stems())
    return sorted(s for s in held | done if s in done or project.mask_path(s).is_file())


def cache_path(project: Project, version_id: int, stem: str) -> Path:
    return Path(project.state_dir) / CACHE_DIR / f"v{int(version_id):04d}" / f"{stem}.png"


def cached_prediction(project: Project, version_id: int, stem: str) -> np.ndarray | None:
    """The cached plain prediction of ``version_id`` for ``stem``, or None (absent, unreadable,
    or not the image's size any more)."""
    path = cache_path(project, version_id, stem)
    if not path.is_file():
        return None
    try:
        pred = io.read_mask(path, project.num_classes)
        if pred.shape != io.image_size(project.image_path(stem)):
            return None
        return pred
    except Exception:  # noqa: BLE001 - a damaged cache file is just predicted again
        return None


def default_predictor(project: Project, version_id: int) -> Any:
    """segcore.inference.Predictor of the version (its own preprocessing preset)."""
    from .inference import Predictor
    model: Any = project.models.load(version_id)  # a SegModel (ModelStore.load is typed nn.Module)
    return Predictor(model, device="auto")


class Predictions:
    """Plain predictions of versions for stems: the cache first, else the version's model (loaded
    once, on first need, by ``make_predictor(project, version_id)``); new ones are cached."""

    def __init__(self, project: Project,
                 make_predictor: Callable[[Any, int], Any] | None = None) -> None:
        self.project = project
        self.make_predictor = make_predictor or default_predictor
        self._predictors: dict[int, Any] = {}

    def get(self, version_id: int, stem: str, image: np.ndarray | None = None) -> np.ndarray:
        pred = cached_prediction(self.project, version_id, stem)
        if pred is not None:
            return pred
        if version_id not in self._predictors:
            try:
                self._predictors[version_id] = self.make_predictor(self.project, version_id)
            except Exception as exc:  # noqa: BLE001 - e.g. a damaged checkpoint: tried once only
                self._predictors[version_id] = exc
        predictor = self._predictors[version_id]
        if isinstance(predictor, Exception):
            raise predictor
        image = self.project.load_image(stem) if image is None else image
        pred = np.asarray(predictor.predict(image).mask, np.uint8)
        if not self.project.read_only:
            path = cache_path(self.project, version_id, stem)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                io.write_mask(path, pred, self.project.num_classes)
            except Exception:  # noqa: BLE001 - a cache that cannot be written is only slower
                pass
        return pred


def compare_images(project: Project, a: Any, b: Any, stems: Sequence[str] | None = None,
                   progress: Progress | None = None, cancel: threading.Event | None = None,
                   predictions: Predictions | None = None) -> list[ImageChange]:
    """Every image of ``stems`` (default :func:`scope`) scored under versions ``a`` and ``b``
    (ids or ModelVersion), sorted by :func:`by_drop`. ``progress(done, total, stem)`` after each
    image; a set ``cancel`` event stops early and returns the images done so far."""
    va, vb = _version(project, a), _version(project, b)
    stems = scope(project) if stems is None else list(stems)
    held = set(project.held_out_stems())
    sa, sb = stored_scores(va, vb)
    preds = predictions or Predictions(project)
    k = project.num_classes
    out: list[ImageChange] = []
    for i, stem in enumerate(stems):
        if cancel is not None and cancel.is_set():
            break
        status = status_of(stem, va, vb, held)
        if stem in sa and stem in sb and sa[stem][0] is not None and sb[stem][0] is not None:
            out.append(ImageChange(stem, status, sa[stem][0], sb[stem][0], sa[stem][1], sb[stem][1], True))
        else:
            out.append(_predicted(project, preds, va.id, vb.id, stem, status, k))
        if progress is not None:
            progress(i + 1, len(stems), stem)
    return by_drop(out)


def _predicted(project: Project, preds: Predictions, a: int, b: int, stem: str, status: str,
               k: int) -> ImageChange:
    try:
        mask = project.load_mask(stem)
        if mask is None:
            return ImageChange(stem, status, None, None, error="no mask")
        image = project.load_image(stem)
        pa, pb = preds.get(a, stem, image), preds.get(b, stem, image)
        s_a, s_b = score_mask(mask, pa, k), score_mask(mask, pb, k)
    except Exception as exc:  # noqa: BLE001 - one bad image is reported, the others compared
        return ImageChange(stem, status, None, None, error=str(exc) or type(exc).__name__)
    nan = lambda v: None if v != v else float(v)
    return ImageChange(stem, status, nan(s_a.iou), nan(s_b.iou), nan(s_a.biou), nan(s_b.biou))


def diff_codes(mask: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, num_classes: int = 2,
               ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Per pixel, where the two predictions differ: ONLY_A (a agrees with the mask, b not),
    ONLY_B, NEITHER (they differ and both are wrong: multi-class); SAME elsewhere and on void.
    Binary: nonzero = foreground, as score_mask counts it."""
    if not (mask.shape == pred_a.shape == pred_b.shape):
        raise ValueError(f"mask {mask.shape}, predictions {pred_a.shape} and {pred_b.shape} differ in size")
    void = mask == ignore_index
    if num_classes == 2:
        mask, pred_a, pred_b = mask != 0, pred_a != 0, pred_b != 0
    differ = (pred_a != pred_b) & ~void
    codes = np.zeros(mask.shape, np.uint8)
    codes[differ & (pred_a == mask)] = ONLY_A
    codes[differ & (pred_b == mask)] = ONLY_B
    codes[differ & (pred_a != mask) & (pred_b != mask)] = NEITHER
    return codes
