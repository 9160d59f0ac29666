"""The shared metrics: Recall@K and its chance level, per-query hits, class retrieval, NDCG against scikit-learn."""

import itertools
import math

import fake_accelerator as fake
import pytest
import torch
from sklearn.metrics import ndcg_score

from mmcourse.metrics import (
    chance_ndcg_at_k,
    chance_recall_at_k,
    class_retrieval,
    comparison_entry,
    hits_at_k,
    ndcg_at_k,
    recall_at_k,
)


def test_recall_at_k_by_hand():
    scores = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.8, 0.3], [0.1, 0.2, 0.3]])
    relevant = torch.tensor([[False, False, True], [True, False, False], [False, False, True]])
    assert recall_at_k(scores, relevant, 1) == pytest.approx(1 / 3)  # only query 3's best item is relevant
    assert recall_at_k(scores, relevant, 2) == pytest.approx(2 / 3)
    assert recall_at_k(scores, relevant, 3) == 1.0
    assert recall_at_k(scores, torch.zeros(3, 3, dtype=torch.bool), 3) == 0.0


def test_chance_recall_matches_every_ranking():
    relevant = torch.tensor([[True, False, False, False, True], [False, False, True, False, False]])
    for k in (1, 2, 3, 5):
        rankings = list(itertools.permutations(range(5)))
        mean = sum(relevant[:, list(r[:k])].any(1).float().mean().item() for r in rankings) / len(rankings)
        assert chance_recall_at_k(relevant, k) == pytest.approx(mean)
    # one relevant item among G: chance is k / G
    assert chance_recall_at_k(torch.eye(10, dtype=torch.bool), 3) == pytest.approx(0.3)
    assert chance_recall_at_k(torch.eye(10, dtype=torch.bool), 1) == pytest.approx(1 / 10)
    assert math.isclose(chance_recall_at_k(torch.ones(2, 4, dtype=torch.bool), 1), 1.0)


@pytest.mark.parametrize(
    "scores, relevant, k, match",
    [
        (torch.rand(3), torch.ones(3, dtype=torch.bool), 1, "scores"),
        (torch.rand(3, 4), torch.ones(3, 5, dtype=torch.bool), 1, "relevant: expected a bool tensor of shape"),
        (torch.rand(3, 4), torch.ones(3, 4), 1, "relevant"),
        (torch.rand(3, 4), torch.ones(3, 4, dtype=torch.bool), 5, "k: expected an integer from 1 to the gallery"),
        (torch.rand(3, 4), torch.ones(3, 4, dtype=torch.bool), 0, "k"),
    ],
)
def test_bad_input(scores, relevant, k, match):
    with pytest.raises(ValueError, match=match):
        recall_at_k(scores, relevant, k)


@pytest.mark.parametrize("q, g, k, ties", [(1, 5, 5, False), (7, 20, 10, False), (30, 50, 3, True), (5, 12, 12, True)])
def test_ndcg_equals_scikit_learn(q, g, k, ties):
    gen = torch.Generator().manual_seed(q * g)
    scores = torch.randint(0, 4, (q, g), generator=gen).double() if ties else torch.randn(q, g, generator=gen)
    relevance = torch.randint(0, 4, (q, g), generator=gen).double()
    relevance[0] = 0  # a query without a relevant item counts 0
    expected = ndcg_score(relevance.numpy(), scores.numpy(), k=k)
    assert ndcg_at_k(scores, relevance, k) == pytest.approx(expected, abs=1e-12)


def test_ndcg_of_a_hand_made_ranking():
    scores, relevance = torch.tensor([[0.9, 0.8, 0.7]]), torch.tensor([[0.0, 1.0, 2.0]])
    dcg = 1 / math.log2(3) + 2 / math.log2(4)
    ideal = 2 + 1 / math.log2(3)
    assert ndcg_at_k(scores, relevance, 3) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(relevance, relevance, 2) == 1.0


