"""Model versions under concurrency and index loss (issue 14, item 5): atomic file allocation,
an idempotent single-flight rebuild, and the active version recorded outside the index."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from segcore import models, versions
from segcore.project import Project
from segcore.versions import ACTIVE_FILE, ModelStore, load_checkpoint


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return models.build("deeplabv3_mobilenet_v2", num_classes=2, pretrained=False)


def _lose_index(root):
    for f in (root / ".segloop").glob("index.sqlite*"):
        f.unlink()


def _tagged(model, value: float):
    """A copy of ``model`` whose last conv bias holds ``value`` (tells the weights apart)."""
    import copy
    m = copy.deepcopy(model)
    with torch.no_grad():
        [c for c in m.decoder.modules() if isinstance(c, torch.nn.Conv2d)][-1].bias.fill_(value)
    return m


def _bias(model) -> float:
    return float([c for c in model.decoder.modules() if isinstance(c, torch.nn.Conv2d)][-1].bias[0].detach())


def test_two_saves_at_the_same_moment_get_two_files(tmp_path, tiny_model, monkeypatch):
    Project.open(tmp_path).close()
    real_save = versions._save
    both_named = threading.Barrier(2, timeout=30)

    def save_when_both_have_a_name(path, model, meta):
        both_named.wait()  # neither has written its file yet: the old code picked the same name
        return real_save(path, model, meta)

    monkeypatch.setattr(versions, "_save", save_when_both_have_a_name)
    results: dict[int, int] = {}
    errors: list[BaseException] = []

    def fine_tune_finished(i: int) -> None:
        try:
            with Project.open(tmp_path) as project:
                results[i] = ModelStore(project).save_version(_tagged(tiny_model, float(i + 1)), {},
                                                              None, {"run": i})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fine_tune_finished, args=(i,)) for i in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    with Project.open(tmp_path) as project:
        rows = project.models.versions(rebuild=False)
        files = sorted(p.name for p in project.models_dir.glob("v*.pt"))
        assert files == ["v0001.pt", "v0002.pt"]
        assert sorted(r.file for r in rows) == files
        for row in rows:  # each row's metrics belong to the weights in its own file
            model, meta = load_checkpoint(project.models_dir / row.file)
            assert meta["metrics"]["run"] == row.metrics["run"]
            assert _bias(model) == pytest.approx(row.metrics["run"] + 1.0)


def test_rebuild_from_several_threads_registers_each_version_once(tmp_path, tiny_model, monkeypatch):
    with Project.open(tmp_path) as project:
        store = ModelStore(project)
        v1 = store.save_version(tiny_model, {}, None, {"val_iou": 0.1})
        v2 = store.save_version(tiny_model, {}, v1, {"val_iou": 0.2})
        store.save_version(tiny_model, {}, v2, {"val_iou": 0.3})
    _lose_index(tmp_path)
    real_read_meta = versions.read_meta
    monkeypatch.setattr(versions, "read_meta", lambda p: time.sleep(0.05) or real_read_meta(p))
    projects = [Project.open(tmp_path) for _ in range(3)]
    start = threading.Barrier(3, timeout=30)

    def look(project):
        start.wait()
        ModelStore(project).versions()

    threads = [threading.Thread(target=look, args=(p,)) for p in projects]
    [t.start() for t in threads]
    [t.join() for t in threads]
    rows = projects[0].models.versions(rebuild=False)
    assert [r.file for r in rows] == ["v0001.pt", "v0002.pt", "v0003.pt"]
    assert [r.parent for r in rows] == [None, rows[0].id, rows[1].id]
    assert [r.metrics["val_iou"] for r in rows] == [0.1, 0.2, 0.3]
    for p in projects:
        p.close()


def test_rescan_is_idempotent_across_processes(tmp_path, tiny_model):
    """Without the in-process lock (another process), registering again adds no row."""
    with Project.open(tmp_path) as project:
        store = ModelStore(project)
        store.save_version(tiny_model, {}, None, {})
        store.save_version(tiny_model, {}, 1, {})
    _lose_index(tmp_path)
    with Project.open(tmp_path) as project:
        first = ModelStore(project).rescan()
        again = ModelStore(project).rescan()
        assert first == again and len(project.models.versions(rebuild=False)) == 2


def test_rollback_survives_index_loss(tmp_path, tiny_model):
    with Project.open(tmp_path) as project:
        store = ModelStore(project)
        v1 = store.save_version(tiny_model, {}, None, {})
        store.save_version(tiny_model, {}, v1, {})
        assert store.rollback() == v1
        assert (project.models_dir / ACTIVE_FILE).read_text().strip() == "v0001.pt"
    _lose_index(tmp_path)
    with Project.open(tmp_path) as project:
        assert ModelStore(project).active().file == "v0001.pt"


def test_no_active_version_survives_index_loss(tmp_path, tiny_model):
    with Project.open(tmp_path) as project:
        ModelStore(project).save_version(tiny_model, {}, None, {})
        project.models.activate(None)
    _lose_index(tmp_path)
    with Project.open(tmp_path) as project:
        assert len(ModelStore(project).versions()) == 1 and project.models.active(rebuild=False) is None


def test_without_active_file_the_newest_is_activated(tmp_path, tiny_model):
    """Projects from before models/ACTIVE existed keep the old rebuild rule."""
    with Project.open(tmp_path) as project:
        store = ModelStore(project)
        v1 = store.save_version(tiny_model, {}, None, {})
        store.save_version(tiny_model, {}, v1, {})
        store.rollback()
    (tmp_path / ".segloop" / "models" / ACTIVE_FILE).unlink()
    _lose_index(tmp_path)
    with Project.open(tmp_path) as project:
        assert ModelStore(project).active().file == "v0002.pt"


def test_failed_save_frees_its_file_name(tmp_path, tiny_model, monkeypatch):
    from segcore.errors import CheckpointError
    with Project.open(tmp_path) as project:
        store = ModelStore(project)

        def disk_full(path, model, meta):
            raise CheckpointError(f"{path}: could not write the checkpoint (no space left on the disk)")

        monkeypatch.setattr(versions, "_save", disk_full)
        with pytest.raises(CheckpointError, match="no space"):
            store.save_version(tiny_model, {}, None, {})
        monkeypatch.undo()
        assert list(project.models_dir.glob("v*")) == [] and project.models.versions(rebuild=False) == []
        assert project.models.get(store.save_version(tiny_model, {}, None, {})).file == "v0001.pt"
