"""Assisted masks (issue 16) vs painting with the brush: a simulated clicker on the suite.

Run: ``make bench-assist`` (``python -m tests.benchmarks.bench_assist [--n 50]``), under
``flock /work/bench.lock`` on the shared machine. Needs weizmann_horse and ph2_skin_lesion from
the development suite (../shared/datasets or $SEGLOOP_SUITE). Per dataset, on the first ``n``
images of its test split (suite_data.test_stems: the last 20 %, at most 80; never trained on):

* **model**: one one-click fine-tune at k = 5 (the first 5 sorted pool images, corrected by
  copying their truth into a project: segcore.simulate._project_with + segcore.loop.finetune,
  the app's defaults) predicts every test image (segcore.simulate.make_predictor); its
  probabilities are what the scribble tool refines.
* **the simulated user**, one action at a time, each placed on the current error:
  - *box*: one box per ground-truth connected component (components under 2 % of the truth's
    area are skipped), its bounding box jittered by up to ±3 px (seeded); segcore.assist.box_update.
  - *stroke* (scribble or brush/eraser stroke, the same gesture for both): in the largest
    error component (false negative → foreground / brush, false positive → background / eraser)
    a straight stroke through its innermost point (distance-transform maximum) along the
    component's principal axis, extended while the brush disc stays inside the component; the
    default brush diameter (15 px), smaller in components too thin for it.
  - scribbles accumulate per image like in the app; each one refines the ROI around it
    (segcore.assist.scribble_update: DenseCRF on the model's probabilities, or GrabCut with the
    scribbles as seeds where there is no model).
* **methods**: brush from an empty mask; box then scribbles (no model: GrabCut); box then brush
  strokes; the k = 5 prediction then scribbles (DenseCRF); the prediction then brush strokes.
* **reported**: mean IoU after 0 (the starting mask) / 1 / 2 / 3 / 5 / 10 actions, the median
  number of actions to reach IoU 0.85 and 0.9 (capped; "> cap" when the median image does not
  reach it) with the share of images that reach it, and ms per assist action (median / p95;
  brush strokes are not timed here: bench_brush measures them). Plus the latency of one
  scribble refinement on a 1-MP image (a ph2 image resized to 1155×866, real model
  probabilities, 40 strokes from the clicker) and of one box on 1 MP and on 12 MP.
Merged into results.json under "assist"; the table goes to results.md.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch

from segcore import assist
from segcore.assist import NO_SCRIBBLE
from segcore.io import read_image
from tests.benchmarks import common, suite_data
from tests.benchmarks.common import percentile, record, report

DATASETS = ("weizmann_horse", "ph2_skin_lesion")
BRUSH = 15            # the app's default brush diameter (app.editor_state.DEFAULTS)
JITTER = 3
MIN_COMPONENT = 0.02  # of the truth's area
CAPS = {"assist": 10, "brush": 150}
CHECKPOINTS = (0, 1, 2, 3, 5, 10)
THRESHOLDS = (0.85, 0.9)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int((a | b).sum())
    return 1.0 if union == 0 else float((a & b).sum() / union)


# ---- the simulated user ---------------------------------------------------------------------

def gt_boxes(gt: np.ndarray, rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    n, _comp, stats, _ = cv2.connectedComponentsWithStats(gt.astype(np.uint8), connectivity=8)
    h, w = gt.shape
    total = max(1, int(gt.sum()))
    out = []
    for i in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        if area < MIN_COMPONENT * total:
            continue
        j = rng.integers(-JITTER, JITTER + 1, 4)
        out.append((max(0, x + j[0]), max(0, y + j[1]), min(w, x + bw + j[2]), min(h, y + bh + j[3])))
    return out


def error_stroke(gt: np.ndarray, current: np.ndarray, size: int = BRUSH
                 ) -> tuple[list[tuple[float, float]], int, int] | None:
    """(points, label 1 = foreground / 0 = background, diameter) of the next corrective
    stroke, or None when the mask is perfect."""
    best = None
    for label, err in ((1, gt & ~current), (0, current & ~gt)):
        n, comp, stats, _ = cv2.connectedComponentsWithStats(err.astype(np.uint8), connectivity=8)
        if n > 1:
            i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
            area = int(stats[i, cv2.CC_STAT_AREA])
            if best is None or area > best[0]:
                best = (area, label, comp == i)
    if best is None:
        return None
    _area, label, region = best
    dist = cv2.distanceTransform(np.pad(region, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    dmax = float(dist[y, x])
    radius = max(0, min((size - 1) // 2, int(dmax) - 1))
    ys, xs = np.nonzero(region)
    if len(xs) > 2:
        cov = np.cov(np.stack([xs, ys]).astype(np.float64))
        axis = np.linalg.eigh(cov)[1][:, -1]
    else:
        axis = np.array([1.0, 0.0])
    h, w = region.shape
    ends = []
    for sign in (-1, 1):  # walk both ways along the axis while the brush disc stays inside
        last = 0
        for t in range(1, max(h, w)):
            px, py = int(round(x + sign * axis[0] * t)), int(round(y + sign * axis[1] * t))
            if not (0 <= px < w and 0 <= py < h) or dist[py, px] < radius + 1:
                break
            last = t
        ends.append((float(x + sign * axis[0] * last), float(y + sign * axis[1] * last)))
    return [ends[0], (float(x), float(y)), ends[1]], label, 2 * radius + 1


# ---- sessions: one image, one method ------------------------------------------------------

def _apply(mask: np.ndarray, update: assist.Update | None) -> None:
    if update is not None:
        x0, y0, x1, y1 = update.region
        mask[y0:y1, x0:x1] = update.pixels


def run_session(method: str, image: np.ndarray, gt: np.ndarray, probs: np.ndarray | None,
                rng: np.random.Generator) -> tuple[list[float], list[float]]:
    """IoU after 0, 1, 2, ... actions (up to the cap or IoU 1) and ms per timed action."""
    h, w = gt.shape
    if method.startswith("prediction"):
        assert probs is not None
        mask = probs.argmax(0).astype(np.uint8)
    else:
        mask = np.zeros((h, w), np.uint8)
    curve, times = [iou(mask == 1, gt)], []
    scribbles = np.full((h, w), NO_SCRIBBLE, np.uint8)
    use_probs = probs if method == "prediction+scribbles" else None
    cap = CAPS["brush" if method == "brush" else "assist"]
    if method.startswith("box"):
        for box in gt_boxes(gt, rng):
            t0 = time.perf_counter()
            _apply(mask, assist.box_update(image, mask, box, 1))
            times.append((time.perf_counter() - t0) * 1000.0)
            curve.append(iou(mask == 1, gt))
    while len(curve) - 1 < cap and curve[-1] < 0.999:
        stroke = error_stroke(gt, mask == 1)
        if stroke is None:
            break
        pts, label, size = stroke
        if method.endswith("scribbles"):
            box = assist.draw_stroke(scribbles, pts, size, label)
            if box is None:
                break
            t0 = time.perf_counter()  # the app's ROI: around the stroke just drawn
            up = assist.scribble_update(image, mask, scribbles, 1, probs=use_probs,
                                        roi=assist.roi_around(box, (h, w)))
            times.append((time.perf_counter() - t0) * 1000.0)
            _apply(mask, up)
        else:  # the brush / eraser paints the stroke into the mask
            assist.draw_stroke(mask, pts, size, label)
        curve.append(iou(mask == 1, gt))
    return curve, times


METHODS = ("brush", "box+scribbles", "box+brush", "prediction+scribbles", "prediction+brush")
LABELS = {
    "brush": "brush / eraser from an empty mask",
    "box+scribbles": "box (GrabCut) + scribbles (GrabCut, no model)",
    "box+brush": "box (GrabCut) + brush / eraser strokes",
    "prediction+scribbles": "k=5 prediction + scribbles (DenseCRF on its probabilities)",
    "prediction+brush": "k=5 prediction + brush / eraser strokes",
}


def _at(curve: list[float], n: int) -> float:
    return curve[min(n, len(curve) - 1)]  # a finished session keeps its last IoU


def _needed(curve: list[float], threshold: float) -> int | None:
    for i, v in enumerate(curve):
        if v >= threshold:
            return i
    return None


def summarise(curves: list[list[float]], cap: int) -> dict[str, Any]:
    out: dict[str, Any] = {f"iou_{n}": float(np.mean([_at(c, n) for c in curves])) for n in CHECKPOINTS}
    for t in THRESHOLDS:
        needed = [_needed(c, t) for c in curves]
        reached = [n for n in needed if n is not None]
        ranked = sorted(n if n is not None else cap + 1 for n in needed)
        med = ranked[len(ranked) // 2] if ranked else cap + 1
        out[f"actions_{t}"] = None if med > cap else int(med)
        out[f"reached_{t}"] = len(reached) / max(1, len(curves))
    return out


def _need_text(summary: dict[str, Any], t: float) -> str:
    a = summary[f"actions_{t}"]
    return (f"{a}" if a is not None else f"> {summary['cap']}") + f" ({summary[f'reached_{t}']:.0%})"


# ---- data and model -------------------------------------------------------------------------

def dataset_pairs(name: str, n: int) -> tuple[list[str], dict[str, Path], dict[str, Path]]:
    from segcore.simulate import matched_stems

    root = suite_data.dataset_dir(name)
    if root is None:
        raise SystemExit(f"{name}: the development suite was not found (../shared/datasets or "
                         "$SEGLOOP_SUITE)")
    images, masks = matched_stems(root / "images", root / "masks")
    test = suite_data.test_stems(name, sorted(images))
    return test[:n], images, masks


def k5_model(name: str, images: dict[str, Path], masks: dict[str, Path], say: Callable[[str], None]) -> Any:
    """One one-click fine-tune on the first 5 sorted pool images (app defaults)."""
    from segcore.loop import finetune
    from segcore.simulate import _project_with, default_config, make_predictor
    from segcore.versions import ModelStore

    test = set(suite_data.test_stems(name, sorted(images)))
    pool = [s for s in sorted(images) if s not in test][:5]
    with tempfile.TemporaryDirectory(prefix=f"bench_assist_{name}_") as tmp:
        project = _project_with(pool, images, masks, Path(tmp))
        t0 = time.perf_counter()
        result = finetune(project, default_config())
        say(f"{name}: k=5 fine-tune {time.perf_counter() - t0:.0f} s ({result.stopped_reason})")
        model = ModelStore(project).load(result.version_id)
        project.close()
    return make_predictor(model)


# ---- latency at 1 MP / 12 MP ----------------------------------------------------------------

def latency(predictor: Any, image: np.ndarray, gt: np.ndarray, strokes: int = 40) -> dict[str, Any]:
    big = cv2.resize(image, (1155, 866), interpolation=cv2.INTER_LINEAR)
    truth = cv2.resize(gt.astype(np.uint8), (1155, 866), interpolation=cv2.INTER_NEAREST) > 0
    probs = predictor.predict(big).probs
    mask = probs.argmax(0).astype(np.uint8)
    scribbles = np.full(truth.shape, NO_SCRIBBLE, np.uint8)
    ms = []
    for _ in range(strokes):
        stroke = error_stroke(truth, mask == 1)
        if stroke is None:
            break
        pts, label, size = stroke
        box = assist.draw_stroke(scribbles, pts, size, label)
        if box is None:
            break
        t0 = time.perf_counter()
        up = assist.scribble_update(big, mask, scribbles, 1, probs=probs,
                                    roi=assist.roi_around(box, truth.shape))
        ms.append((time.perf_counter() - t0) * 1000.0)
        _apply(mask, up)
    ys, xs = np.nonzero(truth)
    box1 = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    box_ms = []
    for _ in range(5):
        t0 = time.perf_counter()
        assist.box_update(big, np.zeros(truth.shape, np.uint8), box1, 1)
        box_ms.append((time.perf_counter() - t0) * 1000.0)
    huge = cv2.resize(image, (4000, 3000), interpolation=cv2.INTER_LINEAR)
    s = 4000 / 1155
    box12 = (int(box1[0] * s), int(box1[1] * s), int(box1[2] * s), int(box1[3] * s))
    huge_mask = np.zeros(huge.shape[:2], np.uint8)
    box12_ms = []
    for _ in range(3):
        t0 = time.perf_counter()
        assist.box_update(huge, huge_mask, box12, 1)
        box12_ms.append((time.perf_counter() - t0) * 1000.0)
    return {"scribble_1mp_ms_median": float(np.median(ms)), "scribble_1mp_ms_p95": percentile(ms, 95),
            "scribble_1mp_n": len(ms), "box_1mp_ms_median": float(np.median(box_ms)),
            "box_12mp_ms_median": float(np.median(box12_ms))}


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except Exception:  # noqa: BLE001 - informative only
        return "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=50, help="test images per dataset (default 50)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    started = datetime.now(timezone.utc)
    def say(text: str) -> None:
        print(f"[{datetime.now(timezone.utc):%H:%M:%S}] {text}", flush=True)

    rows, results, lat = [], {}, None
    for name in DATASETS:
        stems, images, masks = dataset_pairs(name, args.n)
        predictor = k5_model(name, images, masks, say)
        from segcore.simulate import read_truth

        curves: dict[str, list[list[float]]] = {m: [] for m in METHODS}
        times: dict[str, list[float]] = {m: [] for m in METHODS}
        boxes = []
        for i, stem in enumerate(stems):
            image = np.array(read_image(images[stem]))
            gt = read_truth(masks[stem]) == 1
            probs = predictor.predict(image).probs
            boxes.append(len(gt_boxes(gt, np.random.default_rng(i))))
            for method in METHODS:
                curve, ms = run_session(method, image, gt, probs, np.random.default_rng(i))
                curves[method].append(curve)
                times[method].extend(ms)
            if lat is None and name == "ph2_skin_lesion":
                lat = latency(predictor, image, gt)
                say(f"1-MP latency: {lat}")
            if (i + 1) % 10 == 0:
                say(f"{name}: {i + 1}/{len(stems)} images")
        for method in METHODS:
            cap = CAPS["brush" if method == "brush" else "assist"]
            summary = summarise(curves[method], cap)
            ms = times[method]
            summary.update(ms_median=float(np.median(ms)) if ms else None,
                           ms_p95=percentile(ms, 95) if ms else None, n=len(curves[method]), cap=cap)
            results[f"{name}/{method}"] = summary
            rows.append([name, LABELS[method], *[summary[f"iou_{n}"] for n in CHECKPOINTS],
                         _need_text(summary, 0.85), _need_text(summary, 0.9),
                         summary["ms_median"], summary["ms_p95"]])
        results[f"{name}/boxes_per_image"] = float(np.mean(boxes))
        say(f"{name}: done, {np.mean(boxes):.2f} boxes per image")
    ended = datetime.now(timezone.utc)
    results["latency"] = lat
    results["run"] = {"start": started.isoformat(), "end": ended.isoformat(), "commit": _commit(),
                      "n": args.n}
    record("assist", results)
    headers = ["dataset", "method", *[f"IoU {n}" for n in CHECKPOINTS], "actions to 0.85 (reached)",
               "actions to 0.9 (reached)", "ms/action median", "ms/action p95"]
    title = (f"Assisted masks vs brush: simulated clicker (test split, at most {args.n} images "
             "per dataset, k=5 model, default brush 15 px)")
    text = report(title, headers, rows)
    if lat is not None:
        note = (f"_Run {started:%Y-%m-%d %H:%M}–{ended:%H:%M} UTC on {_commit()}, 2 cores, no GPU. "
                "Images: " + ", ".join(f"{d} {results[f'{d}/brush']['n']}" for d in DATASETS) + ". "
                f"Actions = boxes (one per object: {results['weizmann_horse/boxes_per_image']:.2f} / "
                f"{results['ph2_skin_lesion/boxes_per_image']:.2f} per image) and strokes; "
                "IoU n = mean IoU after n actions (0 = the starting mask; a session that reached "
                "IoU 1 keeps it). Scribble refinement on a 1-MP image (ph2 resized to 1155×866, "
                f"real probabilities): median {lat['scribble_1mp_ms_median']:.0f} ms, p95 "
                f"{lat['scribble_1mp_ms_p95']:.0f} ms over {lat['scribble_1mp_n']} strokes; "
                f"a box: {lat['box_1mp_ms_median']:.0f} ms at 1 MP, "
                f"{lat['box_12mp_ms_median']:.0f} ms at 12 MP._\n\n")
        md = common.RESULTS_MD
        body = md.read_text()
        body = body.replace(text + "\n", text + "\n" + note, 1)
        md.write_text(body)
        print(note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