@pytest.mark.parametrize("scores, relevance, k, match", [
    (torch.rand(2, 4), torch.rand(2, 3), 2, "relevance"),
    (torch.rand(2, 4), -torch.rand(2, 4), 2, "relevance"),
    (torch.rand(2, 4), torch.rand(2, 4), 5, "k"),
    (torch.rand(2, 4), torch.rand(2, 4), 0, "k"),
    (torch.rand(4), torch.rand(4), 2, "scores"),
    (torch.rand(3, 1), torch.rand(3, 1), 1, "scores"),
])
def test_ndcg_rejects_bad_input(scores, relevance, k, match):
    with pytest.raises(ValueError, match=match):
        ndcg_at_k(scores, relevance, k)


def test_chance_ndcg_is_the_mean_over_random_rankings():
    gen = torch.Generator().manual_seed(3)
    relevance = torch.randint(0, 3, (6, 15), generator=gen).float()
    relevance[1] = 0
    draws = [ndcg_at_k(torch.rand(6, 15, generator=gen), relevance, 5) for _ in range(1000)]
    assert chance_ndcg_at_k(relevance, 5) == pytest.approx(sum(draws) / len(draws), abs=0.015)
    with pytest.raises(ValueError, match="relevance"):
        chance_ndcg_at_k(torch.rand(4), 2)


def test_hits_are_the_per_query_recall():
    scores = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.8, 0.3]])
    relevant = torch.tensor([[False, False, True], [True, False, False]])
    assert hits_at_k(scores, relevant, 1).tolist() == [False, False]
    assert hits_at_k(scores, relevant, 2).tolist() == [True, False]
    assert hits_at_k(scores, relevant, 2).float().mean().item() == recall_at_k(scores, relevant, 2)


def test_class_retrieval_by_hand():
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    gallery = torch.tensor([[2.0, 0.1], [0.1, 3.0], [-1.0, 0.0], [0.0, -1.0], [1.0, 1.0], [0.5, 0.4]])
    labels_q, labels_g = torch.tensor([0, 1]), torch.tensor([0, 1, 1, 0, 0, 1])
    result = class_retrieval(queries, gallery, labels_q, labels_g)
    assert result.recall_at_1 == 1.0 and result.recall_at_5 == 1.0
    assert result.chance_at_1 == pytest.approx(0.5)  # three of six relevant for each query
    with pytest.raises(ValueError, match="queries, gallery"):
        class_retrieval(queries, gallery[:, :1], labels_q, labels_g)
    with pytest.raises(ValueError, match="query_labels"):
        class_retrieval(queries, gallery, labels_g, labels_g)


FAKE = fake.unsupported()


@pytest.mark.skipif(FAKE is not None, reason=f"fake accelerator: {FAKE}")
@pytest.mark.parametrize("float64", [True, False], ids=["float64", "no-float64-like-mps"])
def test_retrieval_metrics_of_device_tensors_are_the_cpus(float64):
    """Issue 31: a CPU ``arange`` met the device's counts, and ``.double()`` fails on Apple's MPS (the fake
    device's MPS-like mode). The fake device has the CPU's numbers, and these are computed on the CPU."""
    g = torch.Generator().manual_seed(0)
    relevant = torch.rand(6, 8, generator=g) > 0.5
    queries, gallery = torch.randn(6, 4, generator=g), torch.randn(8, 4, generator=g)
    query_labels, gallery_labels = torch.arange(6) % 3, torch.arange(8) % 3

    def measure(*tensors):
        relevant, *embedded = tensors
        return (chance_recall_at_k(relevant, 1), chance_recall_at_k(relevant, 3), class_retrieval(*embedded),
                comparison_entry("m", "02", "all", "none", *embedded))

    on_cpu = measure(relevant, queries, gallery, query_labels, gallery_labels)
    device = fake.device()
    with fake.settings(float64=float64):
        on_device = measure(*(t.to(device) for t in (relevant, queries, gallery, query_labels, gallery_labels)))
    assert on_device == on_cpu
    assert isinstance(on_device[0], float) and isinstance(on_device[2].chance_at_5, float)
