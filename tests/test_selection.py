"""Cold-start order (segcore.selection) and its use in Project.attention_order."""

from __future__ import annotations

import numpy as np
import pytest

from segcore import selection
from segcore.demo import generate_demo_project
from segcore.project import Project
from segcore.training import TrainConfig


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_order_is_typical_first_then_other_clusters_and_outliers_late():
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:3] * 10
    sizes = (30, 20, 10)
    spreads = (0.2, 0.5, 0.8)  # cluster 0 is the densest
    points = [c + rng.normal(0, sd, (n, 8)) for c, n, sd in zip(centres, sizes, spreads)]
    outlier = np.full((1, 8), -10.0)
    emb = _unit(np.concatenate(points + [outlier]))
    labels = np.repeat([0, 1, 2], sizes).tolist() + [3]
    order = selection.typical_diverse_order(emb, neighbours=5)
    assert sorted(order) == list(range(len(emb)))
    assert labels[order[0]] == 0                       # a member of the densest cluster first
    assert {labels[i] for i in order[:3]} == {0, 1, 2}  # then one of every other cluster
    assert order.index(len(emb) - 1) >= 3               # the lone outlier is not among them


def test_duplicates_and_tiny_inputs():
    assert selection.typical_diverse_order(np.zeros((0, 4), np.float32)) == []
    assert selection.typical_diverse_order(_unit(np.ones((1, 4)))) == [0]
    same = _unit(np.ones((5, 4)))
    assert sorted(selection.typical_diverse_order(same)) == list(range(5))


def test_attention_order_uses_the_cold_start_order_for_unpredicted_images(tmp_path):
    root = generate_demo_project(tmp_path / "p", n_images=6, size=(32, 40), seed=1)
    with Project.open(root) as project:
        stems = project.stems()
        assert project.attention_order() == stems  # nothing stored: by name
        cold = list(reversed(stems))
        selection.store_cold_start_order(project, cold)
        assert project.attention_order() == cold
        # a predicted image comes first, a corrected one last; the others keep the cold order
        project.save_prediction(stems[2], np.zeros((32, 40), np.uint8), 0.7, None)
        project.save_mask(stems[4], np.ones((32, 40), np.uint8))
        expected = [stems[2]] + [s for s in cold if s not in (stems[2], stems[4])] + [stems[4]]
        assert project.attention_order() == expected


@pytest.mark.usefixtures("offline_one_thread")
def test_cold_start_order_ranks_every_image_and_puts_unreadable_last(tmp_path):
    root = generate_demo_project(tmp_path / "p", n_images=7, size=(48, 64), seed=3)
    bad = sorted(root.glob("*.png"))[1]
    bad.write_bytes(b"not an image")
    with Project.open(root) as project:
        model = selection.embedding_model(TrainConfig(pretrained=False))
        seen = []
        order = selection.cold_start_order(project, model, on_progress=lambda i, n: seen.append((i, n)))
        assert sorted(order) == project.stems() and order[-1] == bad.stem
        assert seen and seen[-1][1] == 7
        assert selection.cold_start_order(project, model, should_stop=lambda: True) is None
