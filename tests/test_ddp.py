"""`segloop-cli train` under torch.distributed.run with 2 CPU processes (gloo): rank 0 writes the
checkpoint, and both ranks end with identical weights (DDP averaged every gradient)."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np

from segcore.io import write_mask
from segcore.versions import load_checkpoint


def test_train_with_two_processes(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        img = rng.integers(0, 80, (48, 64, 3)).astype(np.uint8)
        mask = np.zeros((48, 64), np.uint8)
        cv2.circle(mask, (20 + 4 * i, 24), 10, 1, -1)
        img[mask == 1] = (200, 60, 60)
        cv2.imwrite(str(images / f"s{i}.png"), img[..., ::-1])
        write_mask(masks / f"s{i}.png", mask)
    out, checksum = tmp_path / "ddp.pt", tmp_path / "sum"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "segcore.cli", "train", "--images", str(images), "--masks", str(masks),
           "--out", str(out), "--mode", "full", "--epochs", "2", "--input-size", "64",
           "--batch-size", "2", "--no-pretrained", "--device", "cpu",
           "--state-checksum", str(checksum)]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert out.is_file()
    model, meta = load_checkpoint(out)
    assert meta["world_size"] == 2 and meta["metrics"]["steps"] > 0
    r0 = (tmp_path / "sum.rank0").read_text()
    r1 = (tmp_path / "sum.rank1").read_text()
    assert r0 == r1
    from segcore.training.distributed import state_checksum
    assert state_checksum(model) == r0
