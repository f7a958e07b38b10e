"""Which images to correct first before any model is trained: a cold-start order.

With a trained model the app's "needs attention" order is the prediction uncertainty spread over
the data (``segcore.attention``). Before the first fine-tune there are no predictions, and ranking
by an untrained model's uncertainty measured worse than a random pick on Weizmann Horse (0.92–0.97
of random's IoU at k = 5, 20, 50). With a handful of labels the images worth correcting first are
*typical* ones from *different* parts of the data: TypiClust (Hacohen et al., "Active learning on
a budget", ICML 2022), on L2-normalised, globally pooled ImageNet encoder features (the same
backbone the model fine-tunes):

- in rounds of 5, 5, 10, 20, ... images (a labelled set that doubles), k-means splits the images
  into (already chosen + round size) clusters; each of the largest clusters that holds no chosen
  image gives its most typical image, typicality = 1 / mean distance to its ``neighbours``
  nearest images in the cluster;
- after the first ``CLUSTERED`` places, greedily typicality · distance to the nearest chosen image.

The clusters are what keeps a dense family of near-copies from filling the first batch: the
earlier rule (typicality · distance alone) put 2–3 empty tiles among the first 5 on 96–128 px
nucleus and skin-lesion tiles, where blank tiles are near-identical and so the most "typical".
Deterministic (OpenCV k-means++ with a fixed seed); the typicality is computed in chunks of 1024
rows.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence, TYPE_CHECKING

import cv2
import numpy as np
import torch

from .attention import unit_distances
from .project import COLD_START_KEY  # re-exported for callers

if TYPE_CHECKING:  # the type only: no import cycle at run time
    from .project import Project
EMBED_SIZE = 224
#: the first round of the clustered head (the cold start's first batch)
FIRST_BATCH = 5
#: positions chosen by clustering; the rest by the greedy typicality · gap rule
CLUSTERED = 100


def embedding_model(config: Any) -> Any:
    """A model whose encoder embeds images: ``config``'s binary architecture with its ImageNet
    backbone (every default shares the MobileNetV2 encoder)."""
    from . import models
    return models.build(config.arch_for(2), num_classes=2, pretrained=config.pretrained).eval()


@torch.inference_mode()
def embed(model: Any, images: Iterable[np.ndarray], size: int = EMBED_SIZE, batch: int = 16) -> np.ndarray:
    """(N, C) float32, L2-normalised global average of the encoder's last stage per RGB image."""
    from .training.data import normalize, stretch_image
    out: list[np.ndarray] = []
    pending: list[torch.Tensor] = []

    def flush() -> None:
        feats = model.forward_features(torch.stack(pending))["out"].float().mean(dim=(2, 3))
        out.append(torch.nn.functional.normalize(feats, dim=1).numpy())
        pending.clear()

    for image in images:
        pending.append(normalize(stretch_image(image, size), model.mean, model.std))
        if len(pending) == batch:
            flush()
    if pending:
        flush()
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)


def _distances(emb: np.ndarray, rows: slice) -> np.ndarray:
    return unit_distances(emb[rows], emb)


def _typicality(emb: np.ndarray, neighbours: int) -> np.ndarray:
    """1 / mean distance to the ``neighbours`` nearest other rows (1.0 for a lone row)."""
    n = len(emb)
    typicality = np.ones(n, np.float64)
    if n < 2:
        return typicality
    k = max(1, min(neighbours, n - 1))
    for start in range(0, n, 1024):
        d = _distances(emb, slice(start, start + 1024))
        nearest = np.partition(d, k, axis=1)[:, 1:k + 1]  # column 0 is the point itself (0)
        typicality[start:start + len(d)] = 1.0 / (nearest.mean(axis=1) + 1e-6)
    return typicality


def _kmeans(emb: np.ndarray, k: int) -> np.ndarray:
    """Cluster label per row: OpenCV's k-means++, seeded (it resets OpenCV's global RNG) so the
    order is reproducible."""
    if k >= len(emb):
        return np.arange(len(emb))
    cv2.setRNGSeed(0)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 100, 1e-4)
    _, labels, _ = cv2.kmeans(np.ascontiguousarray(emb, np.float32), k, None, criteria, 1,
                              cv2.KMEANS_PP_CENTERS)
    return labels.ravel()


