"""segcore.journal: format, replay, bounds, fallback folder (no Qt)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from segcore import io, journal

H, W = 60, 80


def _mask_path(folder: Path):
    return lambda stem: folder / f"{stem}.png"


def _journal(tmp_path: Path, **kw) -> journal.Journal:
    masks = tmp_path / "masks"
    masks.mkdir(exist_ok=True)
    return journal.Journal([tmp_path / "j1", tmp_path / "j2"], _mask_path(masks), io.read_mask, **kw)


def _paint(mask: np.ndarray, x0: int, y0: int, x1: int, y1: int, value: int = 1):
    mask[y0:y1, x0:x1] = value
    return (x0, y0, x1, y1), mask[y0:y1, x0:x1].copy(), mask.copy()


def _plan(tmp_path: Path, files: list[Path]) -> dict[str, journal.Replay]:
    return {r.stem: r for r in journal.replay_plan(files, _mask_path(tmp_path / "masks"), io.read_mask)}


def test_edits_replay_from_the_file_a_crashed_session_left(tmp_path):
    j = _journal(tmp_path)
    mask = np.zeros((H, W), np.uint8)
    for box in ((1, 1, 20, 10), (10, 5, 40, 30), (0, 50, 80, 60)):
        j.append_patch("a", *_paint(mask, *box))
    rect, pix, full = _paint(mask, 5, 5, 15, 15, 0)           # an eraser stroke
    j.append_patch("a", rect, pix, full)
    j.append_snapshot("b", np.full((H, W), 1, np.uint8))
    assert j.flush() and j.error is None
    path = j.path
    assert path is not None and path.parent == tmp_path / "j1"
    assert journal.leftover_files([path.parent]) == [], "a live session's journal is locked"
    plan = _plan(tmp_path, [path])
    assert np.array_equal(plan["a"].mask, mask)
    assert plan["b"].mask.min() == 1 and not plan["a"].conflict
    records = journal.parse(path.read_bytes())
    assert [r.kind for r in records] == ["patch", "patch", "patch", "patch", "snap"]


def test_a_torn_last_record_is_ignored(tmp_path):
    j = _journal(tmp_path)
    mask = np.zeros((H, W), np.uint8)
    j.append_patch("a", *_paint(mask, 0, 0, 10, 10))
    keep = mask.copy()
    j.append_patch("a", *_paint(mask, 30, 30, 70, 50))
    assert j.flush()
    data = j.path.read_bytes()
    torn = tmp_path / "torn.sjl"
    torn.write_bytes(data[:-7])
    assert len(journal.parse(torn.read_bytes())) == 1
    assert np.array_equal(_plan(tmp_path, [torn])["a"].mask, keep)
    torn.write_bytes(data[:-20] + b"x" * 20)     # corrupt bytes: CRC mismatch, same outcome
    assert np.array_equal(_plan(tmp_path, [torn])["a"].mask, keep)


def test_replay_onto_a_mask_saved_part_way_gives_the_last_state(tmp_path):
    masks = tmp_path / "masks"
    j = _journal(tmp_path)
    mask = np.zeros((H, W), np.uint8)
    j.append_patch("a", *_paint(mask, 0, 0, 40, 40))
    io.write_mask(masks / "a.png", mask)                       # the saver got this far
    j.append_patch("a", *_paint(mask, 20, 20, 60, 50, 0))
    j.append_patch("a", *_paint(mask, 50, 0, 80, 10))
    assert j.flush()
    assert np.array_equal(_plan(tmp_path, [j.path])["a"].mask, mask)


def test_saved_marks_truncate_and_a_clean_close_removes_the_file(tmp_path):
    j = _journal(tmp_path)
    mask = np.zeros((H, W), np.uint8)
    s1 = j.append_patch("a", *_paint(mask, 0, 0, 10, 10))
    s2 = j.append_patch("b", *_paint(mask.copy(), 0, 0, 10, 10))
    assert j.flush() and j.path.stat().st_size > 0
    j.mark_saved("a", s1)
    assert j.flush() and j.path.stat().st_size > 0, "b is still live"
    j.mark_saved("b", s2)
    assert j.flush() and j.path.stat().st_size == 0
    path = j.path
    j.close()
    assert not path.exists()


def test_a_session_closed_with_live_edits_keeps_its_file_for_replay(tmp_path):
    j = _journal(tmp_path)
    mask = np.zeros((H, W), np.uint8)
    j.append_patch("a", *_paint(mask, 3, 3, 30, 30))
    j.close()
    files = journal.leftover_files([tmp_path / "j1", tmp_path / "j2"])
    assert len(files) == 1
    assert np.array_equal(_plan(tmp_path, files)["a"].mask, mask)


def test_size_is_bounded_by_compaction_and_replay_stays_exact(tmp_path):
    j = _journal(tmp_path, max_bytes=4000)
    rng = np.random.default_rng(0)
    mask = np.zeros((H, W), np.uint8)
    sizes = []
    for _ in range(200):
        x, y = int(rng.integers(0, W - 10)), int(rng.integers(0, H - 10))
        rect = (x, y, x + 10, y + 10)
        mask[y:y + 10, x:x + 10] = rng.integers(0, 2, (10, 10), dtype=np.uint8)  # noisy patches
        j.append_patch("a", rect, mask[y:y + 10, x:x + 10].copy(), mask.copy())
        if _ % 20 == 0:
            j.flush()
            sizes.append(j.path.stat().st_size)
    assert j.flush()
    sizes.append(j.path.stat().st_size)
    assert max(sizes) <= 4000 + 6000, sizes                 # one snap + a few patches
    assert len(list((tmp_path / "j1").glob("*.sjl"))) == 1, "the old file is removed on rewrite"
    assert np.array_equal(_plan(tmp_path, [j.path])["a"].mask, mask)


def test_an_unwritable_journal_folder_falls_back_to_the_next(tmp_path):
    (tmp_path / "j1").write_text("a file where the folder should be")
    j = _journal(tmp_path)
    mask = np.zeros((H, W), np.uint8)
    j.append_patch("a", *_paint(mask, 0, 0, 10, 10))
    assert j.flush() and j.error is None
    assert j.path.parent == tmp_path / "j2"
    assert np.array_equal(_plan(tmp_path, [j.path])["a"].mask, mask)


def test_write_failure_mid_session_moves_live_records_to_the_fallback(tmp_path, monkeypatch):
    j = _journal(tmp_path)
    mask = np.zeros((H, W), np.uint8)
    j.append_patch("a", *_paint(mask, 0, 0, 10, 10))
    assert j.flush() and j.path.parent == tmp_path / "j1"
    first = j.path
    real_write = os.write

    def failing_write(fd, data):  # the first folder's disk is full
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(tmp_path / "j1")):
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(journal.os, "write", failing_write)
    j.append_patch("a", *_paint(mask, 40, 40, 60, 60))
    assert j.flush() and j.path.parent == tmp_path / "j2"
    assert not first.exists()
    assert np.array_equal(_plan(tmp_path, [j.path])["a"].mask, mask)


def test_a_mask_changed_outside_after_the_journal_is_a_conflict(tmp_path):
    masks = tmp_path / "masks"
    j = _journal(tmp_path)
    mask = np.zeros((H, W), np.uint8)
    j.append_patch("a", *_paint(mask, 0, 0, 10, 10))
    j.close()
    other = np.zeros((H, W), np.uint8)
    other[40:, 40:] = 1                                    # someone else's mask
    io.write_mask(masks / "a.png", other)
    later = time.time() + 60
    os.utime(masks / "a.png", (later, later))
    files = journal.leftover_files([tmp_path / "j1"])
    plan = _plan(tmp_path, files)
    assert plan["a"].conflict, "the caller must not overwrite it blindly"
    assert np.array_equal(plan["a"].mask[0:10, 0:10], mask[0:10, 0:10])


def test_no_replay_when_the_mask_on_disk_already_has_every_edit(tmp_path):
    masks = tmp_path / "masks"
    j = _journal(tmp_path)
    mask = np.zeros((H, W), np.uint8)
    j.append_patch("a", *_paint(mask, 0, 0, 10, 10))
    j.close()
    io.write_mask(masks / "a.png", mask)
    assert _plan(tmp_path, journal.leftover_files([tmp_path / "j1"])) == {}


@pytest.mark.parametrize("bad", [b"", b"SLJ1", b"garbage" * 10])
def test_garbage_parses_to_nothing(bad):
    assert journal.parse(bad) == []


def test_small_patches_are_in_the_file_when_the_call_returns(tmp_path):
    j = _journal(tmp_path)
    mask = np.zeros((H, W), np.uint8)
    j.append_snapshot("a", mask.copy())
    assert j.flush()                                   # the file exists, nothing queued
    seq = j.append_patch("a", *_paint(mask, 5, 5, 25, 25))
    assert j.written_seq == seq, "written on the caller's thread"
    assert np.array_equal(_plan(tmp_path, [j.path])["a"].mask, mask)   # no flush needed
    big = np.zeros((1000, 1000), np.uint8)
    seq2 = j.append_patch("b", (0, 0, 1000, 1000), big + 1, big + 1)  # 1 MB: the thread's job
    assert j.flush() and j.written_seq == seq2 and j.durable_seq == seq2
    kinds = [(r.kind, r.stem) for r in journal.parse(j.path.read_bytes())]
    assert kinds == [("snap", "a"), ("patch", "a"), ("patch", "b")]
