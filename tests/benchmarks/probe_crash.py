"""Crash probe: run the real app under Xvfb, paint with xdotool, kill it at random moments.

Run: ``make probe-crash [N=100] [JOURNAL=1|0]`` (not part of ``make test``), i.e.
``xvfb-run -a -s "-screen 0 1400x900x24" python -m tests.benchmarks.probe_crash --n 100``.
``--report FILE.jsonl`` prints the tables of a finished or partial run again.

Each run copies a fresh synthetic project (segcore.demo, 640x480, masks empty), starts
``python -m app.main PROJECT`` (the real window, real Session/AutoSaver/journal), waits until
the window showing the first image is mapped (``xdotool search --onlyvisible``, up to
``--start-timeout`` s: a loaded 2-core machine can take minutes) and its geometry has settled,
paints 1-6 horizontal strokes at distinct rows with random pauses (0-1.2 s) and ends the app
one of these ways (the "kill kind"):

- ``sigkill``: SIGKILL 0-2.5 s after the last stroke (40 % within 0.3 s);
- ``sigkill-mid-stroke``: SIGKILL in the middle of the last stroke (mouse button still down);
- ``sigkill-after-switch``: PgDown (next image) right after the last stroke, SIGKILL 0-0.5 s later;
- ``sigterm``: SIGTERM 0-1 s after the last stroke (the app flushes and quits; exit code kept);
- ``ctrl+q``: Ctrl+Q 0-1 s after the last stroke (the normal quit path; exit code kept);
- ``x-connection-loss``: 0-1 s after the last stroke the X server drops the app's connection
  (``xdotool windowkill``, i.e. XKillClient, as when a remote display goes away); exit code kept.

Then it checks the project the way the next start sees it: the index passes SQLite's
``PRAGMA integrity_check`` and ``Project.open`` works (index integrity), every mask file reads
(corrupt masks), no temp file of the atomic write is left after the open or is listed as an
image or mask, and the journal replay (segcore.journal's plan, as app/journaling.py applies
it) is applied to the masks on disk. For every finished stroke (mouse button released before
the kill) it checks whether its band is in the mask; strokes lost are reported by their age at
the kill, and by whether the stroke was painted on screen just before the kill (a screen grab of
the stroke rows; on a starved machine the app may not have processed the input yet). A start
that fails (timeout, early exit) is retried on a fresh copy (``--retries``).

Every run is appended to a JSON-lines file as soon as it ends (``--out``), so a partial run
still reports. ``SEGLOOP_JOURNAL=0`` (``--no-journal``) runs the same probe without the journal.

A calibration run first paints all six rows, quits with SIGTERM and reads the saved mask: that
maps each screen row to its band of image rows (the window geometry is the same on every start).
"""

from __future__ import annotations

import argparse
import datetime as dt
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

from tests.benchmarks.probe_crash_report import KINDS, bands, print_report, reopened

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = Path(__file__).resolve().parent / "out"
ROWS = 6
QUIT_TIMEOUT_S = 300.0  # SIGTERM / Ctrl+Q: the close path waits for the model-loading worker


def xdo(*args: str) -> str:
    try:
        return subprocess.run(["xdotool", *args], check=False, capture_output=True, text=True,
                              timeout=60).stdout.strip()
    except subprocess.TimeoutExpired:
        return ""


class StartFailed(RuntimeError):
    pass


def wait_window(proc: subprocess.Popen, title_part: str, timeout: float) -> str:
    """The id of the mapped window whose title contains ``title_part`` (the first image is on
    screen), once its geometry has not changed for 1 s (docks and the fit zoom settle)."""
    end = time.monotonic() + timeout
    win = None
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise StartFailed(f"the app exited with {proc.returncode} before its window showed")
        ids = xdo("search", "--onlyvisible", "--name", title_part).split()
        if ids:
            win = ids[-1]
            break
        time.sleep(0.2)
    if win is None:
        raise StartFailed(f"no window titled '{title_part}' within {timeout:.0f} s")
    last, stable_since = None, time.monotonic()
    while time.monotonic() < end:
        geo = xdo("getwindowgeometry", "--shell", win)
        if geo != last:
            last, stable_since = geo, time.monotonic()
        elif time.monotonic() - stable_since >= 1.0:
            return win
        time.sleep(0.2)
    raise StartFailed(f"window geometry did not settle within {timeout:.0f} s")


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


