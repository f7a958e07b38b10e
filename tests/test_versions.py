"""Checkpoints (atomic, weights_only, clear errors) and project model versions (save/load/rollback)."""

from __future__ import annotations

import os
import pickle
import shutil

import pytest
import torch

from segcore import models
from segcore.errors import CheckpointError, ProjectError
from segcore.project import Project
from segcore.versions import ModelStore, load_checkpoint, read_checkpoint, save_checkpoint


class Evil:
    """Any pickled object that is not a tensor or plain container must be refused."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return models.build("deeplabv3_mobilenet_v2", num_classes=2, pretrained=False)


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_roundtrip_keeps_weights_and_meta(tmp_path, tiny_model):
    path = save_checkpoint(tmp_path / "m.pt", tiny_model, {"classes": ["bg", "horse"], "metrics": {"val_iou": 0.5}})
    model, meta = load_checkpoint(path)
    assert _same_weights(model, tiny_model)
    assert meta["arch"] == "deeplabv3_mobilenet_v2"
    assert meta["classes"] == ["bg", "horse"] and meta["metrics"]["val_iou"] == 0.5
    assert meta["model_config"] == tiny_model.config()
    assert meta["mean"] == list(tiny_model.mean) and "created" in meta
    assert not model.training
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_meta_must_be_json(tmp_path, tiny_model):
    with pytest.raises(CheckpointError, match="JSON"):
        save_checkpoint(tmp_path / "m.pt", tiny_model, {"bad": object()})
    assert not (tmp_path / "m.pt").exists()


def test_truncated_checkpoint_names_file(tmp_path, tiny_model):
    path = save_checkpoint(tmp_path / "m.pt", tiny_model)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="m.pt.*corrupt or truncated"):
        load_checkpoint(path)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="m.pt"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_pickled_object_is_refused(tmp_path, tiny_model):
    path = tmp_path / "evil.pt"
    torch.save({"format": "segloop-checkpoint", "format_version": 1,
                "state_dict": tiny_model.state_dict(), "meta_json": "{}", "x": Evil()}, path)
    with pytest.raises(CheckpointError, match="evil.pt.*pickled Python objects"):
        load_checkpoint(path)
    plain = tmp_path / "plain.pt"
    with open(plain, "wb") as fh:
        pickle.dump(Evil(), fh)
    with pytest.raises(CheckpointError, match="plain.pt"):
        load_checkpoint(plain)


def test_foreign_and_wrong_architecture(tmp_path, tiny_model):
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="other.pt: not a SegLoop checkpoint"):
        load_checkpoint(other)
    path = save_checkpoint(tmp_path / "m.pt", tiny_model)
    state, meta = read_checkpoint(path)
    bad = dict(meta, model_config={**meta["model_config"], "num_classes": 5, "binary_bce": False})
    torch.save({"format": "segloop-checkpoint", "format_version": 1, "state_dict": state,
                "meta_json": __import__("json").dumps(bad)}, path)
    with pytest.raises(CheckpointError, match="m.pt: weights do not match"):
        load_checkpoint(path)


def test_store_save_load_rollback_compare(tmp_path, tiny_model):
    project = Project.open(tmp_path)
    store = ModelStore(project)
    assert store.versions() == [] and store.active() is None
    v1 = store.save_version(tiny_model, {"data": {"train": ["a"]}}, None, {"val_iou": 0.4})
    changed = models.build("deeplabv3_mobilenet_v2", pretrained=False)
    v2 = store.save_version(changed, {}, v1, {"val_iou": 0.6})
    assert (project.models_dir / "v0001.pt").is_file() and (project.models_dir / "v0002.pt").is_file()
    assert store.active().id == v2
    assert _same_weights(store.load(v1), tiny_model)
    assert store.compare(v1, v2)["metrics"]["val_iou"] == [0.4, 0.6]
    assert store.rollback() == v1 and store.active().id == v1
    with pytest.raises(ProjectError, match="no parent"):
        store.rollback()
    store.activate(v2)
    assert store.active().id == v2
    project.close()


def test_store_rescans_when_index_is_lost(tmp_path, tiny_model):
    project = Project.open(tmp_path)
    store = ModelStore(project)
    v1 = store.save_version(tiny_model, {}, None, {"val_iou": 0.4})
    store.save_version(tiny_model, {}, v1, {"val_iou": 0.5})
    project.close()
    models_dir = tmp_path / ".segloop" / "models"
    for p in (tmp_path / ".segloop").iterdir():
        if p != models_dir:
            p.unlink() if p.is_file() else shutil.rmtree(p)
    project = Project.open(tmp_path)
    rows = ModelStore(project).versions()
    assert [r.file for r in rows] == ["v0001.pt", "v0002.pt"]
    assert rows[1].parent == rows[0].id and rows[1].metrics == {"val_iou": 0.5}
    assert ModelStore(project).active().file == "v0002.pt"
    project.close()
