"""Stroke-journal benchmark: GUI-thread cost per finished stroke on a 4000×3000 image.

Run: ``nice -n 15 python -m tests.benchmarks.bench_journal [--strokes 40]``

Each timed step is the mouse *release* that finishes a real drag on a MaskCanvas (press, 20
moves, release sent as QMouseEvents) plus the event processing right after it (repaint, the
journal's hand-over timer): the canvas commits the undo patch, then the session's handler
copies the mask for the AutoSaver and — with the journal — queues the patch to the journal
(app/journaling.py, exactly what Session does). The saver writes to a real Project in
a temp folder; the journal fsyncs to its ``.segloop/journal``. Strokes alternate between the
two conditions (journal on / off) in the same run, so both see the same background load.
Also printed: the journal call alone, and how long after the release the stroke is durable
(fsynced) in the journal — a snap (first edit after a save: the whole mask, zlib) and a patch.
Nothing is asserted; numbers only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import types
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2
import numpy as np
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication

H, W = 3000, 4000


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--strokes", type=int, default=40, help="strokes per condition")
    args = ap.parse_args()
    app = QApplication.instance() or QApplication([])
    from app.autosave import AutoSaver
    from app.canvas import MaskCanvas
    from app.canvas.testing import send_mouse, view_pos
    from app.journaling import SessionJournal
    from segcore.project import Project
    from segcore.recovery import RecoveryStore

    tmp = Path(tempfile.mkdtemp(prefix="bench_journal_"))
    folder = tmp / "proj"
    folder.mkdir()
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    cv2.imwrite(str(folder / "big.png"), img)
    project = Project.open(folder)
    canvas = MaskCanvas()
    canvas.resize(1000, 750)
    canvas.show()
    mask = np.zeros((H, W), np.uint8)
    mask[800:2200, 1000:3000] = 1
    canvas.set_image("big", project.load_image("big"), mask, None)
    canvas.set_brush_size(30)
    saver = AutoSaver(project)
    fake_session = types.SimpleNamespace(project=project, canvas=canvas, saver=saver)
    sj = SessionJournal(fake_session, RecoveryStore(tmp / "data", folder))
    assert sj.journal is not None, "SEGLOOP_JOURNAL is off"
    state = {"journal": True, "record_ms": [], "seq": None}

    def finished(stem: str) -> None:  # what Session._stroke_finished does
        full = canvas.mask().copy()
        if state["journal"]:
            t = time.perf_counter()
            tag = sj.record(stem, full)
            state["record_ms"].append((time.perf_counter() - t) * 1e3)
            state["seq"] = tag
        else:
            sj._last, tag = None, None
        saver.schedule(stem, full, tag)

    canvas.strokeFinished.connect(finished)
    release_ms: dict[bool, list[float]] = {True: [], False: []}
    durable_ms: dict[str, list[float]] = {"in the file (safe from a kill)": [],
                                          "fsynced (safe from power loss)": []}

    def pause(s: float) -> None:
        end = time.monotonic() + s
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.002)

    load0 = f"{os.getloadavg()[0]:.1f}"
    for i in range(2 * args.strokes):
        on = i % 2 == 0
        state["journal"] = on
        y = 300 + (i * 53) % 2400
        pts = [view_pos(canvas, 200 + 170 * k, y + 40 * np.sin(k)) for k in range(21)]
        send_mouse(canvas, QEvent.Type.MouseButtonPress, pts[0])
        for p in pts[1:]:
            send_mouse(canvas, QEvent.Type.MouseMove, p)
        t0 = time.perf_counter()
        send_mouse(canvas, QEvent.Type.MouseButtonRelease, pts[-1])
        app.processEvents()  # the repaint and the journal hand-over belong to the stroke
        release_ms[on].append((time.perf_counter() - t0) * 1e3)
        if on:
            seq = state["seq"]
            while sj.journal.written_seq < seq and time.perf_counter() - t0 < 5:
                app.processEvents()
                time.sleep(0.0005)
            durable_ms["in the file (safe from a kill)"].append((time.perf_counter() - t0) * 1e3)
            while sj.journal.durable_seq < seq and time.perf_counter() - t0 < 5:
                app.processEvents()
                time.sleep(0.0005)
            durable_ms["fsynced (safe from power loss)"].append((time.perf_counter() - t0) * 1e3)
        # quiescent start for every stroke: the mask write (a 4000x3000 PNG, ~0.1-0.2 s of
        # background CPU) and the journal are done, so both conditions start equal
        pause(0.05)
        while not saver.is_idle():
            pause(0.01)
        sj.journal.flush()
        pause(0.05)
    saver.close()
    sj.close()
    project.close()

    on, off = release_ms[True], release_ms[False]
    rec = state["record_ms"]
    print(f"4000x3000 mask, {args.strokes} strokes per condition (alternating), "
          f"brush 30 px, 20 moves per stroke")
    print(f"load average before/after: {load0} / {os.getloadavg()[0]:.1f} (2 cores)")
    print(f"{'GUI thread, per finished stroke':44s} {'median':>8s} {'p90':>8s} {'max':>8s}")
    print(f"{'  release, journal off (baseline)':44s} {statistics.median(off):8.2f} "
          f"{_pct(off, .9):8.2f} {max(off):8.2f}  ms")
    print(f"{'  release, journal on':44s} {statistics.median(on):8.2f} "
          f"{_pct(on, .9):8.2f} {max(on):8.2f}  ms")
    print(f"{'  journal call alone (SessionJournal.record)':44s} {statistics.median(rec):8.3f} "
          f"{_pct(rec, .9):8.3f} {max(rec):8.3f}  ms")
    print(f"  ratio on/off (median): {statistics.median(on) / statistics.median(off):.2f}; "
          f"journal cost = {statistics.median(on) - statistics.median(off):+.2f} ms "
          f"(median difference), call alone {statistics.median(rec):.3f} ms")
    for kind, xs in durable_ms.items():
        if xs:
            print(f"  stroke {kind}, after the release (n={len(xs)}): median "
                  f"{statistics.median(xs):.1f} ms, max {max(xs):.1f} ms")


if __name__ == "__main__":
    main()