class Screen:
    """Grabs of the stroke area (Qt's X11 screen grab in this process: milliseconds, where an
    ``import`` subprocess takes a second on a loaded machine). ``shown(before, now)`` tells which
    strokes the app had painted on screen at the moment of ``now``: a stroke whose input the
    starved app had not yet processed is not a finished correction in the app's eyes."""

    def __init__(self, rows: list[int], x0: int, x1: int) -> None:
        from PySide6.QtGui import QGuiApplication

        self.app = QGuiApplication.instance() or QGuiApplication(["probe_crash"])
        self.rows, self.xa, self.xb = rows, x0 + 20, x1 - 40  # not the brush cursor at x1
        self.top, self.bottom = rows[0] - 3, rows[-1] + 4

    def grab(self) -> np.ndarray:
        from PySide6.QtGui import QImage

        w, h = self.xb - self.xa, self.bottom - self.top
        img = (self.app.primaryScreen().grabWindow(0, self.xa, self.top, w, h).toImage()
               .convertToFormat(QImage.Format.Format_RGB888))
        buf = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())
        return buf[:, : img.width() * 3].reshape(img.height(), img.width(), 3).astype(np.int16)

    def shown(self, before: np.ndarray, now: np.ndarray) -> list[bool]:
        out = []
        for r in self.rows:
            y = r - self.top
            diff = np.abs(now[y - 1:y + 2] - before[y - 1:y + 2]).max(axis=2) > 20
            out.append(bool(diff.mean() > 0.5))
        return out


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


def start_app(project: Path, env: dict, start_timeout: float, log) -> tuple:
    """Start the app on ``project``; returns (proc, rows, x0, x1, seconds to a settled window)."""
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "app.main", str(project)], cwd=str(ROOT),
                            env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        win = wait_window(proc, "demo_000", start_timeout)
        rows, x0, x1 = stroke_rows(geometry(win))
    except BaseException:
        proc.kill()
        proc.wait(timeout=60)
        raise
    return proc, rows, x0, x1, time.monotonic() - t0


def pick_kind(rng: random.Random, only: list[str] | None = None) -> str:
    x, acc = rng.random(), 0.0
    chosen = KINDS[-1][0]
    for name, p in KINDS:
        acc += p
        if x < acc:
            chosen = name
            break
    return rng.choice(only) if only else chosen