def typical_diverse_order(emb: np.ndarray, neighbours: int = 20, first: int = FIRST_BATCH,
                          clustered: int = CLUSTERED) -> list[int]:
    """Indices of ``emb`` rows in cold-start order (see the module docstring)."""
    n = len(emb)
    order: list[int] = []
    batch = max(1, first)
    while len(order) < min(n, clustered):
        k = min(n, len(order) + batch)
        labels = _kmeans(emb, k)
        sizes = np.bincount(labels, minlength=k)
        covered = set(labels[order].tolist())
        open_clusters = [c for c in np.argsort(-sizes, kind="stable").tolist()
                         if sizes[c] > 0 and c not in covered][:batch]
        if not open_clusters:
            break
        for c in open_clusters:
            members = np.flatnonzero(labels == c)
            best = members[int(np.argmax(_typicality(emb[members], neighbours)))]
            order.append(int(best))
        batch = len(order)  # rounds of 5, 5, 10, 20, ... as labelled sets grow
    return _continue_typical_gap(emb, order, neighbours)


def _continue_typical_gap(emb: np.ndarray, order: list[int], neighbours: int) -> list[int]:
    """The rest after the clustered head: greedy typicality · distance to the nearest chosen."""
    n = len(emb)
    if len(order) >= n:
        return order
    typicality = _typicality(emb, neighbours)
    if not order:
        order = [int(np.argmax(typicality))]
    chosen = np.zeros(n, bool)
    chosen[order] = True
    gap = np.full(n, np.inf)
    for i in range(0, len(order), 1024):
        gap = np.minimum(gap, unit_distances(emb, emb[order[i:i + 1024]]).min(axis=1))
    while len(order) < n:
        score = np.where(chosen, -1.0, typicality * gap)
        nxt = int(np.argmax(score))
        if score[nxt] <= 0:  # duplicates of chosen images: keep the rest by typicality
            rest = np.flatnonzero(~chosen)
            order += [int(i) for i in rest[np.argsort(-typicality[rest], kind="stable")]]
            break
        order.append(nxt)
        chosen[nxt] = True
        gap = np.minimum(gap, _distances(emb, slice(nxt, nxt + 1))[0])
    return order


def cold_start_order(project: Project, model: Any, stems: Sequence[str] | None = None,
                     on_progress: Callable[[int, int], None] | None = None,
                     should_stop: Callable[[], bool] | None = None) -> list[str] | None:
    """Stems of ``project`` (default: all) in cold-start order; unreadable images go last.

    The embeddings are kept in the project (segcore.attention: the attention order after a
    model exists spreads over them); images embedded before are not embedded again.
    Returns None when ``should_stop()`` turned true (nothing is computed further).
    """
    from . import attention
    stems = list(project.stems() if stems is None else stems)
    known = attention.load_embeddings(project.state_dir)
    good: list[str] = []
    bad: list[str] = []
    todo = [s for s in stems if s not in known]

    def images() -> Iterable[np.ndarray]:
        for i, stem in enumerate(todo):
            if should_stop is not None and should_stop():
                return
            try:
                image = project.load_image(stem)
            except Exception:  # noqa: BLE001 - an unreadable image is reported, never fatal
                bad.append(stem)
                image = None
            if image is not None:
                good.append(stem)
                yield image
            if on_progress is not None:
                on_progress(i + 1, len(todo))

    new = embed(model, images())
    if should_stop is not None and should_stop():
        return None
    fresh = dict(zip(good, new))
    if fresh and not project.read_only:
        attention.store_embeddings(project.state_dir, fresh)
    table = {**known, **fresh}
    ranked = [s for s in stems if s in table]
    emb = np.stack([table[s] for s in ranked]).astype(np.float32) if ranked else np.zeros((0, 0), np.float32)
    return [ranked[i] for i in typical_diverse_order(emb)] + bad


def store_cold_start_order(project: Project, stems: Sequence[str]) -> None:
    """Remember the order in the project (``Project.attention_order`` uses it for unpredicted images)."""
    project.set_setting(COLD_START_KEY, list(stems))
