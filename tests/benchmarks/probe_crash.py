"""Crash probe: run the real app under Xvfb, paint with xdotool, kill it at random moments.

Run: ``make probe-crash [N=100] [JOURNAL=1|0]`` (not part of ``make test``), i.e.
``xvfb-run -a -s "-screen 0 1400x900x24" python -m tests.benchmarks.probe_crash --n 100``.

Each iteration copies a fresh synthetic project (segcore.demo, 640x480, masks empty), starts
``python -m app.main PROJECT`` (the real window, real Session/AutoSaver/journal, real model
loading), waits for the first image on screen (window title), paints 1-6 horizontal strokes with
xdotool at distinct rows with random pauses (0-1.2 s), and kills the app with SIGKILL at a
random moment: 0-1.5 s after the last stroke (40 % within 0.3 s), or (15 %) in the middle
of a stroke. Then it "reopens"
the project the way the app does on start (the journal replay: segcore.journal's plan applied
to the masks on disk) and checks, for every finished stroke (mouse button released before the
kill), whether its band is in the mask. Strokes lost are reported by age at the kill (< 0.2 s,
0.2-0.5, 0.5-1, > 1 s), with corrupt mask files (unreadable) and stray temp files.

A calibration run first paints all six rows, quits normally and reads the saved mask: that maps
each screen row to its band of image rows (the window geometry is the same on every start).
``SEGLOOP_JOURNAL=0`` (``--no-journal``) runs the same probe without the journal.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
ROWS = 6
SETTLE_S = 2.0
BUCKETS = (("<0.2 s", 0.0, 0.2), ("0.2-0.5 s", 0.2, 0.5), ("0.5-1 s", 0.5, 1.0),
           (">1 s", 1.0, 1e9))


def xdo(*args: str) -> str:
    return subprocess.run(["xdotool", *args], capture_output=True, text=True,
                          timeout=30).stdout.strip()


def find_window(title_part: str, timeout: float) -> str | None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ids = xdo("search", "--name", title_part).split()
        if ids:
            return ids[-1]
        time.sleep(0.1)
    return None


def geometry(win: str) -> tuple[int, int, int, int]:
    vals = dict(line.split("=", 1) for line in xdo("getwindowgeometry", "--shell", win).splitlines()
                if "=" in line)
    return int(vals["X"]), int(vals["Y"]), int(vals["WIDTH"]), int(vals["HEIGHT"])


def stroke_rows(geo: tuple[int, int, int, int]) -> tuple[list[int], int, int]:
    """Screen rows of the six strokes and their x range: the upper left of the canvas (it sits
    right of the 290-px image list; the Training dock covers the canvas's lower right on a
    1400x900 screen without a window manager)."""
    x, y, _w, _h = geo
    return [y + 230 + 50 * k for k in range(ROWS)], x + 340, x + 620


def paint(row: int, x0: int, x1: int, steps: int = 12, kill_midway=None) -> float | None:
    """One stroke; returns the time of the mouse release (None if killed in the middle)."""
    xdo("mousemove", str(x0), str(row))
    xdo("mousedown", "1")
    for i in range(1, steps + 1):
        xdo("mousemove", str(x0 + (x1 - x0) * i // steps), str(row))
        if kill_midway is not None and i == steps // 2:
            kill_midway()
            return None
    xdo("mouseup", "1")
    return time.monotonic()


def start_app(project: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "app.main", str(project)], cwd=str(ROOT),
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def reopened_masks(project: Path, data_home: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """What the app shows on the next start: masks on disk + the journal replay (as
    app/journaling.py does it, without writing). Also the corrupt files found."""
    from segcore import io, journal
    from segcore.project import Project
    from segcore.recovery import RecoveryStore

    corrupt = []
    masks: dict[str, np.ndarray] = {}
    mdir = project / "masks"
    for p in sorted(mdir.glob("*.png")):
        try:
            masks[p.stem] = io.read_mask(p)
        except Exception as exc:  # noqa: BLE001
            corrupt.append(f"{p.name}: {exc}")
    corrupt += [f"{p.name}: temp file left" for p in mdir.iterdir() if p.name.endswith(".tmp")]
    store = RecoveryStore(data_home / "SegLoop", project)
    dirs = [project / ".segloop" / "journal", store.journal_dir]
    files = journal.leftover_files(dirs)
    if files:
        for r in journal.replay_plan(files, lambda s: mdir / f"{s}.png", io.read_mask):
            masks[r.stem] = r.mask
    try:
        Project.open(project).close()          # the index opens (integrity)
    except Exception as exc:  # noqa: BLE001
        corrupt.append(f"index: {exc}")
    return masks, corrupt


def bands(mask: np.ndarray) -> list[tuple[int, int]]:
    rows = np.flatnonzero((mask > 0).sum(axis=1) > mask.shape[1] // 10)
    out: list[tuple[int, int]] = []
    for r in rows:
        if out and r <= out[-1][1] + 1:
            out[-1] = (out[-1][0], int(r))
        else:
            out.append((int(r), int(r)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=int(os.environ.get("N", "100")))
    ap.add_argument("--no-journal", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    if not os.environ.get("DISPLAY"):
        print("probe_crash: no DISPLAY; run it through xvfb-run (make probe-crash)")
        return 2
    rng = random.Random(args.seed)
    from segcore import selection
    from segcore.demo import generate_demo_project
    from segcore.project import Project

    work = Path(tempfile.mkdtemp(prefix="probe_crash_"))
    base = generate_demo_project(work / "base", n_images=3, size=(480, 640), seed=1)
    with Project.open(base) as p:    # no background cold-start ranking on every start
        p.set_setting(selection.COLD_START_KEY, p.stems())
    env = dict(os.environ, XDG_CONFIG_HOME=str(work / "config"), XDG_DATA_HOME=str(work / "data"),
               XDG_CACHE_HOME=str(work / "cache"), PYTHONPATH=str(ROOT),
               SEGLOOP_JOURNAL="0" if args.no_journal else "1")
    env.setdefault("TORCH_HOME", os.path.expanduser("~/.cache/torch"))
    t_start = time.monotonic()

    def run_once(project: Path, plan):
        proc = start_app(project, env)
        win = find_window("demo_000", 240)
        if win is None:
            proc.kill()
            raise RuntimeError("app did not show its window: "
                               + proc.stderr.read().decode()[-2000:])
        time.sleep(SETTLE_S)  # docks and the fit zoom settle after the first image is shown
        rows, x0, x1 = stroke_rows(geometry(win))
        return proc, rows, x0, x1

    # warm-up start (writes the window layout into the settings), then calibration: all rows,
    # then SIGTERM (flush and quit)
    warm = work / "warm"
    shutil.copytree(base, warm)
    proc, rows, x0, x1 = run_once(warm, None)
    proc.terminate()                 # SIGTERM: the app flushes, saves its layout and quits
    proc.wait(timeout=300)  # the normal close path: waits for the model-loading worker
    calib = work / "calib"
    shutil.copytree(base, calib)
    proc, rows, x0, x1 = run_once(calib, None)
    for row in rows:
        paint(row, x0, x1)
        time.sleep(0.2)
    time.sleep(2.0)
    proc.terminate()
    proc.wait(timeout=300)  # the normal close path: waits for the model-loading worker
    calib_masks, _ = reopened_masks(calib, work / "data")
    found = bands(calib_masks.get("demo_000", np.zeros((1, 1), np.uint8)))
    if len(found) != ROWS:
        print(f"probe_crash: calibration found {len(found)} bands, expected {ROWS}: {found}")
        return 2
    centres = [(a + b) // 2 for a, b in found]

    finished: list[tuple[float, bool]] = []   # (age at kill, survived)
    corrupt_total: list[str] = []
    starts: list[float] = []
    skipped: list[str] = []
    for it in range(args.n):
        project = work / f"run{it:03d}"
        shutil.copytree(base, project)
        t0 = time.monotonic()
        try:
            proc, rows, x0, x1 = run_once(project, None)
        except RuntimeError as exc:  # an overloaded machine: count it, go on
            skipped.append(f"run {it}: {str(exc)[:200]}")
            print(f"run {it + 1}/{args.n}: skipped ({str(exc)[:80]})", flush=True)
            shutil.rmtree(project, ignore_errors=True)
            continue
        starts.append(time.monotonic() - t0)
        n_strokes = rng.randint(1, ROWS)
        mid_kill = rng.random() < 0.15
        released: list[tuple[int, float]] = []
        killed_at = None

        def kill() -> None:
            nonlocal killed_at
            killed_at = time.monotonic()
            os.kill(proc.pid, signal.SIGKILL)  # noqa: B023 - called within this iteration

        for k in range(n_strokes):
            last = k == n_strokes - 1
            t = paint(rows[k], x0, x1, kill_midway=kill if (last and mid_kill) else None)
            if t is not None:
                released.append((k, t))
            if not last:
                time.sleep(rng.uniform(0.0, 1.2))
        if killed_at is None:  # young strokes are the interesting ones: 40 % within 0.3 s
            time.sleep(rng.uniform(0.0, 0.3) if rng.random() < 0.4 else rng.uniform(0.3, 1.5))
            kill()
        proc.wait(timeout=30)
        xdo("mouseup", "1")
        masks, corrupt = reopened_masks(project, work / "data")
        corrupt_total += [f"run {it}: {c}" for c in corrupt]
        mask = masks.get("demo_000")
        for k, t in released:
            c = centres[k]
            ok = mask is not None and (mask[max(0, c - 1):c + 2] > 0).mean() > 0.15
            finished.append((killed_at - t, bool(ok)))
        shutil.rmtree(project, ignore_errors=True)
        lost_now = sum(1 for age, ok in finished[-len(released):] if not ok) if released else 0
        print(f"run {it + 1}/{args.n}: {len(released)} strokes, kill "
              f"{'mid-stroke' if mid_kill else f'{killed_at - released[-1][1]:.2f} s after'}, "
              f"lost {lost_now}", flush=True)
        summary(args, finished, corrupt_total, starts, it + 1, time.monotonic() - t_start,
                final=False, skipped=skipped)
    summary(args, finished, corrupt_total, starts, args.n, time.monotonic() - t_start,
            final=True, skipped=skipped)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def summary(args, finished, corrupt_total, starts, runs, elapsed, final,
            skipped=()):
    """The table (printed at the end; written to --json after every run, so a partial run is
    usable)."""
    label = "without journal (SEGLOOP_JOURNAL=0)" if args.no_journal else "with journal"
    result = {"journal": not args.no_journal, "runs": runs, "n": args.n,
              "minutes": round(elapsed / 60, 1), "finished_strokes": len(finished),
              "app_start_median_s": round(sorted(starts)[len(starts) // 2], 1) if starts else None,
              "skipped_runs": list(skipped),
              "buckets": {}, "corrupt": corrupt_total}
    for name, lo, hi in BUCKETS:
        sel = [ok for age, ok in finished if lo <= age < hi]
        result["buckets"][name] = {"strokes": len(sel), "lost": sum(1 for ok in sel if not ok)}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if not final:
        return
    print(f"\ncrash probe {label}: {runs - len(skipped)} SIGKILLs ({len(skipped)} runs skipped: "
          f"the app did not start in time), {len(finished)} finished strokes, "
          f"{elapsed / 60:.1f} min (app start to first image: median "
          f"{result['app_start_median_s']} s)")
    print(f"{'stroke age at kill':18s} {'strokes':>8s} {'lost':>6s}")
    for name, b in result["buckets"].items():
        print(f"{name:18s} {b['strokes']:8d} {b['lost']:6d}")
    print(f"corrupt files: {len(corrupt_total)}" + "".join(f"\n  {c}" for c in corrupt_total))


if __name__ == "__main__":
    raise SystemExit(main())
