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


def test_a_dense_family_of_near_copies_gets_one_place_in_the_first_batch():
    """The tile failure: ~20 % empty tiles lie on a thin, dense manifold (near-identical
    embeddings, brightness the only change). Typicality · gap let them fill 4 of the first 5 places
    (measured on dsb2018 / PH2 tiles: 2–3 of 5, 6–7 of 20); clustering gives every large part of
    the data one place in the first batch, each the most typical image of its cluster."""
    rng = np.random.default_rng(0)
    d = 16
    blank = (np.eye(d)[0] * 3 + np.outer(rng.uniform(0, 1.5, 40), np.eye(d)[1])
             + rng.normal(0, 0.01, (40, d)))
    others = [np.eye(d)[i] * 3 + rng.normal(0, 0.8, (40, d)) for i in range(2, 6)]
    emb = _unit(np.concatenate([blank] + others))
    labels = np.repeat(np.arange(5), 40)
    order = selection.typical_diverse_order(emb)
    assert sorted(order) == list(range(len(emb)))
    assert sorted(labels[order[:5]].tolist()) == [0, 1, 2, 3, 4]
    assert (labels[order[:20]] == 0).sum() <= 4          # at most its share of the first 20
    assert selection.typical_diverse_order(emb) == order  # reproducible (seeded k-means)


def test_small_sets_are_ordered_whole():
    emb = _unit(np.random.default_rng(1).normal(size=(7, 5)))
    assert sorted(selection.typical_diverse_order(emb, first=5)) == list(range(7))
    assert sorted(selection.typical_diverse_order(emb, clustered=3)) == list(range(7))


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


# ------------------------------------------------------------------ after a model: spread
def _cluster(centre: int, n: int, rng: np.random.Generator, dim: int = 16) -> np.ndarray:
    return _unit(np.eye(dim)[centre] * 10 + rng.normal(0, 0.5, (n, dim)))


def test_attention_spreads_to_images_unlike_the_corrected_ones():
    """Confidently predicted images of a kind no corrected image shows (cluster B) come up in
    the first batch; sorted by uncertainty alone they would come last."""
    from segcore.attention import spread
    rng = np.random.default_rng(0)
    a, b = _cluster(0, 22, rng), _cluster(1, 3, rng)
    emb = {f"a{i}": a[i] for i in range(22)} | {f"b{i}": b[i] for i in range(3)}
    done = [f"a{i}" for i in range(12)]
    cands = [(f"a{i}", 0.5 + 0.04 * (i - 12)) for i in range(12, 22)] + [(f"b{i}", 0.05) for i in range(3)]
    by_uncertainty = [s for s, _ in sorted(cands, key=lambda c: -c[1])]
    order = spread(cands, done, emb)
    assert sorted(order) == sorted(by_uncertainty)
    assert any(s.startswith("b") for s in order[:5]) and by_uncertainty[-3:] == ["b0", "b1", "b2"]
    assert by_uncertainty[0] in order[:3]  # the most uncertain image stays near the top
    assert sum(s.startswith("b") for s in order[:5]) == 1  # one of the new kind is enough to start
    # no corrected image, or no embeddings: the uncertainty order
    assert spread(cands, [], emb) == by_uncertainty
    assert spread(cands, done, {}) == by_uncertainty


def test_attention_batch_is_not_a_row_of_near_duplicates():
    from segcore.attention import spread
    rng = np.random.default_rng(1)
    dup = _unit(np.eye(16)[2] * 10 + rng.normal(0, 0.05, (6, 16)))  # six near-copies
    other = _cluster(3, 1, rng)
    anchor = _cluster(0, 1, rng)
    emb = {f"d{i}": dup[i] for i in range(6)} | {"o": other[0], "x": anchor[0]}
    cands = [(f"d{i}", 0.9 - 0.01 * i) for i in range(6)] + [("o", 0.8)]
    assert spread(cands, ["x"], emb)[:2] == ["d0", "o"]


@pytest.mark.usefixtures("offline_one_thread")
def test_cold_start_keeps_embeddings_and_the_attention_order_uses_them(tmp_path):
    from segcore import attention
    root = generate_demo_project(tmp_path / "p", n_images=6, size=(48, 64), seed=4)
    with Project.open(root) as project:
        model = selection.embedding_model(TrainConfig(pretrained=False))
        selection.cold_start_order(project, model)
        table = attention.load_embeddings(project.state_dir)
        assert sorted(table) == project.stems()
        assert all(abs(float(np.linalg.norm(e)) - 1.0) < 0.01 for e in table.values())
        seen = []  # stored embeddings are not computed again
        again = selection.cold_start_order(project, model, on_progress=lambda i, n: seen.append(n))
        assert sorted(again) == project.stems() and seen == []
        # the project's attention order is attention.spread over the stored embeddings
        stems = project.stems()
        project.save_mask(stems[0], np.ones((48, 64), np.uint8))
        for i, s in enumerate(stems[1:]):
            project.save_prediction(s, np.zeros((48, 64), np.uint8), 0.1 * (i + 1), None)
        cands = [(s, 0.1 * (i + 1)) for i, s in enumerate(stems[1:])]
        assert project.attention_order() == attention.spread(cands, [stems[0]], table) + [stems[0]]


def test_damaged_embeddings_fall_back_to_the_uncertainty_order(tmp_path):
    from segcore import attention
    root = generate_demo_project(tmp_path / "p", n_images=4, size=(32, 40), seed=2)
    with Project.open(root) as project:
        stems = project.stems()
        attention.store_embeddings(project.state_dir, {s: np.eye(4)[i] for i, s in enumerate(stems)})
        assert len(attention.load_embeddings(project.state_dir)) == 4
        attention.embeddings_path(project.state_dir).write_bytes(b"not a numpy archive")
        assert attention.load_embeddings(project.state_dir) == {}
        project.save_mask(stems[0], np.ones((32, 40), np.uint8))
        for i, s in enumerate(stems[1:]):
            project.save_prediction(s, np.zeros((32, 40), np.uint8), 0.1 * (i + 1), None)
        assert project.attention_order() == [stems[3], stems[2], stems[1], stems[0]]
