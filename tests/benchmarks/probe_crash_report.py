"""The crash probe's outcome side: what the next start of a killed app sees (index integrity,
corrupt masks, temp files, masks with the journal replay applied) and the report of a probe's
JSON lines (``python -m tests.benchmarks.probe_crash --report FILE.jsonl``). See probe_crash.py."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np

BUCKETS = (("<0.2 s", 0.0, 0.2), ("0.2-0.5 s", 0.2, 0.5), ("0.5-1 s", 0.5, 1.0),
           ("1-2 s", 1.0, 2.0), (">2 s", 2.0, 1e9))
KINDS = (("sigkill", 0.49), ("sigkill-mid-stroke", 0.15), ("sigkill-after-switch", 0.12),
         ("sigterm", 0.10), ("ctrl+q", 0.08), ("x-connection-loss", 0.06))

def index_integrity(project: Path) -> list[str]:
    """SQLite's own check of the index the kill left, then the project's open."""
    from segcore.project import Project

    problems = []
    db = project / ".segloop" / "index.sqlite"
    if db.exists():
        try:
            conn = sqlite3.connect(db)
            res = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
            conn.close()
            if res != ["ok"]:
                problems.append(f"index: integrity_check: {res[:3]}")
        except sqlite3.Error as exc:
            problems.append(f"index: {exc}")
    try:
        with Project.open(project) as p:
            if p.read_only:
                problems.append(f"index: project opened read-only ({p.read_only})")
            bad = [s for s in p.stems() if s.endswith(".tmp") or s.startswith(".")]
            if bad:
                problems.append(f"index: temp files listed as images: {bad}")
    except Exception as exc:  # noqa: BLE001
        problems.append(f"index: {exc}")
    return problems


def reopened(project: Path, data_home: Path) -> dict:
    """What the next start sees: temp files before/after the open, index integrity, corrupt
    masks, and the masks on disk with the journal replay applied (as app/journaling.py does
    it, without writing)."""
    from segcore import io, journal
    from segcore.recovery import RecoveryStore

    mdir = project / "masks"
    temps_before = sorted(p.name for p in mdir.iterdir() if p.name.endswith(".tmp"))
    index = index_integrity(project)   # Project.open: also removes stale temp files
    temps_after = sorted(p.name for p in mdir.iterdir() if p.name.endswith(".tmp"))
    corrupt, masks = [], {}
    for p in sorted(mdir.glob("*.png")):
        try:
            masks[p.stem] = io.read_mask(p)
        except Exception as exc:  # noqa: BLE001
            corrupt.append(f"{p.name}: {exc}")
    store = RecoveryStore(data_home / "SegLoop", project)
    files = journal.leftover_files([project / ".segloop" / "journal", store.journal_dir])
    if files:
        for r in journal.replay_plan(files, lambda s: mdir / f"{s}.png", io.read_mask):
            masks[r.stem] = r.mask
    return {"masks": masks, "corrupt": corrupt, "index": index, "temps_before": temps_before,
            "temps_after": temps_after, "journal_files": len(files)}


def bands(mask: np.ndarray) -> list[tuple[int, int]]:
    rows = np.flatnonzero((mask > 0).sum(axis=1) > mask.shape[1] // 10)
    out: list[tuple[int, int]] = []
    for r in rows:
        if out and r <= out[-1][1] + 1:
            out[-1] = (out[-1][0], int(r))
        else:
            out.append((int(r), int(r)))
    return out


def load_runs(path: Path) -> tuple[list[dict], list[dict]]:
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    # the last probe in the file (a file may hold several appended probes)
    begins = [i for i, r in enumerate(recs) if r.get("event") == "begin"]
    recs = recs[begins[-1]:] if begins else recs
    return [r for r in recs if r.get("event") == "run"], recs


def print_report(path: Path) -> None:
    runs, recs = load_runs(path)
    done = [r for r in runs if not r.get("skipped")]
    journal_on = recs[0].get("journal") if recs else None
    n = next((r["n"] for r in recs if r.get("event") == "begin"), "?")
    ended = any(r.get("event") == "end" for r in recs)
    failed_starts = [r for r in recs if r.get("event") == "start_failed"]
    starts = sorted(r["start_s"] for r in done)
    print(f"\ncrash probe {'with journal' if journal_on else 'without journal (SEGLOOP_JOURNAL=0)'}"
          f": {len(done)} of {n} runs done{'' if ended else ' (partial: the probe did not end)'}, "
          f"{len(runs) - len(done)} skipped, {len(failed_starts)} failed starts retried; "
          f"app start to settled window median {starts[len(starts) // 2] if starts else '-'} s,"
          f" max {starts[-1] if starts else '-'} s")
    print("\nkill kinds: " + ", ".join(
        f"{k} {sum(1 for r in done if r['kind'] == k)}" for k, _p in KINDS))
    print(f"\n{'stroke age at kill':18s} {'strokes':>8s} {'lost':>5s} {'lost, on screen':>16s} "
          f"{'lost, not yet shown':>20s}")
    for name, lo, hi in BUCKETS:
        sel = [s for r in done for s in r["strokes"] if lo <= s["age"] < hi]
        lost = [s for s in sel if not s["ok"]]
        on = sum(1 for s in lost if s.get("shown"))
        print(f"{name:18s} {len(sel):8d} {len(lost):5d} {on:16d} {len(lost) - on:20d}")
    unseen = [s for r in done for s in r["strokes"] if s.get("shown") is False]
    print(f"(\"not yet shown\": the stroke was not painted on screen just before the kill: the "
          f"app had not processed its input; {len(unseen)} strokes in all, "
          f"{sum(1 for s in unseen if s['ok'])} of them survived anyway)")
    print(f"\n{'by kill kind':22s} {'runs':>5s} {'strokes':>8s} {'lost':>5s}  exit codes")
    for kind, _p in KINDS:
        sel = [r for r in done if r["kind"] == kind]
        st = [s for r in sel for s in r["strokes"]]
        rcs = sorted({str(r["rc"]) for r in sel if r["rc"] is not None})
        print(f"{kind:22s} {len(sel):5d} {len(st):8d} {sum(1 for s in st if not s['ok']):5d}  "
              + (", ".join(rcs) if rcs else "-"))
    corrupt = [f"run {r['run']}: {c}" for r in done for c in r["corrupt"]]
    index = [f"run {r['run']}: {c}" for r in done for c in r["index"]]
    temps_b = sum(len(r["temps_before"]) for r in done)
    temps_a = [f"run {r['run']}: {t}" for r in done for t in r["temps_after"]]
    print(f"\ncorrupt masks: {len(corrupt)}" + "".join(f"\n  {c}" for c in corrupt))
    print(f"index integrity failures: {len(index)}" + "".join(f"\n  {c}" for c in index))
    print(f"temp files left by a kill: {temps_b} (after the next open: {len(temps_a)})"
          + "".join(f"\n  {t}" for t in temps_a))
