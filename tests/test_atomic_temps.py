"""Temp files of the atomic write (segcore._atomic): a write killed mid-way leaves its temp file
in masks/; the next open removes it, never lists it, and keeps a write in progress alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from segcore import _atomic, io
from segcore.demo import generate_demo_project
from segcore.project import Project

ROOT = Path(__file__).resolve().parents[1]

# A child that saves a mask through the project's save path and stops inside the temp file's
# fsync (after the data is written, before the rename) until told to go on.
CHILD = r"""
import os, sys, time
from pathlib import Path
import numpy as np
from segcore import _atomic
from segcore.project import Project

root, ready, go = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
real_fsync = os.fsync

def held_fsync(fd):
    ready.touch()
    while not go.exists():
        time.sleep(0.02)
    real_fsync(fd)

with Project.open(root) as p:
    stem = p.stems()[0]
    h, w = p.load_image(stem).shape[:2]
    mask = np.zeros((h, w), np.uint8)
    mask[:, : w // 2] = 1
    _atomic.os.fsync = held_fsync
    p.save_mask(stem, mask)
print("saved")
"""

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL, flock")


def _temps(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.endswith(".tmp"))


def _child(root: Path, tmp_path: Path) -> tuple[subprocess.Popen, Path, Path]:
    ready, go = tmp_path / "ready", tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(ready), str(go)],
                            env=env, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    end = time.monotonic() + 120
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            pytest.fail(f"child did not reach the write: {proc.communicate()[1].decode()[-800:]}")
        time.sleep(0.05)
    return proc, ready, go


def _project_with_mask(tmp_path: Path) -> tuple[Path, str, np.ndarray]:
    root = generate_demo_project(tmp_path / "proj", n_images=3, size=(60, 80), seed=2)
    with Project.open(root) as p:
        stem = p.stems()[0]
        before = np.zeros((60, 80), np.uint8)
        before[10:20] = 1
        p.save_mask(stem, before)
    return root, stem, before


@posix_only
def test_a_write_killed_midway_leaves_no_temp_file_after_the_next_open(tmp_path):
    root, stem, before = _project_with_mask(tmp_path)
    proc, _ready, _go = _child(root, tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    masks = root / "masks"
    left = _temps(masks)
    assert len(left) == 1 and left[0].startswith(f".{stem}.png.")  # what the kill leaves

    with Project.open(root) as p:
        assert _temps(masks) == []                      # removed on open
        assert sorted(os.listdir(masks)) == [f"{stem}.png"]
        assert len(p.stems()) == 3 and not any(s.startswith(".") for s in p.stems())
        np.testing.assert_array_equal(p.load_mask(stem), before)  # the old mask, unchanged


@posix_only
def test_the_temp_file_of_a_write_in_progress_is_kept_and_the_write_completes(tmp_path):
    root, stem, _before = _project_with_mask(tmp_path)
    proc, _ready, go = _child(root, tmp_path)
    masks = root / "masks"
    try:
        with Project.open(root):                        # another process opens meanwhile
            assert len(_temps(masks)) == 1              # the live write's temp is not stale
    finally:
        go.touch()
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-800:]
    assert _temps(masks) == []
    saved = io.read_mask(masks / f"{stem}.png")
    assert saved[:, :40].all() and not saved[:, 40:].any()   # the child's new mask


def test_a_write_whose_temp_was_removed_as_stale_writes_again(tmp_path):
    """The race the lock leaves: another process removed the temp file between its creation and
    the writer's lock. The rename then finds nothing; the write is repeated, not lost."""
    target = tmp_path / "a.bin"
    calls = []

    def write(fh):
        calls.append(1)
        fh.write(b"new")
        if len(calls) == 1:
            (tmp_name,) = _temps(tmp_path)
            os.unlink(tmp_path / tmp_name)              # what remove_stale_temps would do

    _atomic.atomic_write(target, write)
    assert target.read_bytes() == b"new" and len(calls) == 2 and _temps(tmp_path) == []


def test_only_the_atomic_writes_temp_names_are_removed(tmp_path):
    for name in (".a.png.0123abcd.tmp", "a.png", "notes.tmp", ".a.png.tmp", ".x.zzzzzzzz.tmp"):
        (tmp_path / name).write_bytes(b"x")
    assert _atomic.remove_stale_temps(tmp_path) == [".a.png.0123abcd.tmp"]
    assert sorted(os.listdir(tmp_path)) == [".a.png.tmp", ".x.zzzzzzzz.tmp", "a.png", "notes.tmp"]
