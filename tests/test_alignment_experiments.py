"""Lesson 04's claims hold on a seed other than the lesson's (``claims_hold``); the helpers behind them."""

import pytest
import scipy.stats
import torch
from claims_hold import claim_tests

from mmcourse.alignment import random_rotation
from mmcourse.data import load_av_digits
from mmcourse.experiments import alignment as experiments
from mmcourse.metrics import ComparisonEntry

measured, test_every_claim_is_measured, test_claim_holds = claim_tests(experiments, seeds=(1,))


def test_rank_correlation_equals_scipy():
    a, b = [0.3, 0.9, 0.1, 0.5, 0.7], [1.0, 3.0, 2.0, 5.0, 4.0]
    assert experiments.rank_correlation(a, b) == pytest.approx(scipy.stats.spearmanr(a, b).statistic)


def test_synthetic_spaces_share_everything_but_the_warp():
    plain, bent = experiments.synthetic_spaces(3, n=300), experiments.synthetic_spaces(3, warp_strength=1.0, n=300)
    assert torch.equal(plain.source, bent.source) and torch.equal(plain.rotation, bent.rotation)
    assert not torch.allclose(plain.target, bent.target)
    assert torch.allclose(plain.target.norm(dim=1), torch.ones(300), atol=1e-5)


def test_ten_pairs_take_one_row_per_digit():
    labels = torch.arange(100) % 10
    pick = experiments.ten_pairs(labels, seed=4)
    assert sorted(labels[pick].tolist()) == list(range(10))


def test_centroid_geometry_ignores_rotations():
    g = torch.Generator().manual_seed(5)
    embeddings, labels = torch.randn(200, 12, generator=g), torch.arange(200) % 10
    turned = embeddings @ random_rotation(12, generator=g)
    assert torch.allclose(experiments.centroid_geometry(embeddings, labels),
                          experiments.centroid_geometry(turned, labels), atol=1e-5)


def test_bag_of_words_counts_words_without_padding():
    counts = experiments.bag_of_words(torch.tensor([[3, 4, 3, 0, 0], [5, 0, 0, 0, 0]]), vocabulary_size=6)
    assert counts.tolist() == [[0, 0, 0, 2, 1, 0], [0, 0, 0, 0, 0, 1]]


def test_speech_to_image_retrieval_gives_lesson_04s_rows_as_the_lesson_prints_them():
    """The rows lesson 07 computes when lesson 04 has not kept its own are the lesson's numbers: the same runs
    (data, encoders, settings, seed), even after other work has drawn from the global generator."""
    entries = experiments.speech_to_image_retrieval(seed=2)
    assert [e.pairs for e in entries] == ["all", "10", "none"]
    assert all(isinstance(e, ComparisonEntry) and e.lesson == "04" and e.labels == "training" for e in entries)
    torch.rand(1000)  # as a lesson's earlier cells would
    data = load_av_digits(seed=2)
    cross = experiments.cross_modal_alignment(seed=2, encoders=experiments.train_unimodal_encoders(seed=2, data=data))
    assert entries == experiments.comparison_rows(cross)
    for entry, name in zip(entries, experiments.ALIGNMENTS):
        assert entry.retrieval == cross[name]["retrieval"] and len(entry.hits) == len(data["test"])
        assert sum(entry.hits) / len(entry.hits) == pytest.approx(entry.retrieval.recall_at_1)
    all_pairs, _, none = (e.retrieval for e in entries)
    assert all_pairs.recall_at_1 > 2 * all_pairs.chance_at_1 and none.recall_at_1 < 2 * none.chance_at_1


def test_rank_correlation_gives_ties_their_mean_rank_as_scipy_does():
    a, b = [0.1, 0.3, 0.3, 0.5, 0.9, 0.9], [1.0, 2.0, 4.0, 3.0, 6.0, 5.0]
    assert experiments.rank_correlation(a, b) == pytest.approx(scipy.stats.spearmanr(a, b).statistic)


def test_distinct_in_top_counts_the_labels_of_each_query_top_k():
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.7], [0.1, 0.2, 0.9, 0.8]])
    labels = torch.tensor([3, 3, 5, 4])
    # query 0: top 2 are items 0, 1 (label 3 twice); query 1: items 2, 3 (labels 5, 4)
    assert experiments.distinct_in_top(scores, labels, k=2) == pytest.approx(1.5)
    assert experiments.distinct_in_top(scores, labels, k=4) == pytest.approx(3.0)


def test_expected_distinct_equals_the_mean_over_every_random_top_k():
    import itertools

    labels = torch.tensor([0, 0, 0, 1, 1, 2, 3])
    k = 3
    draws = [len({int(labels[i]) for i in pick}) for pick in itertools.combinations(range(len(labels)), k)]
    assert experiments.expected_distinct(labels, k) == pytest.approx(sum(draws) / len(draws))


def test_geometry_correlation_is_pearson_over_the_off_diagonal():
    g = torch.Generator().manual_seed(6)
    a, b = torch.randn(10, 10, generator=g), torch.randn(10, 10, generator=g)
    off = ~torch.eye(10, dtype=torch.bool)
    assert experiments.geometry_correlation(a, b) == pytest.approx(scipy.stats.pearsonr(a[off], b[off]).statistic,
                                                                   abs=1e-6)
    assert experiments.geometry_correlation(a, 2 * a + 1) == pytest.approx(1.0, abs=1e-6)


def test_same_modality_controls_find_a_rotated_copy_identical():
    """A 'second' encoder whose embeddings are the first's, turned: Procrustes undoes the turn (criterion 1) and
    the digit geometry is the same (correlation 1)."""
    g = torch.Generator().manual_seed(7)
    labels = {"train": torch.arange(300) % 10, "test": torch.arange(100) % 10}
    embed = {m: {s: torch.randn(len(labels[s]), 8, generator=g) + labels[s][:, None] for s in labels}
             for m in ("image", "audio")}
    turn = random_rotation(8, generator=g)
    second = {m: {s: e @ turn for s, e in embed[m].items()} for m in embed}
    controls = experiments.same_modality_controls({"labels": labels, **embed}, second)
    for m in ("image", "audio"):
        assert controls[m]["criterion"] == pytest.approx(1.0, abs=1e-5)
        assert controls[m]["geometry_correlation"] == pytest.approx(1.0, abs=1e-5)


def test_the_claim_helpers_read_the_right_numbers():
    isometry = {"warps": [0.0, 0.5, 1.0, 1.5, 2.0], "precision": [0.99, 0.95, 0.7, 0.5, 0.4],
                "criterion": [0.999, 0.99, 0.98, 0.97, 0.96], "ceiling_criterion": [0.999, 0.99, 0.975, 0.972, 0.95]}
    assert experiments.warp_steps(isometry) == pytest.approx([0.2, 0.1])
    assert experiments.refinement_edge(isometry) == pytest.approx(-0.002)
    w = torch.eye(3)
    assert experiments.map_distance(2 * w, w) == pytest.approx(1.0)


def test_a_second_training_seed_trains_other_encoders_on_the_same_data():
    from mmcourse.data import load_av_digits

    data = load_av_digits(seed=3)
    first = experiments.train_unimodal_encoders(3, epochs=1, data=data)
    again = experiments.train_unimodal_encoders(3, epochs=1, data=data, train_seed=3)
    other = experiments.train_unimodal_encoders(3, epochs=1, data=data, train_seed=103)
    assert torch.allclose(first["image"]["train"], again["image"]["train"], atol=1e-6)
    assert torch.equal(first["labels"]["train"], other["labels"]["train"])
    assert not torch.allclose(first["audio"]["train"], other["audio"]["train"])
