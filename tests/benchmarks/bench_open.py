"""Open a folder of 2,000 images in the real main window: time to first image, memory.

Run: ``python -m tests.benchmarks.bench_open [--n 2000] [--size 640x480] [--no-model]``.
Measures, in this fresh process (Qt offscreen):
- baseline: ``os.scandir`` of the folder (the least any opener must do), and
  ``Project.open`` alone (segcore: scan names + mtimes, sync the SQLite index);
- ``open_project`` → first image on the canvas (``Session.shown``), the number that must stay
  under 1 s; ratio = that time / scandir time;
- peak RSS after opening and after scrolling the whole image list page by page (thumbnails
  are made for visible rows only, cached on disk, and the prediction worker runs meanwhile).
Results are merged into tests/benchmarks/results.json under "project_open".
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def make_images(folder: Path, n: int, size: tuple[int, int]) -> Path:
    """``n`` JPEGs (smooth noise + a disc) in ``folder``; reused if already there."""
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.jpg"))) == n:
        return folder
    rng = np.random.default_rng(0)
    w, h = size
    base = cv2.resize(rng.integers(0, 255, (h // 16, w // 16, 3), dtype=np.uint8), (w, h))
    for i in range(n):
        img = np.roll(base, i * 7, axis=1).copy()
        cv2.circle(img, (int(rng.integers(40, w - 40)), int(rng.integers(40, h - 40))),
                   int(rng.integers(15, 60)), tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
        cv2.imwrite(str(folder / f"img_{i:05d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return folder


from tests.benchmarks.common import rss_mb  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--no-model", action="store_true", help="no prediction worker model")
    parser.add_argument("--keep", action="store_true", help="keep the generated folder")
    parser.add_argument("--quick", action="store_true", help="300 images instead of 2,000")
    args = parser.parse_args()
    if args.quick:
        args.n = min(args.n, 300)
    size = tuple(int(v) for v in args.size.split("x"))

    home = Path(tempfile.mkdtemp(prefix="segloop-bench-open-"))
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")
    os.environ["XDG_DATA_HOME"] = str(home / "data")
    source = make_images(Path(tempfile.gettempdir()) / f"segloop-bench-{args.n}-{args.size}",
                         args.n, size)
    folder = home / "project"
    shutil.copytree(source, folder)  # fresh: no index, no thumbnails yet

    from app.main import create_app
    from app.theme import apply_theme
    from app.workers import prediction
    from segcore.project import Project

    if args.no_model:
        def no_model(project):
            raise RuntimeError("model disabled for this benchmark")
        prediction.default_model_factory = no_model

    app = create_app()
    apply_theme(app, "dark")
    from app.main_window import MainWindow

    t0 = time.perf_counter()
    n_scan = sum(1 for _ in os.scandir(folder))
    scandir_ms = (time.perf_counter() - t0) * 1000
    probe = folder.parent / "probe"
    shutil.copytree(source, probe)
    t0 = time.perf_counter()
    Project.open(probe).close()
    project_open_ms = (time.perf_counter() - t0) * 1000
    shutil.rmtree(probe)

    window = MainWindow()
    window.resize(1400, 900)
    window.show()
    app.processEvents()
    rss_before = rss_mb()
    shown_at: list[float] = []
    t0 = time.perf_counter()
    window.open_project(folder)
    window.session.shown.connect(lambda _s: shown_at.append(time.perf_counter()))
    if window.stack.currentWidget() is window.canvas:
        shown_at.append(time.perf_counter())
    first_image_ms = (shown_at[0] - t0) * 1000 if shown_at else float("nan")
    app.processEvents()
    painted_ms = (time.perf_counter() - t0) * 1000
    rss_open = rss_mb()

    view = window.image_list.view
    bar = view.verticalScrollBar()
    t_scroll = time.perf_counter()
    while bar.value() < bar.maximum():
        bar.setValue(bar.value() + bar.pageStep())
        for _ in range(3):
            app.processEvents()
    window.thumbs.wait(600_000)
    app.processEvents()
    scroll_s = time.perf_counter() - t_scroll
    n_thumbs = len(list((folder / ".segloop" / "thumbs").glob("*.png")))
    rss_scrolled = rss_mb()
    peak = peak_rss_mb()
    window.close()
    app.processEvents()

    result = {
        "images": args.n, "image_size": args.size, "model": not args.no_model,
        "scandir_ms": round(scandir_ms, 2), "project_open_ms": round(project_open_ms, 1),
        "first_image_ms": round(first_image_ms, 1), "first_paint_ms": round(painted_ms, 1),
        "first_image_vs_scandir": round(first_image_ms / max(scandir_ms, 1e-3), 1),
        "rss_before_open_mb": round(rss_before, 1), "rss_after_open_mb": round(rss_open, 1),
        "rss_after_scroll_mb": round(rss_scrolled, 1), "peak_rss_mb": round(peak, 1),
        "scroll_whole_list_s": round(scroll_s, 1), "thumbnails_made": n_thumbs,
        "entries_scanned": n_scan,
    }
    from tests.benchmarks.common import record, report

    record("project_open", result)
    report(f"Open a folder of {args.n} images ({args.size})", ["measure", "value"],
           [[k, v] for k, v in result.items()])
    if not args.keep:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
