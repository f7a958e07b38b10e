"""The app's use of the stroke journal: what a stroke writes, and replay through the window."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.canvas.testing import drag
from segcore import io, journal

from .conftest import make_window


def _records(window, qtbot):
    sj = window.session.journal
    qtbot.waitUntil(lambda: not sj._deferred, timeout=5000)
    assert sj.journal.flush()
    return journal.parse(sj.journal.path.read_bytes()) if sj.journal.path else []


def test_each_stroke_is_a_patch_record_and_undo_is_journaled_too(qtbot, demo_dir, fake_model,
                                                                  monkeypatch):
    import app.autosave as autosave

    monkeypatch.setattr(autosave, "DEBOUNCE_MS", 60_000)   # no mask write during the test
    monkeypatch.setattr(autosave, "MAX_WAIT_MS", 60_000)
    window = make_window(qtbot, demo_dir)
    canvas = window.canvas
    stem = canvas.current_stem()
    drag(canvas, [(10, 10), (60, 20)])
    drag(canvas, [(10, 50), (60, 60)])
    canvas.undo_stack().undo()
    recs = _records(window, qtbot)
    # two strokes and an undo: a patch each, never a second record of one state
    assert [(r.kind, r.stem) for r in recs] == [("patch", stem)] * 3
    x0, y0, x1, y1 = recs[0].rect
    assert x1 - x0 < 128 and y1 - y0 < 96, "a patch is the changed rectangle, not the mask"
    plan = journal.replay_plan([window.session.journal.journal.path],
                               window.session.project.mask_path, io.read_mask)
    assert np.array_equal(plan[0].mask, canvas.mask())
    window.session.saver.flush()
    window.close()


def test_a_prediction_shown_as_the_starting_mask_is_journaled_whole(qtbot, demo_dir,
                                                                     fake_model):
    from segcore.project import Project

    project = Project.open(demo_dir)
    stem = project.stems()[0]
    pred = np.zeros((96, 128), np.uint8)
    pred[40:90, 70:120] = 1
    project.save_prediction(stem, pred, 0.5, None)
    project.close()
    window = make_window(qtbot, demo_dir)
    canvas = window.canvas
    assert canvas.current_stem() == stem and canvas.mask()[50, 80] == 1
    drag(canvas, [(5, 5), (30, 5)])
    recs = _records(window, qtbot)
    assert recs[0].kind == "snap" and recs[0].pixels()[50, 80] == 1, \
        "the prediction under the stroke is not on disk: the first record is the whole mask"
    window.close()


def test_reopening_replays_a_journal_left_behind_and_shows_the_strokes(qtbot, demo_dir,
                                                                        fake_model, tmp_path):
    from segcore.project import Project

    project = Project.open(demo_dir)
    stem = project.stems()[1]
    j = journal.Journal([project.state_dir / "journal"], project.mask_path, io.read_mask)
    mask = np.zeros((96, 128), np.uint8)
    mask[10:30, 20:90] = 1
    j.append_patch(stem, (20, 10, 90, 30), mask[10:30, 20:90].copy(), mask)
    j.close()                                 # as if the app had been killed
    project.close()
    window = make_window(qtbot, demo_dir)
    assert np.array_equal(io.read_mask(demo_dir / "masks" / f"{stem}.png"), mask)
    assert any(stem in m for m in window.session.startup_messages)
    QTest.keyClick(window, Qt.Key.Key_PageDown)
    assert window.current_stem() == stem and np.array_equal(window.canvas.mask(), mask)
    window.close()


def test_the_journal_can_be_turned_off(qtbot, demo_dir, fake_model, monkeypatch):
    monkeypatch.setenv("SEGLOOP_JOURNAL", "0")
    window = make_window(qtbot, demo_dir)
    assert window.session.journal.journal is None
    drag(window.canvas, [(10, 10), (60, 20)])
    assert window.session.saver.flush()
    assert not list((demo_dir / ".segloop" / "journal").glob("*.sjl"))
    window.close()
