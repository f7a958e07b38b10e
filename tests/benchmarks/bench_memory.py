"""Memory and one-click timing of the real app while it fine-tunes on real images.

Run: ``python -m tests.benchmarks.bench_memory [--quick] [--k 20]``. Builds a project of all 327
Weizmann Horse images (skipped with a message without the dataset) with ``k`` of them corrected
(ground truth copied into masks/, never from the last 80 stems), opens it in the real main
window (Qt offscreen), clicks Fine-tune with the app's default settings, and samples the
process RSS every 100 ms until the predictions are updated. Baseline: RSS with the project
open before the click. Also reports the wall time from click to trained model and to
updated predictions, and the GUI event-loop latency (max gap of a 10 ms timer) meanwhile.
Merged into results.json under "memory".
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.benchmarks.common import record, report, rss_mb, weizmann_dir


def build_project(root: Path, k: int) -> Path:
    from segcore.io import read_mask, write_mask

    src = weizmann_dir()
    assert src is not None
    folder = root / "horses"
    (folder / "masks").mkdir(parents=True)
    stems = sorted(p.stem for p in (src / "images").glob("*.jpg"))
    for s in stems:
        shutil.copy(src / "images" / f"{s}.jpg", folder / f"{s}.jpg")
    rng_order = stems[:-80]
    for s in rng_order[:: max(1, len(rng_order) // k)][:k]:
        write_mask(folder / "masks" / f"{s}.png", read_mask(src / "masks" / f"{s}.png"))
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="a 15 s time budget and no cold-start ranking before the click")
    parser.add_argument("--k", type=int, default=20, help="corrected images")
    args = parser.parse_args(argv)
    if weizmann_dir() is None:
        print("bench_memory: Weizmann Horse not found beside the checkout; skipped")
        return 0
    home = Path(tempfile.mkdtemp(prefix="segloop-bench-mem-"))
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")
    os.environ["XDG_DATA_HOME"] = str(home / "data")
    folder = build_project(home, args.k)

    from segcore.memory import prepare_process
    prepare_process()  # as segloop's main(): allocator setting, torch before Qt
    from PySide6.QtCore import QTimer

    from app.main import create_app
    from app.main_window import MainWindow

    if args.quick:
        from app.workers import cold_start

        cold_start.ENABLED = False
    app = create_app()
    window = MainWindow()
    window.show()
    window.open_project(folder)
    t_end = time.monotonic() + 30
    while window.session is None and time.monotonic() < t_end:
        app.processEvents()
    for _ in range(50):
        app.processEvents()
        time.sleep(0.02)
    # no model yet: the session ranks the images for a first pass in the background; a user is
    # correcting meanwhile, so wait for it (and report how long it took) before the click
    ranking = window.session.cold_start
    ranking_s = None
    if ranking is not None:
        t_rank = time.monotonic()
        while not ranking.isFinished() and time.monotonic() < t_rank + 600:
            app.processEvents()
            time.sleep(0.02)
        ranking_s = time.monotonic() - t_rank + 1.0  # + the second waited above
        print(f"cold-start ranking of 327 images: done about {ranking_s:.1f} s after opening")
    baseline = rss_mb()
    samples: list[float] = []
    sample_t: list[float] = []
    events: list[tuple[float, str]] = []  # (monotonic time, the fine-tune's progress message)
    gaps: list[float] = []
    last = [time.monotonic()]

    stalls: list[tuple[float, float]] = []  # (seconds since start of sampling, gap ms) over 50 ms

    def tick() -> None:
        now = time.monotonic()
        gaps.append((now - last[0]) * 1000)
        if gaps[-1] > 50 and len(gaps) > 1:
            stalls.append((now - t_sampling, gaps[-1]))
        last[0] = now
        samples.append(rss_mb())
        sample_t.append(now)

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    ctl = window.training
    ctl.worker.message.connect(lambda text: events.append((time.monotonic(), text)))
    if args.quick:
        ctl.panel.advanced.budget.setValue(15)
    budget = ctl.panel.advanced.config().time_budget_s
    timer.start()
    t0 = t_sampling = time.monotonic()
    if not ctl.start():
        print("bench_memory: the Fine-tune button was not enabled")
        return 1
    t0 = ctl.timings.get("click", t0)
    deadline = t0 + 3600
    while "predicted" not in ctl.timings and time.monotonic() < deadline:
        app.processEvents()
        if ctl.last_error:
            print(f"bench_memory: training failed: {ctl.last_error}")
            return 1
        time.sleep(0.002)
    timer.stop()
    trained = ctl.timings.get("trained", float("nan")) - t0
    predicted = ctl.timings.get("predicted", float("nan")) - t0
    m = (ctl.last_result.metrics or {}) if ctl.last_result else {}
    peak = max(samples) if samples else float("nan")
    gaps_sorted = sorted(gaps[1:]) or [float("nan")]
    p99 = gaps_sorted[int(0.99 * (len(gaps_sorted) - 1))]
    window.close()
    # where the memory goes: the peak RSS between one progress message and the next
    marks = [(t0, "click")] + events + [(ctl.timings.get("trained", t0), "model saved: re-predicting"),
                                       (ctl.timings.get("predicted", t0), "end")]
    marks.sort(key=lambda m: m[0])
    phase_rows = []
    for (ta, what), (tb, _next) in zip(marks, marks[1:]):
        inside = [r for t, r in zip(sample_t, samples) if ta <= t < tb]
        if inside:
            phase_rows.append((what[:90], tb - ta, max(inside), max(inside) / baseline))
    print("GUI stalls over 50 ms (s after the click, ms): "
          + (", ".join(f"{t:.1f} s: {g:.0f} ms" for t, g in stalls) or "none"))
    rows = [("project open (baseline)", baseline, 1.0),
            ("peak while fine-tuning + re-predicting", peak, peak / baseline)]
    report(f"App memory with 327 Weizmann images, k={args.k} corrected",
           ["state", "RSS MB", "ratio to baseline"], rows)
    report(f"App memory by phase of the click (k={args.k}; peak RSS from each progress message to the next)",
           ["from the message", "seconds", "peak RSS MB", "ratio to baseline"], phase_rows)
    report("One click (app defaults)",
           ["time budget s", "click → model s", "click → predictions s", "held-out IoU", "held-out BIoU",
            "GUI max gap ms", "GUI p99 gap ms"],
           [(budget, trained, predicted, m.get("val_iou"), m.get("val_biou"), max(gaps[1:] or [0]), p99)])
    record("memory", {"images": 327, "k": args.k, "baseline_rss_mb": round(baseline, 1),
                      "peak_rss_mb": round(peak, 1), "click_to_model_s": round(trained, 1),
                      "click_to_predictions_s": round(predicted, 1), "time_budget_s": budget,
                      "held_out_iou": m.get("val_iou"), "held_out_biou": m.get("val_biou"),
                      "gui_max_gap_ms": round(max(gaps[1:] or [0]), 1), "gui_p99_gap_ms": round(p99, 1),
                      "cold_start_ranking_s": None if ranking_s is None else round(ranking_s, 1),
                      "phases": [{"from": w, "seconds": round(d, 1), "peak_rss_mb": round(r, 1)}
                                 for w, d, r, _ in phase_rows]})
    shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