def one_run(rng, proc, rows, x0, x1, only=None) -> dict:
    """Paint and end the app; returns the strokes' release times, the kill kind and time, and
    which strokes were on screen just before the end."""
    n_strokes = rng.randint(1, ROWS)
    kind = pick_kind(rng, only)
    released: list[tuple[int, float]] = []
    screen = Screen(rows, x0, x1)
    base = screen.grab()
    state = {"end_at": None, "shown": None}

    def look() -> None:
        state["shown"] = screen.shown(base, screen.grab())

    def kill() -> None:
        if state["shown"] is None:
            look()
        state["end_at"] = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)

    for k in range(n_strokes):
        last = k == n_strokes - 1
        mid = kill if (last and kind == "sigkill-mid-stroke") else None
        t = paint(rows[k], x0, x1, kill_midway=mid)
        if t is not None:
            released.append((k, t))
        if not last:
            time.sleep(rng.uniform(0.0, 1.2))
    rc = None
    if kind == "sigkill":
        time.sleep(rng.uniform(0.0, 0.3) if rng.random() < 0.4 else rng.uniform(0.3, 2.5))
        kill()
    elif kind == "sigkill-after-switch":
        look()                 # before the next image replaces the strokes on screen
        xdo("key", "Next")     # PgDown: the next image (the mask of this one is saved)
        time.sleep(rng.uniform(0.0, 0.5))
        kill()
    elif kind in ("sigterm", "ctrl+q", "x-connection-loss"):
        time.sleep(rng.uniform(0.0, 1.0))
        look()
        state["end_at"] = time.monotonic()
        if kind == "sigterm":
            proc.terminate()
        elif kind == "ctrl+q":
            xdo("key", "ctrl+q")
        else:
            wins = xdo("search", "--pid", str(proc.pid)).split()
            if not wins:
                raise RuntimeError("x-connection-loss: no window of the app found")
            xdo("windowkill", wins[0])
        try:
            rc = proc.wait(timeout=QUIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            kill()
            rc = f"no exit within {QUIT_TIMEOUT_S:.0f} s (SIGKILLed)"
    proc.wait(timeout=60)
    xdo("mouseup", "1")
    return {"kind": kind, "released": released, "end_at": state["end_at"], "rc": rc,
            "shown": state["shown"]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=int(os.environ.get("N", "100")))
    ap.add_argument("--no-journal", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start-timeout", type=float, default=900.0,
                    help="seconds an app start may take before it is retried")
    ap.add_argument("--retries", type=int, default=3, help="failed starts retried per run")
    ap.add_argument("--kinds", help="comma-separated kill kinds to draw from (default: all, "
                    "weighted as in KINDS)")
    ap.add_argument("--until", help="UTC time HH:MM: start no new run after it")
    ap.add_argument("--out", type=Path, help="JSON lines, one per run (appended as it ends)")
    ap.add_argument("--report", type=Path, help="only print the tables of this JSON-lines file")
    args = ap.parse_args()
    if args.report:
        print_report(args.report)
        return 0
    if not os.environ.get("DISPLAY"):
        print("probe_crash: no DISPLAY; run it through xvfb-run (make probe-crash)")
        return 2
    os.environ["QT_QPA_PLATFORM"] = "xcb"  # the probe's own screen grabs (class Screen)
    label = "nojournal" if args.no_journal else "journal"
    out = args.out or OUT_DIR / f"probe_crash_{label}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    deadline = None
    if args.until:
        now = dt.datetime.now(dt.timezone.utc)
        h, m = map(int, args.until.split(":"))
        deadline = now.replace(hour=h, minute=m, second=0, microsecond=0)
        if deadline < now:
            deadline += dt.timedelta(days=1)
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
    app_log = open(work / "app-stderr.log", "ab")
    t_start = time.monotonic()

    def write(rec: dict) -> None:
        rec = {"journal": not args.no_journal, "utc": dt.datetime.now(dt.timezone.utc)
               .strftime("%H:%M:%S"), **rec}
        with out.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")

    def started(name: str) -> tuple:
        """Start on a fresh copy of the base project; retried on a failed start."""
        for attempt in range(args.retries + 1):
            project = work / name
            shutil.rmtree(project, ignore_errors=True)
            shutil.copytree(base, project)
            try:
                return (project, *start_app(project, env, args.start_timeout, app_log))
            except StartFailed as exc:
                write({"event": "start_failed", "run": name, "attempt": attempt,
                       "reason": str(exc)})
                print(f"{name}: start failed ({exc}); "
                      + ("retrying" if attempt < args.retries else "giving up"), flush=True)
        return None

    write({"event": "begin", "n": args.n, "seed": args.seed, "root": str(ROOT)})
    # warm-up start (writes the window layout into the settings), then calibration: all rows,
    # then SIGTERM (flush and quit)
    centres = None
    for _attempt in range(args.retries + 1):
        got = started("warm")
        if got is None:
            return 2
        got[1].terminate()
        got[1].wait(timeout=QUIT_TIMEOUT_S)
        got = started("calib")
        if got is None:
            return 2
        calib, proc, rows, x0, x1, _s = got
        for row in rows:
            paint(row, x0, x1)
            time.sleep(0.2)
        time.sleep(2.0)
        proc.terminate()
        proc.wait(timeout=QUIT_TIMEOUT_S)
        seen = reopened(calib, work / "data")
        found = bands(seen["masks"].get("demo_000", np.zeros((1, 1), np.uint8)))
        if len(found) == ROWS:
            centres = [(a + b) // 2 for a, b in found]
            break
        write({"event": "calibration_failed", "bands": found})
        print(f"probe_crash: calibration found {len(found)} bands, expected {ROWS}: {found}")
    if centres is None:
        return 2
    write({"event": "calibrated", "centres": centres})

    for it in range(args.n):
        if deadline is not None and dt.datetime.now(dt.timezone.utc) >= deadline:
            print(f"probe_crash: {args.until} UTC reached; stopping after {it} runs", flush=True)
            write({"event": "stopped", "reason": f"--until {args.until}", "runs": it})
            break
        got = started(f"run{it:03d}")
        if got is None:
            write({"event": "run", "run": it, "skipped": True})
            continue
        project, proc, rows, x0, x1, start_s = got
        try:
            res = one_run(rng, proc, rows, x0, x1, args.kinds.split(",") if args.kinds else None)
            seen = reopened(project, work / "data")
        except Exception as exc:  # noqa: BLE001 - a probe failure: record it, go on
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=60)
            write({"event": "run", "run": it, "skipped": True, "error": repr(exc)[:500]})
            print(f"run {it + 1}/{args.n}: probe error {exc!r}", flush=True)
            continue
        mask = seen["masks"].get("demo_000")
        strokes = []
        for k, t in res["released"]:
            c = centres[k]
            ok = mask is not None and (mask[max(0, c - 1):c + 2] > 0).mean() > 0.15
            strokes.append({"age": round(res["end_at"] - t, 3), "ok": bool(ok),
                            "shown": res["shown"][k]})
        rec = {"event": "run", "run": it, "kind": res["kind"], "rc": res["rc"],
               "start_s": round(start_s, 1), "strokes": strokes,
               "mid_stroke": res["kind"] == "sigkill-mid-stroke",
               **{k: seen[k] for k in ("corrupt", "index", "temps_before", "temps_after",
                                       "journal_files")}}
        write(rec)
        shutil.rmtree(project, ignore_errors=True)
        lost = sum(1 for s in strokes if not s["ok"])
        after = (f"{res['end_at'] - res['released'][-1][1]:.2f} s after the last stroke"
                 if res["released"] and res["kind"] != "sigkill-mid-stroke" else "")
        print(f"run {it + 1}/{args.n}: {len(strokes)} strokes, {res['kind']} {after}, "
              f"lost {lost}, start {start_s:.0f} s"
              + (f", rc {res['rc']}" if res["rc"] is not None else ""), flush=True)
    write({"event": "end", "minutes": round((time.monotonic() - t_start) / 60, 1)})
    app_log.close()
    print_report(out)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
