"""Image status lifecycle, migration of schema-1 indexes, and held-out roles that never move."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from PIL import Image

from segcore import roles
from segcore.errors import ProjectError
from segcore.loop import split_held_out
from segcore.project import ROLE_HELD_OUT, ROLE_TRAIN, ImageStatus, Project

H, W = 12, 16


def _folder(tmp_path, n=6):
    for i in range(n):
        Image.fromarray(np.full((H, W, 3), i * 20, np.uint8)).save(tmp_path / f"img{i:02d}.png")
    return tmp_path


def _mask(v=1):
    m = np.zeros((H, W), np.uint8)
    m[2:8, 3:9] = v
    return m


def test_lifecycle_in_progress_done_skip_reset(tmp_path):
    with Project.open(_folder(tmp_path)) as p:
        assert p.record("img00").status is ImageStatus.UNLABELLED
        p.save_mask("img00", _mask(), ImageStatus.IN_PROGRESS)
        assert p.record("img00").status is ImageStatus.IN_PROGRESS
        assert p.done_stems() == [] and p.training_split() == ([], [])
        p.set_status("img00", ImageStatus.DONE)
        assert p.done_stems() == ["img00"] and p.record("img00").role == ROLE_TRAIN
        # a prediction never overrides a user status
        p.save_prediction("img00", np.zeros((H, W), np.uint8), 0.3, None)
        assert p.record("img00").status is ImageStatus.DONE
        p.set_status("img01", ImageStatus.SKIPPED)  # skipping needs no mask
        p.save_prediction("img01", np.zeros((H, W), np.uint8), 0.3, None)
        assert p.record("img01").status is ImageStatus.SKIPPED
        with pytest.raises(ProjectError, match="no mask"):
            p.set_status("img02", ImageStatus.DONE)
        backup = p.reset_image("img00")
        assert backup is not None and backup.is_file() and backup.parent == p.backup_dir
        assert np.array_equal(np.asarray(Image.open(backup)) > 0, _mask() > 0)
        assert not p.mask_path("img00").exists()
        rec = p.record("img00")
        assert rec.status is ImageStatus.PREDICTED and rec.role == ROLE_TRAIN  # role kept
        assert p.done_stems() == []


def test_statuses_survive_reopen_and_a_mask_without_index_info_is_done(tmp_path):
    folder = _folder(tmp_path)
    with Project.open(folder) as p:
        p.save_mask("img00", _mask(), ImageStatus.IN_PROGRESS)
        p.save_mask("img01", _mask(), ImageStatus.SKIPPED)
        p.save_mask("img02", _mask())  # default: done
    with Project.open(folder) as p:
        assert [p.record(s).status for s in ("img00", "img01", "img02")] == [
            ImageStatus.IN_PROGRESS, ImageStatus.SKIPPED, ImageStatus.DONE]
    (folder / ".segloop" / "index.sqlite").unlink()
    for side in ("-wal", "-shm"):
        (folder / ".segloop" / f"index.sqlite{side}").unlink(missing_ok=True)
    with Project.open(folder) as p:  # rebuilt from the files: masks on disk are done
        assert p.done_stems() == ["img00", "img01", "img02"]


def test_schema_1_index_migrates_corrected_to_done_with_the_old_split(tmp_path):
    folder = _folder(tmp_path, n=12)
    (folder / ".segloop").mkdir()
    (folder / "masks").mkdir()
    conn = sqlite3.connect(folder / ".segloop" / "index.sqlite")
    conn.executescript("""
        CREATE TABLE images (stem TEXT PRIMARY KEY, filename TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL DEFAULT 'unlabelled', updated REAL, mtime_ns INTEGER,
            uncertainty REAL, iou REAL, biou REAL, error TEXT, model_version INTEGER);
        PRAGMA user_version = 1;""")
    stems = [f"img{i:02d}" for i in range(12)]
    for i, s in enumerate(stems):
        status = "corrected" if i < 10 else "unlabelled"
        conn.execute("INSERT INTO images (stem, filename, status, mtime_ns) VALUES (?, ?, ?, ?)",
                     (s, f"{s}.png", status, (folder / f"{s}.png").stat().st_mtime_ns))
        if i < 10:
            Image.fromarray(_mask(255)).save(folder / "masks" / f"{s}.png")
    conn.commit()
    conn.close()
    with Project.open(folder) as p:
        assert p.done_stems() == stems[:10]
        assert p.record("img11").status is ImageStatus.UNLABELLED
        assert p.training_split() == split_held_out(stems[:10])
        held = p.training_split()[1]  # the old hash rule: sha1(stem) % 5 == 0, capped at 15 %
        assert held and all(roles.stem_hash(s) % 5 == 0 for s in held)


def test_use_for_training_is_recorded_and_the_share_refills(tmp_path):
    with Project.open(_folder(tmp_path, n=8)) as p:
        for s in p.stems()[:4]:
            p.save_mask(s, _mask())
        train, held = p.training_split()
        assert len(held) == 1 and len(train) == 3
        p.use_for_training(held[0])
        assert "moved to training by the user" in p.role_note(held[0])
        assert p.training_split() == (sorted(train + held), [])
        with pytest.raises(ProjectError, match="not held out"):
            p.use_for_training(held[0])
        p.save_mask(p.stems()[4], _mask())  # the next done image refills the held-out share
        assert p.training_split()[1] == [p.stems()[4]]


def test_roles_are_stable_as_images_are_done_in_batches(tmp_path):
    stems = [f"img{i:02d}" for i in range(40)]
    seen: dict[str, str] = {}
    for i in range(0, 40, 4):  # ten batches
        new = stems[i:i + 4]
        counts = {r: list(seen.values()).count(r) for r in (ROLE_TRAIN, ROLE_HELD_OUT)}
        seen.update(roles.assign(new, counts[ROLE_TRAIN], counts[ROLE_HELD_OUT]))
        held = sum(r == ROLE_HELD_OUT for r in seen.values())
        assert held == roles.held_out_target(len(seen))
    assert roles.held_out_target(3) == 0 and roles.held_out_target(4) == 1
    assert roles.held_out_target(40) == 6


def test_held_out_roles_are_stable_across_ten_fine_tunes(tmp_path):
    """Images done in batches, one fine-tune per batch: no image ever changes role, every
    version is scored on its held-out images, and each is compared with its parent on the
    images held out for both."""
    import torch

    from segcore import loop
    from segcore.demo import generate_demo_project, load_ground_truth
    from segcore.training import TrainConfig

    torch.set_num_threads(1)
    folder = generate_demo_project(tmp_path / "p", n_images=30, size=(48, 64), seed=2)
    config = TrainConfig(mode="fast", epochs=1, time_budget_s=None, input_size=32, batch_size=4,
                         fast_views=1, seed=0, pretrained=False)
    with Project.open(folder) as p:
        stems = p.stems()
        roles_seen: dict[str, str] = {}
        results = []
        for batch in range(10):
            for s in stems[batch * 3:(batch + 1) * 3]:
                p.save_mask(s, (load_ground_truth(folder, s) > 0).astype(np.uint8))
            result = loop.finetune(p, config)
            results.append(result)
            for rec in p.records():
                if rec.role is not None:
                    assert roles_seen.setdefault(rec.stem, rec.role) == rec.role, rec.stem
            train, held = p.training_split()
            assert (result.train, result.held_out) == (train, held)
            assert not set(held) & set(result.train)
            assert len(held) == roles.held_out_target(len(train) + len(held))
        assert len(roles_seen) == 30
        versions = {v.id: v for v in p.models.versions()}
        last = versions[results[-1].version_id]
        assert set(last.metrics["held_out_scores"]) == set(results[-1].held_out)
        parent = versions[last.parent]
        c = loop.compare_versions(last, parent)
        shared = sorted(set(results[-1].held_out) & set(results[-2].held_out))
        assert c is not None and c["stems"] == shared and c["n"] == len(shared) >= 3
